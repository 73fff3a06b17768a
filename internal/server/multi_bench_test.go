package server

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// BenchmarkMultiExec compares a transaction of three commands (MULTI SET INCR GET EXEC,
// sent in one write as clients send it) with the same three commands sent one at a
// time and pipelined, against a one-node dht.
func BenchmarkMultiExec(b *testing.B) {
	addr := startNode(b, nil)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1})
	defer c.Close()
	three := func(p redis.Pipeliner) error {
		p.Set(ctx, "{b}k", "1", 0)
		p.Incr(ctx, "{b}n")
		p.Get(ctx, "{b}k")
		return nil
	}
	for _, mode := range []struct {
		name string
		send func(context.Context, func(redis.Pipeliner) error) ([]redis.Cmder, error)
	}{{"exec-3", c.TxPipelined}, {"pipeline-3", c.Pipelined}} {
		b.Run(mode.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := mode.send(ctx, three); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("separate-3", func(b *testing.B) {
		for b.Loop() {
			if err := c.Set(ctx, "{b}k", "1", 0).Err(); err != nil {
				b.Fatal(err)
			}
			if err := c.Incr(ctx, "{b}n").Err(); err != nil {
				b.Fatal(err)
			}
			if err := c.Get(ctx, "{b}k").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
