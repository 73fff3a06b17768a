package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/lincheck"
)

// TestIntroIdleTimePerNode: at R=3 a key's idle time (OBJECT IDLETIME) is each node's
// own, as in Redis, where a replica's is its own too. Every member applies the write,
// so each starts counting from it; a READONLY read on a follower resets the follower's
// idle time alone, and a client that did not send READONLY gets the leader's.
func TestIntroIdleTimePerNode(t *testing.T) {
	cfg, _ := startCluster(t, 3, replicated)
	waitPreferredLeaders(t, cfg, 15*time.Second)
	ctx := context.Background()
	key := lincheck.SpreadKeys("idle:", 3)[0] // in range 0: node 0 leads it
	leader := nodeClient(t, cfg, cfg.Nodes[0].Addr)
	readonly := func(addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1,
			OnConnect: func(ctx context.Context, cn *redis.Conn) error { return cn.ReadOnly(ctx).Err() }})
		t.Cleanup(func() { c.Close() })
		return c
	}
	f1, f2 := readonly(cfg.Nodes[1].Addr), readonly(cfg.Nodes[2].Addr)
	if err := leader.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*redis.Client{f1, f2} {
		// The read waits until the follower applied the write, and touches its copy.
		if v, err := f.Get(ctx, key).Result(); err != nil || v != "v" {
			t.Fatalf("READONLY GET on a follower = %q, %v", v, err)
		}
	}
	time.Sleep(2200 * time.Millisecond)
	idle := func(c *redis.Client) int64 {
		t.Helper()
		d, err := c.ObjectIdleTime(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return int64(d / time.Second)
	}
	if f1.Get(ctx, key).Err() != nil {
		t.Fatal("READONLY GET on the first follower failed")
	}
	l, i1, i2 := idle(leader), idle(f1), idle(f2)
	t.Logf("idle times after a read on the first follower: leader %d s, followers %d s and %d s", l, i1, i2)
	if l < 2 || i2 < 2 || i1 > 1 {
		t.Errorf("idle times: leader %d s, followers %d s and %d s; want the read follower's at most 1, the others at least 2", l, i1, i2)
	}
	// Without READONLY the follower forwards OBJECT to the leader.
	plain := nodeClient(t, cfg, cfg.Nodes[2].Addr)
	if d := idle(plain); d < 2 {
		t.Errorf("idle time through a follower without READONLY = %d s, want the leader's (at least 2)", d)
	}
	// A write is applied by every member: it resets the idle time everywhere.
	if err := leader.Set(ctx, key, "w", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := f2.Get(ctx, key).Result(); err != nil || v != "w" {
		t.Fatalf("READONLY GET on a follower after the write = %q, %v", v, err)
	}
	if l, i1 := idle(leader), idle(f1); l > 1 || i1 > 1 {
		t.Errorf("idle times after a write: leader %d s, first follower %d s; want at most 1", l, i1)
	}
}

// TestIntroLatencyMonitor turns a node's latency monitor on and sends it a command
// that surely takes more than its 1 ms threshold (an MSET of 30000 keys, which its
// group writes to its log and applies): LATENCY LATEST, HISTORY, GRAPH and DOCTOR
// show the command event, RESET forgets it, and the other nodes' monitors stayed off.
func TestIntroLatencyMonitor(t *testing.T) {
	cfg, _ := startCluster(t, 3, replicated)
	waitPreferredLeaders(t, cfg, 15*time.Second)
	ctx := context.Background()
	c := nodeClient(t, cfg, cfg.Nodes[0].Addr)
	if err := c.ConfigSet(ctx, "latency-monitor-threshold", "1").Err(); err != nil {
		t.Fatal(err)
	}
	tag := lincheck.SpreadKeys("lat", 3)[0] // in range 0, which node 0 leads
	args := []any{"MSET"}
	for i := range 30000 {
		args = append(args, fmt.Sprintf("{%s}:%d", tag, i), "v")
	}
	start := time.Now()
	if err := c.Do(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("MSET of 30000 keys took %s", time.Since(start))

	latest, err := c.Do(ctx, "LATENCY", "LATEST").Slice()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range latest {
		ev, ok := e.([]any)
		if !ok || len(ev) != 4 {
			t.Fatalf("LATENCY LATEST entry %v: want [event, time, latency, max]", e)
		}
		if ev[0] == "command" {
			found = true
			if at, ms := ev[1].(int64), ev[2].(int64); time.Since(time.Unix(at, 0)) > time.Minute || ms < 1 || ev[3].(int64) < ms {
				t.Errorf("LATENCY LATEST command entry %v", ev)
			}
		}
	}
	if !found {
		t.Fatalf("LATENCY LATEST = %v: no command event", latest)
	}
	if h, err := c.Do(ctx, "LATENCY", "HISTORY", "command").Slice(); err != nil || len(h) == 0 {
		t.Errorf("LATENCY HISTORY command = %v, %v", h, err)
	}
	if g, err := c.Do(ctx, "LATENCY", "GRAPH", "command").Text(); err != nil || !strings.HasPrefix(g, "command - high ") {
		t.Errorf("LATENCY GRAPH command = %q, %v", g, err)
	}
	if d, err := c.Do(ctx, "LATENCY", "DOCTOR").Text(); err != nil || !strings.Contains(d, ". command: ") {
		t.Errorf("LATENCY DOCTOR = %q, %v", d, err)
	}
	for _, n := range cfg.Nodes[1:] {
		if l, err := nodeClient(t, cfg, n.Addr).Do(ctx, "LATENCY", "LATEST").Slice(); err != nil || len(l) != 0 {
			t.Errorf("%s, whose monitor is off: LATENCY LATEST = %v, %v", n.Name, l, err)
		}
	}
	// The monitor goes off first: on a busy machine another event (a sweep of
	// expired keys past 1 ms) could come between RESET and the check.
	if err := c.ConfigSet(ctx, "latency-monitor-threshold", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Do(ctx, "LATENCY", "RESET").Int(); err != nil || n < 1 {
		t.Errorf("LATENCY RESET = %d, %v", n, err)
	}
	if l, err := c.Do(ctx, "LATENCY", "LATEST").Slice(); err != nil || len(l) != 0 {
		t.Errorf("LATENCY LATEST after RESET = %v, %v", l, err)
	}
}
