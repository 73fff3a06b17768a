package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/keyspace"
)

// BenchmarkFailover measures, on a 3-node cluster at R = 3, the time from SIGKILL of
// a group's leader to the first acknowledged write to that group's slots, sent to a
// surviving node. Each iteration kills the current leader of group 0, writes until a
// write succeeds, restarts the killed node and waits for it to catch up. It reports
// the median and the maximum:
//
//	DHT_E2E_NORACE=1 go test -run '^$' -bench Failover -benchtime 10x ./e2e/cluster/
func BenchmarkFailover(b *testing.B) {
	cfg, path := testConfig(b, 3, func(c *config.Config) { c.ReplicationDegree = 3 })
	procs := map[string]*proc{}
	for _, n := range cfg.Nodes {
		procs[n.Name] = startNode(b, path, cfg, n.Name)
	}
	addrs := addrsOf(cfg)
	for _, a := range addrs {
		waitState(b, a, "ok", 20*time.Second)
	}
	key := ""
	for i := 0; ; i++ {
		if k := fmt.Sprint("failover:", i); keyspace.SlotOf(k) <= keyspace.Slots/3-1 {
			key = k
			break
		}
	}
	var took []time.Duration
	b.ResetTimer()
	for i := range b.N {
		leader := ""
		for leader == "" {
			l, err := leaderOf(context.Background(), addrs[i%3], 0)
			if err == nil && l != "none" {
				leader = l
			}
		}
		var survivor string
		for _, n := range cfg.Nodes {
			if n.Name != leader {
				survivor = n.Addr
				break
			}
		}
		c := redis.NewClient(&redis.Options{Addr: survivor, MaxRetries: -1, ReadTimeout: 10 * time.Second})
		procs[leader].kill()
		start := time.Now()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := c.Set(ctx, key, i, 0).Err()
			cancel()
			if err == nil {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("no write acknowledged within 30s of killing %s: %v", leader, err)
			}
		}
		took = append(took, time.Since(start))
		c.Close()
		b.StopTimer()
		procs[leader] = startNode(b, path, cfg, leader)
		n, _ := cfg.Node(leader)
		waitState(b, n.Addr, "ok", 20*time.Second)
		waitCaughtUp(b, n.Addr, 20*time.Second)
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(took[len(took)/2].Seconds(), "p50-s")
	b.ReportMetric(took[len(took)-1].Seconds(), "max-s")
	b.Logf("failover times (sorted): %v", took)
}
