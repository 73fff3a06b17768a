package cluster_test

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
)

// TestKeyspaceCommandsPerPrimary: DBSIZE, KEYS, SCAN and RANDOMKEY of a node cover
// the slots it serves as primary, so over the nodes they give every key once, as
// Redis Cluster's do and as `redis-cli --cluster info` adds them up; a SCAN returns
// every key present for all of it while other keys come and go; FLUSHALL on every
// node empties the cluster, the followers' copies too.
func TestKeyspaceCommandsPerPrimary(t *testing.T) {
	replicationDegrees(t, func(t *testing.T, cfg config.Config) {
		ctx := context.Background()
		cc := clusterClient(t, cfg)
		const n = 300
		var want []string
		for i := range n {
			k := fmt.Sprintf("ks:%d", i)
			if err := cc.Set(ctx, k, i, 0).Err(); err != nil {
				t.Fatal(err)
			}
			want = append(want, k)
		}
		slices.Sort(want)
		// Each node answers for the groups it leads when asked: the lead must not
		// move between the nodes' answers (it goes back to the preferred leaders
		// once they have caught up after the start).
		if cfg.ReplicationDegree > 1 {
			waitPreferredLeaders(t, cfg, 15*time.Second)
		}
		var all []string
		for _, node := range cfg.Nodes {
			c := nodeClient(t, cfg, node.Addr)
			size, err := c.DBSize(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			keys, err := c.Keys(ctx, "ks:*").Result()
			if err != nil || int64(len(keys)) != size {
				t.Fatalf("%s: KEYS gives %d keys (%v), DBSIZE %d", node.Name, len(keys), err, size)
			}
			if size > 0 {
				if k, err := c.RandomKey(ctx).Result(); err != nil || !slices.Contains(keys, k) {
					t.Fatalf("%s: RANDOMKEY = %q, %v: not one of its keys", node.Name, k, err)
				}
			}
			all = append(all, keys...)
		}
		slices.Sort(all)
		if !slices.Equal(all, want) {
			t.Fatalf("KEYS over the nodes gives %d keys, want the %d written, each once", len(all), n)
		}
		if cli, err := exec.LookPath("redis-cli"); err == nil {
			out, err := exec.Command(cli, "--cluster", "info", cfg.Nodes[0].Addr).CombinedOutput()
			if err != nil || !strings.Contains(string(out), fmt.Sprintf("[OK] %d keys in ", n)) {
				t.Fatalf("redis-cli --cluster info (%v) does not count %d keys:\n%s", err, n, out)
			}
		}

		// SCAN while other keys of the same slots are written and removed.
		var scanned []string
		churn := 0
		for _, node := range cfg.Nodes {
			c := nodeClient(t, cfg, node.Addr)
			var cursor uint64
			for {
				keys, next, err := c.Scan(ctx, cursor, "ks:*", 7).Result()
				if err != nil {
					t.Fatal(err)
				}
				scanned = append(scanned, keys...)
				churn++
				if err := cc.Set(ctx, fmt.Sprintf("ks:churn:%d", churn), "x", 0).Err(); err != nil {
					t.Fatal(err)
				}
				if err := cc.Del(ctx, fmt.Sprintf("ks:churn:%d", churn-1)).Err(); err != nil {
					t.Fatal(err)
				}
				if next == 0 {
					break
				}
				cursor = next
			}
		}
		scanned = slices.DeleteFunc(scanned, func(k string) bool { return strings.HasPrefix(k, "ks:churn:") })
		slices.Sort(scanned)
		if !slices.Equal(scanned, want) {
			t.Fatalf("SCAN over the nodes gives %d keys, want the %d written, each once", len(scanned), n)
		}

		for _, node := range cfg.Nodes {
			if err := nodeClient(t, cfg, node.Addr).FlushAll(ctx).Err(); err != nil {
				t.Fatalf("FLUSHALL on %s: %v", node.Name, err)
			}
		}
		if sum := dbsizeSum(ctx, t, cfg); sum != 0 {
			t.Fatalf("after FLUSHALL on every node, DBSIZE adds up to %d", sum)
		}
		// Each node counts the ranges it holds a copy of from its own copy.
		for _, node := range cfg.Nodes {
			waitFor(t, 5*time.Second, node.Name+" to hold no key", func() bool {
				total, err := clusterKeys(ctx, nodeClient(t, cfg, node.Addr))
				return err == nil && total == 0
			})
		}
	})
}

// TestFlushAllSurvivesRestart: FLUSHALL goes through each group's log, so every node
// of a replicated cluster killed and started again still has the keys written after
// it and none from before.
func TestFlushAllSurvivesRestart(t *testing.T) {
	cfg, path := testConfig(t, 3, replicated)
	procs := startNodes(t, path, cfg)
	ctx := context.Background()
	cc := clusterClient(t, cfg)
	for i := range 200 {
		if err := cc.Set(ctx, fmt.Sprint("before:", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return c.FlushAll(ctx).Err()
	}); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	for i := range 50 {
		if err := cc.Set(ctx, fmt.Sprint("after:", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range procs {
		p.kill()
	}
	startNodes(t, path, cfg)
	cc = clusterClient(t, cfg)
	for _, node := range cfg.Nodes {
		if total, err := clusterKeys(ctx, nodeClient(t, cfg, node.Addr)); err != nil || total != 50 {
			t.Fatalf("after the restart %s counts %d keys (%v); want the 50 written after FLUSHALL", node.Name, total, err)
		}
	}
	for i := range 50 {
		if v, err := cc.Get(ctx, fmt.Sprint("after:", i)).Int(); err != nil || v != i {
			t.Fatalf("after:%d = %d, %v", i, v, err)
		}
	}
}

// waitPreferredLeaders waits until every node names each group's preferred leader
// (node i for range i) as its leader.
func waitPreferredLeaders(t *testing.T, cfg config.Config, within time.Duration) {
	t.Helper()
	for g, n := range cfg.Nodes {
		deadline := time.Now().Add(within)
		for waitLeader(t, addrsOf(cfg), g, time.Until(deadline)) != n.Name {
			if time.Now().After(deadline) {
				t.Fatalf("group %d is not led by its preferred leader %s within %s", g, n.Name, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
