package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
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
// groups: a restarted node holds back until it has caught up, and one that lost its
// log is added back to its groups as a learner and made a voter once caught up.
func waitCaughtUp(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		groups, err := lincheck.Replication(context.Background(), c)
		held := err != nil || len(groups) == 0
		for _, g := range groups {
			held = held || g.Held || g.Learner
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
// exercised; every other plain client sends READONLY, so that its reads are served by
// whichever replica it talks to. None ever resends a command.
func workloadClients(addrs []string) func(int) redis.UniversalClient {
	return func(id int) redis.UniversalClient {
		if id%2 == 0 {
			return lincheck.NewClusterClient(addrs)
		}
		opts := &redis.Options{Addr: addrs[id/2%len(addrs)], MaxRetries: -1,
			DialTimeout: time.Second, ReadTimeout: 6 * time.Second, WriteTimeout: 3 * time.Second}
		if id%4 == 3 {
			opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error { return cn.ReadOnly(ctx).Err() }
		}
		return redis.NewClient(opts)
	}
}

// checkHistory checks a history for linearizability and reads every key back.
func checkHistory(t *testing.T, h *lincheck.History, addrs []string) {
	t.Helper()
	st := h.Stats()
	t.Logf("seed %d: %+v", h.Seed, st)
	if st.Writes < 100 {
		t.Fatalf("only %d acknowledged writes: the cluster barely served", st.Writes)
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
// its data directory gone, and a leader is paused with SIGSTOP for longer than the election
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

	// Kill the leader of a random group, let the others elect, restart it with an
	// empty data directory (its disk lost).
	g := rng.IntN(3)
	victim := waitLeader(t, addrs, g, 10*time.Second)
	t.Logf("SIGKILL %s, leader of group %d", victim, g)
	procs[victim].kill()
	start := time.Now()
	next := waitLeader(t, others(victim), g, 10*time.Second, victim)
	t.Logf("group %d: %s leads after %s", g, next, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	procs[victim] = startNode(t, path, cfg, victim, "--data-dir", t.TempDir())
	waitState(t, addrOf(victim), "ok", 20*time.Second)
	// Until it has caught up, the restarted node must not vote: pausing a leader now
	// would leave its group without a majority that may elect.
	waitCaughtUp(t, addrOf(victim), 20*time.Second)

	// Pause the leader of another group past the election timeout, then resume it.
	g = (g + 1 + rng.IntN(2)) % 3
	paused := waitLeader(t, addrs, g, 10*time.Second)
	t.Logf("SIGSTOP %s, leader of group %d", paused, g)
	procs[paused].pause(t)
	next = waitLeader(t, others(paused), g, 10*time.Second, paused)
	t.Logf("group %d: %s leads while %s is paused", g, next, paused)
	time.Sleep(time.Second)
	procs[paused].resume(t)
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
		p.pause(t)
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
		p.resume(t)
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

// TestReplicatedHealthyLinearizable is the healthy-cluster workload at R = 3. It also
// checks that a READONLY client's reads are served by the follower it talks to, not
// forwarded to the leader.
func TestReplicatedHealthyLinearizable(t *testing.T) {
	cfg, _ := startCluster(t, 3, replicated)
	follower := ""
	for follower == "" {
		l := waitLeader(t, addrsOf(cfg), 0, 10*time.Second)
		for _, n := range cfg.Nodes {
			if n.Name != l {
				follower = n.Addr
				break
			}
		}
	}
	key := lincheck.SpreadKeys("ro:", 3)[0]
	ctx := context.Background()
	rw := plainClient(t, follower)
	if err := rw.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ro := redis.NewClient(&redis.Options{Addr: follower, MaxRetries: -1, PoolSize: 1,
		OnConnect: func(ctx context.Context, cn *redis.Conn) error { return cn.ReadOnly(ctx).Err() }})
	defer ro.Close()
	before := forwarded(t, rw)
	for range 20 {
		if got, err := ro.Get(ctx, key).Result(); err != nil || got != "v" {
			t.Fatalf("READONLY get on a follower: %q, %v", got, err)
		}
	}
	if after := forwarded(t, rw); after != before {
		t.Fatalf("READONLY reads on a follower were forwarded (%d forwards)", after-before)
	}

	h := <-runWorkload(t, addrsOf(cfg), 3*time.Second, faultSeed(t))
	if st := h.Stats(); st.FailedReads+st.UnknownWrites > 0 {
		t.Fatalf("operations failed on a healthy replicated cluster: %+v", st)
	}
	checkHistory(t, h, addrsOf(cfg))
}

// forwarded reads the node's count of forwarded commands from its metrics in INFO.
func forwarded(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`dht_forwarded_commands:(\d+)`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("no dht_forwarded_commands in INFO stats:\n%s", info)
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// TestReplicatedWait checks WAIT on the leader of a key's group: both followers hold
// the write on a healthy cluster, and with one paused WAIT waits out its timeout and
// counts the one that does.
func TestReplicatedWait(t *testing.T) {
	cfg, procs := startCluster(t, 3, replicated)
	// The lead settles on the preferred leader, n1 for group 0.
	leader := waitLeader(t, addrsOf(cfg), 0, 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); leader != "n1" && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		leader = waitLeader(t, addrsOf(cfg), 0, 10*time.Second)
	}
	n, _ := cfg.Node(leader)
	c := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1, PoolSize: 1, ReadTimeout: 10 * time.Second})
	defer c.Close()
	ctx := context.Background()
	key := lincheck.SpreadKeys("wait:", 3)[0]
	if got, err := c.Wait(ctx, 2, time.Second).Result(); err != nil || got != 2 {
		t.Fatalf("WAIT before any write: %d, %v; want 2", got, err)
	}
	if err := c.Set(ctx, key, "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Wait(ctx, 2, 2*time.Second).Result(); err != nil || got != 2 {
		t.Fatalf("WAIT 2 on a healthy cluster: %d, %v; want 2", got, err)
	}
	var paused *proc
	for _, p := range procs {
		if p.name != leader {
			paused = p
			break
		}
	}
	paused.pause(t)
	defer func() { _ = paused.cmd.Process.Signal(syscall.SIGCONT) }()
	if err := c.Set(ctx, key, "v2", 0).Err(); err != nil {
		t.Fatalf("write with one follower paused: %v", err)
	}
	start := time.Now()
	got, err := c.Wait(ctx, 2, 500*time.Millisecond).Result()
	if err != nil || got != 1 {
		info, _ := c.Info(ctx, "replication").Result()
		t.Fatalf("WAIT 2 with %s paused: %d, %v; want 1\n%s", paused.name, got, err, info)
	}
	if took := time.Since(start); took < 450*time.Millisecond {
		t.Fatalf("WAIT 2 500 with a follower paused answered after %s, before its timeout", took)
	}
	if _, err := c.Do(ctx, "WAIT", "x", "0").Result(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
		t.Fatalf("WAIT x 0: %v", err)
	}
}

// TestReplicatedWriteTooLarge: a write that would not fit in one Raft frame a peer
// accepts is refused with an error, and the group goes on serving.
func TestReplicatedWriteTooLarge(t *testing.T) {
	cfg, _ := startCluster(t, 3, func(c *config.Config) {
		replicated(c)
		c.Limits.MaxBulkLen = 1 << 20
		c.Limits.MaxRequestLen = 2 << 20
		// A forwarded write of most of a MiB, replicated to two followers, may take
		// longer than the harness's short bound on a busy machine; this test is
		// about sizes, not time.
		c.Timeouts.PeerRequest.Duration = c.Timeouts.Failover.Duration
	})
	c := plainClient(t, cfg.Nodes[0].Addr)
	ctx := context.Background()
	big := strings.Repeat("x", 1<<20-1000)
	if err := c.Set(ctx, "big", big, 0).Err(); err == nil || !strings.Contains(err.Error(), "too large to replicate") {
		t.Fatalf("SET of %d bytes with max_bulk_len 1 MiB: %v, want a too-large error", len(big), err)
	}
	ok := strings.Repeat("y", 900<<10)
	if err := c.Set(ctx, "big", ok, 0).Err(); err != nil {
		t.Fatalf("SET of %d bytes: %v", len(ok), err)
	}
	if got, err := c.Get(ctx, "big").Result(); err != nil || got != ok {
		t.Fatalf("GET big: %d bytes, %v", len(got), err)
	}
}

// TestReplicatedFiveNodesThreeCopies runs 5 nodes at R = 3, where each node holds
// three of the five ranges: nodes forward requests for the other two to leaders they
// learn of from their peers' probes. The workload goes through every node while the
// leader of range 0 is killed; the nodes outside range 0's group must find its new
// leader, and the history must be linearizable with every acknowledged write kept.
func TestReplicatedFiveNodesThreeCopies(t *testing.T) {
	seed := faultSeed(t)
	cfg, procs := startCluster(t, 5, replicated)
	addrs := addrsOf(cfg)
	hist := make(chan *lincheck.History, 1)
	go func() {
		h, err := lincheck.Run(context.Background(), lincheck.Config{
			NewClient: func(id int) redis.UniversalClient {
				return redis.NewClient(&redis.Options{Addr: addrs[id%len(addrs)], MaxRetries: -1,
					DialTimeout: time.Second, ReadTimeout: 6 * time.Second, WriteTimeout: 3 * time.Second})
			},
			Clients:  10,
			Keys:     lincheck.SpreadKeys(fmt.Sprintf("five%d:", seed), 25),
			Duration: 10 * time.Second,
			MaxOps:   200_000,
			Seed:     seed,
		})
		if err != nil {
			t.Error(err)
		}
		hist <- h
	}()
	time.Sleep(2 * time.Second)
	leader := waitLeader(t, addrs, 0, 10*time.Second)
	t.Logf("SIGKILL %s, leader of group 0", leader)
	var rest []string
	for _, p := range procs {
		if p.name == leader {
			p.kill()
		} else {
			rest = append(rest, p.addr)
		}
	}
	// Every survivor, members of group 0 or not, must agree on the new leader.
	next := waitLeader(t, rest, 0, 10*time.Second, leader)
	t.Logf("group 0: %s leads", next)
	h := <-hist
	checkHistory(t, h, rest)
}

// TestReplicatedIdleClientIsCutOff: a connection whose commands went through
// consensus is still closed once it has been idle for limits.idle_timeout.
func TestReplicatedIdleClientIsCutOff(t *testing.T) {
	cfg, _ := startCluster(t, 3, func(c *config.Config) {
		replicated(c)
		c.Limits.IdleTimeout.Duration = 500 * time.Millisecond
	})
	c := redis.NewClient(&redis.Options{Addr: cfg.Nodes[0].Addr, MaxRetries: -1, PoolSize: 1})
	defer c.Close()
	ctx := context.Background()
	var id int64
	for range 3 {
		if err := c.Set(ctx, "idle", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := c.ClientID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if id != 0 && got != id {
			t.Fatalf("connection replaced while busy: client id %d, then %d", id, got)
		}
		id = got
	}
	time.Sleep(1500 * time.Millisecond)
	got, err := c.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got == id {
		t.Fatalf("idle connection (client id %d) was not cut off after %s", id, 1500*time.Millisecond)
	}
}

// TestGroupOfOneReadsWithoutRounds: at replication degree 1 with a data directory,
// every range is a Raft group of one member, whose leader reads its state as it is:
// reads through a cluster client and through every node (forwarded), alone and
// pipelined, see every acknowledged write, and no group asks Raft for a read index.
// At degree 3 the same reads take read-index rounds.
func TestGroupOfOneReadsWithoutRounds(t *testing.T) {
	for _, r := range []int{1, 3} {
		t.Run(fmt.Sprint("R", r), func(t *testing.T) {
			cfg, procs := startCluster(t, 3, func(c *config.Config) { c.ReplicationDegree = r })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cc := clusterClient(t, cfg)
			const keys = 300
			for i := range keys {
				if err := cc.Set(ctx, fmt.Sprint("k", i), fmt.Sprint("v", i), 0).Err(); err != nil {
					t.Fatalf("SET k%d: %v", i, err)
				}
			}
			pipe := cc.Pipeline()
			gets := make([]*redis.StringCmd, keys)
			for i := range keys {
				gets[i] = pipe.Get(ctx, fmt.Sprint("k", i))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatalf("pipelined GETs: %v", err)
			}
			for i, g := range gets {
				if g.Val() != fmt.Sprint("v", i) {
					t.Fatalf("pipelined GET k%d = %q", i, g.Val())
				}
			}
			for _, p := range procs {
				c := nodeClient(t, cfg, p.addr)
				for i := 0; i < keys; i += 7 {
					k := fmt.Sprint("k", i)
					if got, err := c.Get(ctx, k).Result(); err != nil || got != fmt.Sprint("v", i) {
						t.Fatalf("GET %s through %s: %q, %v", k, p.name, got, err)
					}
					if err := c.Set(ctx, "{"+k+"}b", i, 0).Err(); err != nil {
						t.Fatalf("SET {%s}b through %s: %v", k, p.name, err)
					}
					got, err := c.MGet(ctx, "{"+k+"}b", "{"+k+"}none").Result()
					if err != nil || len(got) != 2 || got[0] != fmt.Sprint(i) || got[1] != nil {
						t.Fatalf("MGET {%s}b {%s}none through %s: %v, %v", k, k, p.name, got, err)
					}
				}
			}
			var rounds uint64
			for _, p := range procs {
				groups, err := lincheck.Replication(ctx, nodeClient(t, cfg, p.addr))
				if err != nil {
					t.Fatal(err)
				}
				for _, g := range groups {
					rounds += g.ReadRounds
				}
			}
			if r == 1 && rounds != 0 {
				t.Errorf("groups of one member asked for %d read-index rounds; want none", rounds)
			}
			if r == 3 && rounds == 0 {
				t.Error("groups of three members served reads without a read-index round")
			}
		})
	}
}
