package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
)

// BenchmarkExecReplicated compares, on a 3-node cluster at R = 3, a transaction of
// three commands (MULTI SET INCR GET EXEC in one write: one log entry) with the same
// three commands sent one at a time (three log entries), through go-redis's cluster
// client, which sends each to the slot's leader:
//
//	DHT_E2E_NORACE=1 go test -run '^$' -bench ExecReplicated ./e2e/cluster/
func BenchmarkExecReplicated(b *testing.B) {
	cfg, path := testConfig(b, 3, func(c *config.Config) { c.ReplicationDegree = 3 })
	for _, n := range cfg.Nodes {
		startNode(b, path, cfg, n.Name)
	}
	for _, a := range addrsOf(cfg) {
		waitState(b, a, "ok", 20*time.Second)
	}
	ctx := context.Background()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrsOf(cfg)})
	defer c.Close()
	if err := c.Set(ctx, "{b}k", "1", 0).Err(); err != nil {
		b.Fatal(err)
	}
	b.Run("exec-3", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "{b}k", "1", 0)
				p.Incr(ctx, "{b}n")
				p.Get(ctx, "{b}k")
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
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
