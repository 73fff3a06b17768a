package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/lincheck"
)

func fsyncAlways(c *config.Config) {
	replicated(c)
	c.Persistence.Fsync = config.FsyncAlways
}

// TestDurableWholeClusterKill records real clients' histories while every node of a
// 3-node cluster (R = 3, fsync always) is killed with SIGKILL at the same moment and
// then restarted on its data directory: the histories across the restart must be
// linearizable, and every acknowledged write must be readable afterwards.
func TestDurableWholeClusterKill(t *testing.T) {
	seed := faultSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	cfg, path := testConfig(t, 3, fsyncAlways)
	procs := startNodes(t, path, cfg)
	addrs := addrsOf(cfg)
	hist := runWorkload(t, addrs, 16*time.Second, seed)
	time.Sleep(time.Duration(2000+rng.IntN(2000)) * time.Millisecond)
	t.Log("SIGKILL every node")
	for _, p := range procs {
		_ = p.cmd.Process.Kill()
	}
	for _, p := range procs {
		<-p.done
	}
	time.Sleep(500 * time.Millisecond)
	procs = startNodes(t, path, cfg)
	for _, p := range procs {
		if !strings.Contains(p.log.String(), "replica recovered from disk") {
			t.Fatalf("%s did not recover its groups from disk:\n%s", p.name, p.log.String())
		}
	}
	checkHistory(t, <-hist, addrs)
}

// TestDurableRestartKeepsEveryKey writes keys, stops every node (SIGTERM, then SIGKILL
// for a second round) and starts them again: every key is there, at replication
// degree 1 (one-member groups) and 3.
func TestDurableRestartKeepsEveryKey(t *testing.T) {
	for _, r := range []int{1, 3} {
		t.Run(fmt.Sprint("R", r), func(t *testing.T) {
			cfg, path := testConfig(t, 3, func(c *config.Config) { c.ReplicationDegree = r })
			procs := startNodes(t, path, cfg)
			ctx := context.Background()
			cc := clusterClient(t, cfg)
			const n = 1024
			for i := range n {
				if err := cc.Set(ctx, fmt.Sprint("dur:", i), fmt.Sprint("v", i), 0).Err(); err != nil {
					t.Fatalf("set %d: %v", i, err)
				}
			}
			if err := cc.Set(ctx, "dur:ttl", "x", time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			check := func(round string) {
				t.Helper()
				cc := clusterClient(t, cfg)
				for i := range n {
					got, err := cc.Get(ctx, fmt.Sprint("dur:", i)).Result()
					if err != nil || got != fmt.Sprint("v", i) {
						t.Fatalf("%s: dur:%d = %q, %v", round, i, got, err)
					}
				}
				if ttl, err := cc.TTL(ctx, "dur:ttl").Result(); err != nil || ttl < 50*time.Minute {
					t.Fatalf("%s: TTL of dur:ttl = %s, %v", round, ttl, err)
				}
			}
			for _, p := range procs {
				if err := p.stop(t, syscall.SIGTERM, 10*time.Second); err != nil {
					t.Fatalf("%s after SIGTERM: %v", p.name, err)
				}
			}
			procs = startNodes(t, path, cfg)
			check("after SIGTERM of every node")
			for _, p := range procs {
				p.kill()
			}
			startNodes(t, path, cfg)
			check("after SIGKILL of every node")
		})
	}
}

// TestRebuiltNodeCarriesTheData: a node whose data directory is lost comes back
// empty and is replaced in its groups (removed, added back as a learner, caught up,
// made a voter), and says so in its log; then it carries the data: with another node
// killed, the rebuilt node and the third still serve every key.
func TestRebuiltNodeCarriesTheData(t *testing.T) {
	cfg, procs := startCluster(t, 3, replicated)
	path := procs[0].cmd.Args[3]
	ctx := context.Background()
	cc := clusterClient(t, cfg)
	keys := lincheck.SpreadKeys("rebuilt:", 300)
	for i, k := range keys {
		if err := cc.Set(ctx, k, fmt.Sprint("v", i), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	procs[0].kill()
	procs[0] = startNode(t, path, cfg, "n1", "--data-dir", t.TempDir())
	waitState(t, procs[0].addr, "ok", 20*time.Second)
	waitCaughtUp(t, procs[0].addr, 20*time.Second)
	for _, said := range []string{"was added back to its group afresh, as a learner", "is a voter of its group again"} {
		if n := strings.Count(procs[0].log.String(), said); n < 1 {
			t.Fatalf("the rebuilt node's log does not say %q", said)
		}
	}
	procs[1].kill()
	live := []string{procs[0].addr, procs[2].addr}
	for g := range 3 {
		waitLeader(t, live, g, 10*time.Second, "n2")
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: live})
	defer c.Close()
	for i, k := range keys {
		got, err := c.Get(ctx, k).Result()
		if err != nil || got != fmt.Sprint("v", i) {
			t.Fatalf("with n2 dead, %s = %q, %v; want v%d", k, got, err, i)
		}
	}
}
