package bench

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
)

// startRedisCluster starts a one-node Redis Cluster owning every slot, if
// redis-server is installed, and returns its address.
func startRedisCluster(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if port > 55000 {
		t.Skip("no port below 55000 (Redis uses port+10000 for its bus)")
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
		"--cluster-config-file", dir+"/nodes.conf", "--dir", dir, "--save", "", "--appendonly", "no", "--logfile", dir+"/redis.log")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(t.Context()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Do(t.Context(), "cluster", "addslotsrange", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		info, err := c.ClusterInfo(t.Context()).Result()
		if err == nil && ClusterState(info) == "ok" {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster is not ok: %v %s", err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCounterBarrierOnRedis(t *testing.T) {
	addr := startRedisCluster(t)
	newStore := func() *RedisStore {
		s := NewRedisStore(RedisOptions{Addrs: []string{addr}, PoolSize: 2, OpTimeout: time.Second, Barrier: BarrierAuto}, quietLog())
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := newStore().Ready(ctx, 2); err != nil {
		t.Fatal(err)
	}

	// A missing client: the lone arrival fails and leaves, so the name still works.
	err := newStore().Barrier(ctx, "b1", 2, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 clients arrived") {
		t.Fatalf("err = %v, want the barrier's timeout", err)
	}

	// Three clients, one late, twice on the same name.
	for round := range 2 {
		var wg sync.WaitGroup
		released := make([]time.Time, 3)
		for i := range 3 {
			s := newStore()
			wg.Go(func() {
				if i == 2 {
					time.Sleep(200 * time.Millisecond)
				}
				if err := s.Barrier(ctx, "b1", 3, 5*time.Second); err != nil {
					t.Errorf("round %d client %d: %v", round, i, err)
				}
				released[i] = time.Now()
			})
		}
		wg.Wait()
		for i, r := range released[1:] {
			if d := r.Sub(released[0]).Abs(); d > 100*time.Millisecond {
				t.Errorf("round %d: client %d left %s after client 0", round, i+1, d)
			}
		}
	}
}

func TestRedisStoreRunsWorkload(t *testing.T) {
	addr := startRedisCluster(t)
	w := config.Default().Workload
	w.Requests, w.Threads, w.Pipeline = 200, 3, 4
	w.Mix = config.Mix{Get: 40, PutIfAbsent: 20, Put: 20, MultiPut: 20}
	s := NewRedisStore(RedisOptions{Addrs: []string{addr}, PoolSize: w.Threads, OpTimeout: time.Second, Barrier: BarrierAuto}, quietLog())
	defer s.Close()
	p := testPlan(w)
	p.Keys = Keys{Prefix: "redis-test:"}
	res, err := NewClient(s, p, quietLog()).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	count, ok, failed := res.Stats.Totals()
	mp := res.Stats.Ops[OpMultiPut]
	if count != 600 || ok+failed != count {
		t.Errorf("requests %d (ok %d, failed %d), want 600", count, ok, failed)
	}
	if mp.Failed[ReasonCrossSlot] == 0 || mp.Failed[ReasonCrossSlot]+mp.OK != mp.Count || failed != mp.Failed[ReasonCrossSlot] {
		t.Errorf("multi_put: %d requests, %d ok, %d CROSSSLOT; %d failed in all", mp.Count, mp.OK, mp.Failed[ReasonCrossSlot], failed)
	}
	if pia := res.Stats.Ops[OpPutIfAbsent]; pia.Hit == 0 || pia.Hit+pia.Miss != pia.OK {
		t.Errorf("put_if_absent: won %d, lost %d, ok %d", pia.Hit, pia.Miss, pia.OK)
	}
	if !res.Verify.OK() || res.Verify.Keys == 0 {
		t.Errorf("verify = %+v", res.Verify)
	}
}
