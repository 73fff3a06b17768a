package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/lincheck"
)

// replicated is the config edit of a 3-node cluster at R = 3 with a short failover
// bound, so that requests to a range without a leader fail fast.
func replicated(c *config.Config) {
	c.ReplicationDegree = 3
	c.Timeouts.Failover.Duration = 4 * time.Second
}

// leaderOf asks the node at addr which node leads group g (from INFO replication).
func leaderOf(ctx context.Context, addr string, g int) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	groups, err := lincheck.Replication(ctx, c)
	if err != nil {
		return "", err
	}
	gs, ok := groups[g]
	if !ok {
		return "", fmt.Errorf("no group %d in INFO replication", g)
	}
	return gs.Leader, nil
}

// waitLeader waits until every node in addrs names the same live leader for group
// g, other than any in not, and returns it.
func waitLeader(t *testing.T, addrs []string, g int, within time.Duration, not ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		agreed := ""
		for i, a := range addrs {
			l, err := leaderOf(ctx, a, g)
			if err != nil || l == "none" || (i > 0 && l != agreed) {
				agreed, last = "", fmt.Sprint(l, err)
				break
			}
			agreed = l
		}
		cancel()
		if agreed != "" && !strings.Contains(strings.Join(not, ","), agreed) {
			return agreed
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("group %d: no agreed leader (not %v) within %s; last: %s", g, not, within, last)
	return ""
}

// waitCaughtUp waits until the node at addr takes part in the elections of all its
// groups (a restarted node holds back until it has caught up).
func waitCaughtUp(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		groups, err := lincheck.Replication(context.Background(), c)
		held := err != nil || len(groups) == 0
		for _, g := range groups {
			held = held || g.Held
		}
		if !held {
			return
		}
		last = fmt.Sprint(groups, err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s has not caught up within %s: %s", addr, within, last)
}

// workloadClients gives even clients a go-redis ClusterClient and odd ones a plain
// client of one node, so both routing by the client and forwarding by the node are
// exercised. Neither ever resends a command.
func workloadClients(addrs []string) func(int) redis.UniversalClient {
	return func(id int) redis.UniversalClient {
		if id%2 == 0 {
			return lincheck.NewClusterClient(addrs)
		}
		return redis.NewClient(&redis.Options{Addr: addrs[id/2%len(addrs)], MaxRetries: -1,
			DialTimeout: time.Second, ReadTimeout: 6 * time.Second, WriteTimeout: 3 * time.Second})
	}
}

// checkHistory checks a history for linearizability and reads every key back.
func checkHistory(t *testing.T, h *lincheck.History, addrs []string) {
	t.Helper()
	st := h.Stats()
	t.Logf("seed %d: %+v", h.Seed, st)
	if st.Writes-st.UnknownWrites < 100 {
		t.Fatalf("only %d acknowledged writes: the cluster barely served", st.Writes-st.UnknownWrites)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	checker := lincheck.Checker{Dir: t.ArtifactDir(), Timeout: time.Minute, Logger: log}
	if err := checker.Check(h); err != nil {
		t.Fatalf("%v\n(go test -artifacts keeps the visualization)", err)
	}
	rc := lincheck.NewClusterClient(addrs)
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := checker.CheckDurable(ctx, rc, h); err != nil {
		t.Fatalf("%v\n(go test -artifacts keeps the visualization)", err)
	}
}

// runWorkload runs the linearizability workload in the background for d.
func runWorkload(t *testing.T, addrs []string, d time.Duration, seed uint64) <-chan *lincheck.History {
	t.Helper()
	out := make(chan *lincheck.History, 1)
	go func() {
		h, err := lincheck.Run(context.Background(), lincheck.Config{
			NewClient: workloadClients(addrs),
			Clients:   8,
			Keys:      lincheck.SpreadKeys(fmt.Sprintf("rep%d:", seed), 24),
			Duration:  d,
			MaxOps:    200_000,
			Seed:      seed,
		})
		if err != nil {
			t.Error(err)
		}
		out <- h
	}()
	return out
}

// faultSeed is the seed of the fault schedules: $DHT_FAULT_SEED, or a fresh one that
// the test logs, so that a failing schedule can be replayed.
func faultSeed(t *testing.T) uint64 {
	if s := os.Getenv("DHT_FAULT_SEED"); s != "" {
		var v uint64
		if _, err := fmt.Sscan(s, &v); err == nil {
			return v
		}
	}
	v := rand.Uint64()
	t.Logf("fault seed %d (replay with DHT_FAULT_SEED=%d)", v, v)
	return v
}

// TestReplicatedKillPauseRestart records real clients' histories on a 3-node cluster
// at R = 3 while, in a seeded order, a leader is killed with SIGKILL and restarted with
// its memory gone, and a leader is paused with SIGSTOP for longer than the election
// timeout and then resumed. The histories must be linearizable and every
// acknowledged write must be readable afterwards.
func TestReplicatedKillPauseRestart(t *testing.T) {
	seed := faultSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	cfg, path := testConfig(t, 3, replicated)
	procs := map[string]*proc{}
	for _, n := range cfg.Nodes {
		procs[n.Name] = startNode(t, path, cfg, n.Name)
	}
	addrs := addrsOf(cfg)
	for _, a := range addrs {
		waitState(t, a, "ok", 20*time.Second)
	}
	addrOf := func(name string) string { n, _ := cfg.Node(name); return n.Addr }
	others := func(not string) []string {
		var out []string
		for _, n := range cfg.Nodes {
			if n.Name != not {
				out = append(out, n.Addr)
			}
		}
		return out
	}

	hist := runWorkload(t, addrs, 22*time.Second, seed)
	time.Sleep(2 * time.Second)

	// Kill the leader of a random group, let the others elect, restart it empty.
	g := rng.IntN(3)
	victim := waitLeader(t, addrs, g, 10*time.Second)
	t.Logf("SIGKILL %s, leader of group %d", victim, g)
	procs[victim].kill()
	start := time.Now()
	next := waitLeader(t, others(victim), g, 10*time.Second, victim)
	t.Logf("group %d: %s leads after %s", g, next, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	procs[victim] = startNode(t, path, cfg, victim)
	waitState(t, addrOf(victim), "ok", 20*time.Second)
	// Until it has caught up, the restarted node must not vote: pausing a leader now
	// would leave its group without a majority that may elect.
	waitCaughtUp(t, addrOf(victim), 20*time.Second)

	// Pause the leader of another group past the election timeout, then resume it.
	g = (g + 1 + rng.IntN(2)) % 3
	paused := waitLeader(t, addrs, g, 10*time.Second)
	t.Logf("SIGSTOP %s, leader of group %d", paused, g)
	if err := procs[paused].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	next = waitLeader(t, others(paused), g, 10*time.Second, paused)
	t.Logf("group %d: %s leads while %s is paused", g, next, paused)
	time.Sleep(time.Second)
	if err := procs[paused].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGCONT %s", paused)

	checkHistory(t, <-hist, addrs)
}

// TestReplicatedMajorityLoss pauses two of three nodes: the survivor answers
// -CLUSTERDOWN within the failover bound rather than hanging, and once the others
// resume every acknowledged write is still there.
func TestReplicatedMajorityLoss(t *testing.T) {
	cfg, procs := startCluster(t, 3, replicated)
	addrs := addrsOf(cfg)
	cc := lincheck.NewClusterClient(addrs)
	defer cc.Close()
	ctx := context.Background()
	keys := lincheck.SpreadKeys("maj:", 30)
	for i, k := range keys {
		if err := cc.Set(ctx, k, fmt.Sprint("v", i), 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	for _, p := range procs[1:] {
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	survivor := redis.NewClient(&redis.Options{Addr: procs[0].addr, MaxRetries: -1, ReadTimeout: 10 * time.Second})
	defer survivor.Close()
	// Wait out the leases the survivor's groups still had.
	time.Sleep(3 * time.Second)
	for _, k := range keys[:3] {
		start := time.Now()
		err := survivor.Set(ctx, k, "lost?", 0).Err()
		took := time.Since(start)
		if err == nil || !strings.HasPrefix(err.Error(), "CLUSTERDOWN") {
			t.Fatalf("set %s with 2 of 3 nodes paused: %v, want -CLUSTERDOWN", k, err)
		}
		if took > cfg.Timeouts.Failover.Duration+2*time.Second {
			t.Fatalf("set %s took %s, past the failover bound %s", k, took, cfg.Timeouts.Failover.Duration)
		}
	}
	if err := survivor.Get(ctx, keys[0]).Err(); err == nil || !strings.HasPrefix(err.Error(), "CLUSTERDOWN") {
		t.Fatalf("get with 2 of 3 nodes paused: %v, want -CLUSTERDOWN", err)
	}
	for _, p := range procs[1:] {
		if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range addrs {
		waitState(t, a, "ok", 20*time.Second)
	}
	for i, k := range keys {
		got, err := cc.Get(ctx, k).Result()
		// A write refused with -CLUSTERDOWN may or may not have been applied.
		if err != nil || got != fmt.Sprint("v", i) && !(i < 3 && got == "lost?") {
			t.Fatalf("get %s after the majority came back: %q, %v", k, got, err)
		}
	}
	if err := cc.Set(ctx, keys[0], "again", 0).Err(); err != nil {
		t.Fatalf("set after recovery: %v", err)
	}
}

// TestReplicatedHealthyLinearizable is the healthy-cluster workload at R = 3.
func TestReplicatedHealthyLinearizable(t *testing.T) {
	cfg, _ := startCluster(t, 3, replicated)
	h := <-runWorkload(t, addrsOf(cfg), 3*time.Second, faultSeed(t))
	if st := h.Stats(); st.FailedReads+st.UnknownWrites > 0 {
		t.Fatalf("operations failed on a healthy replicated cluster: %+v", st)
	}
	checkHistory(t, h, addrsOf(cfg))
}
