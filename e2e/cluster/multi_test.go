package cluster_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestMultiExecReplicated: MULTI/EXEC at replication degree 3 through go-redis's
// cluster client and through plain clients of every node (whose transactions are
// forwarded to the slot's leader): the commands run together and answer in order, a
// write to a watched key through any node makes EXEC answer nil, and increments by
// optimistic transactions from many clients add up.
func TestMultiExecReplicated(t *testing.T) {
	cfg, _ := startCluster(t, 3, replicated)
	ctx := context.Background()
	cc := clusterClient(t, cfg)

	cmds, err := cc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "{acct}a", 10, 0)
		p.IncrBy(ctx, "{acct}a", 5)
		p.Get(ctx, "{acct}a")
		return nil
	})
	if err != nil || len(cmds) != 3 || cmds[2].(*redis.StringCmd).Val() != "15" {
		t.Fatalf("MULTI SET INCRBY GET EXEC: %v, %v", cmds, err)
	}

	for _, node := range cfg.Nodes {
		c := nodeClient(t, cfg, node.Addr)
		// A transaction through this node, whatever node leads the slot.
		key := "{acct}" + node.Name
		if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, 1, 0)
			p.Incr(ctx, key)
			return nil
		}); err != nil {
			t.Fatalf("MULTI/EXEC through %s: %v", node.Name, err)
		}
		if v, err := cc.Get(ctx, key).Int(); err != nil || v != 2 {
			t.Fatalf("%s = %d, %v; want 2", key, v, err)
		}
		// Keys of two slots: CROSSSLOT, and nothing written.
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "{x}1", 1, 0)
			p.Set(ctx, "{y}1", 1, 0)
			return nil
		})
		if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
			t.Fatalf("a transaction over two slots through %s: %v; want CROSSSLOT", node.Name, err)
		}
		// A write through this node to a key another client watches.
		err = cc.Watch(ctx, func(tx *redis.Tx) error {
			v, err := tx.Get(ctx, "{acct}a").Int()
			if err != nil {
				return err
			}
			if err := c.Set(ctx, "{acct}a", 100, 0).Err(); err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "{acct}a", v+1, 0)
				return nil
			})
			return err
		}, "{acct}a")
		if !errors.Is(err, redis.TxFailedErr) {
			t.Fatalf("EXEC after a write through %s to the watched key: %v; want a nil reply", node.Name, err)
		}
		if v, err := cc.Get(ctx, "{acct}a").Int(); err != nil || v != 100 {
			t.Fatalf("{acct}a = %d, %v; want the other client's 100", v, err)
		}
	}

	// A watched key that expires: EXEC answers nil.
	c := nodeClient(t, cfg, cfg.Nodes[1].Addr)
	if err := c.Set(ctx, "{acct}ttl", 1, 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	err = c.Watch(ctx, func(tx *redis.Tx) error {
		time.Sleep(600 * time.Millisecond)
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "{acct}ttl", 2, 0)
			return nil
		})
		return err
	}, "{acct}ttl")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("EXEC after the watched key expired: %v; want a nil reply", err)
	}

	// Optimistic increments from clients of every node add up.
	const workers, each = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		c := nodeClient(t, cfg, cfg.Nodes[w%len(cfg.Nodes)].Addr)
		wg.Go(func() {
			for range each {
				for {
					err := c.Watch(ctx, func(tx *redis.Tx) error {
						v, err := tx.Get(ctx, "{acct}n").Int()
						if err != nil && !errors.Is(err, redis.Nil) {
							return err
						}
						_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
							p.Set(ctx, "{acct}n", v+1, 0)
							return nil
						})
						return err
					}, "{acct}n")
					if err == nil {
						break
					}
					if !errors.Is(err, redis.TxFailedErr) {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v, err := cc.Get(ctx, "{acct}n").Int(); err != nil || v != workers*each {
		t.Fatalf("{acct}n = %d, %v; want %d", v, err, workers*each)
	}
}
