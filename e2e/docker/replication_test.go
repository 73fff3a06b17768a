package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/lincheck"
)

// The replicated scenarios run a 3-node cluster at R = 3: slot range g is a Raft
// group of all three nodes. While real clients record a history (package
// lincheck), they take away the node that leads one group, chosen by a seeded
// schedule, bring it back, and check that the history is linearizable and that
// every acknowledged write reads back.
//
// The clients reach the nodes in two ways: a go-redis ClusterClient at the
// addresses of the config, on the cluster network, as any client would, and a
// plain client of each node on the access network, which stays up when a node
// is cut off from the cluster network. So the history also holds what the cut-off
// node answered, and the test can ask it directly whether it still acknowledges
// writes.

// Bounds of the replicated scenarios, from the timeouts of newCluster.
const (
	// answerBound: a node answers a request within it, with a leader or with
	// -CLUSTERDOWN without one. A request waits up to failover for its group to
	// have a leader; if it is forwarded at the end of the wait, the forward takes
	// up to peerRequest.
	answerBound = failover + peerRequest + slack
	// electBound: the majority of a group agrees on a new leader within it once
	// the old one is gone (Raft's election timeout is 1 to 2 s).
	electBound = 10 * time.Second
	// catchUpBound: a node that is back has caught up with its groups within it.
	catchUpBound = 30 * time.Second
	// workloadFor is how long the clients run.
	workloadFor = 18 * time.Second
	// workloadClients is how many clients run at once.
	workloadClients = 6
)

// faultSeed is the seed of a scenario's fault schedule: $DHT_FAULT_SEED, or a
// fresh one. It is logged either way, so a failing schedule can be replayed.
func (c *cluster) faultSeed() uint64 {
	c.t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv("DHT_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			c.t.Fatalf("DHT_FAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	c.t.Logf("fault seed %d (replay with DHT_FAULT_SEED=%d)", seed, seed)
	return seed
}

// schedule is a scenario's fault schedule, drawn from its seed.
type schedule struct {
	seed   uint64
	group  int           // the group whose leader is taken away
	before time.Duration // how long the workload runs before the fault
	during time.Duration // how long the node stays away once a new leader is elected
}

func (c *cluster) schedule() schedule {
	seed := c.faultSeed()
	rng := rand.New(rand.NewPCG(seed, seed))
	s := schedule{
		seed:   seed,
		group:  rng.IntN(len(c.cfg.Nodes)),
		before: time.Duration(1500+rng.IntN(1500)) * time.Millisecond,
		during: time.Duration(1000+rng.IntN(2000)) * time.Millisecond,
	}
	c.t.Logf("schedule: take away the leader of group %d after %v, keep it away %v after a new leader is elected",
		s.group, s.before, s.during)
	return s
}

// startWorkload runs the lincheck workload for workloadFor in the background:
// even clients use a ClusterClient, odd ones a plain client of one node on the
// access network, so that both routing by the client and forwarding by the node
// are exercised. Neither ever resends a command. Receive the history from the
// channel.
func (c *cluster) startWorkload(seed uint64) <-chan *lincheck.History {
	c.t.Helper()
	out := make(chan *lincheck.History, 1)
	newClient := func(id int) redis.UniversalClient {
		if id%2 == 0 {
			return lincheck.NewClusterClient(c.addrs())
		}
		return redis.NewClient(&redis.Options{Addr: c.hostAddr(id / 2 % len(c.cfg.Nodes)), MaxRetries: -1,
			DialTimeout: time.Second, ReadTimeout: answerBound, WriteTimeout: time.Second})
	}
	go func() {
		h, err := lincheck.Run(context.Background(), lincheck.Config{
			NewClient: newClient,
			Clients:   workloadClients,
			Keys:      lincheck.SpreadKeys(fmt.Sprintf("rep%d:", seed), 12),
			Duration:  workloadFor,
			MaxOps:    200_000,
			Seed:      seed,
			Logger:    slog.New(slog.NewTextHandler(c.t.Output(), nil)),
		})
		if err != nil {
			c.t.Error(err)
		}
		out <- h
	}()
	return out
}

// groupsOf reads node i's INFO replication, at its host address.
func (c *cluster) groupsOf(ctx context.Context, cl *redis.Client) (map[int]lincheck.Group, error) {
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	return lincheck.Replication(ctx, cl)
}

// index returns the index of the node named name.
func (c *cluster) index(name string) int {
	c.t.Helper()
	for i, n := range c.cfg.Nodes {
		if n.Name == name {
			return i
		}
	}
	c.t.Fatalf("no node %q", name)
	return -1
}

// others lists the nodes other than i.
func (c *cluster) others(i int) []int {
	var out []int
	for j := range c.cfg.Nodes {
		if j != i {
			out = append(out, j)
		}
	}
	return out
}

// waitLeader waits until the given nodes agree, in INFO replication, on a
// leader of group g that is one of them and is not node not (-1: any), and
// returns its index.
func (c *cluster) waitLeader(g int, within time.Duration, nodes []int, not int) int {
	c.t.Helper()
	leader := -1
	clients := make([]*redis.Client, len(nodes))
	for k, i := range nodes {
		clients[k] = c.client(i)
	}
	eventually(c.t, within, fmt.Sprintf("nodes %v agree on a leader of group %d among them", nodes, g), func(ctx context.Context) error {
		agreed := ""
		for k, cl := range clients {
			groups, err := c.groupsOf(ctx, cl)
			if err != nil {
				return fmt.Errorf("%s: %w", c.cfg.Nodes[nodes[k]].Name, err)
			}
			l := groups[g].Leader
			if l == "" || l == "none" || k > 0 && l != agreed {
				return fmt.Errorf("%s names leader %q, the others before it %q", c.cfg.Nodes[nodes[k]].Name, l, agreed)
			}
			agreed = l
		}
		i := c.index(agreed)
		if i == not || !containsInt(nodes, i) {
			return fmt.Errorf("they agree on %s", agreed)
		}
		leader = i
		return nil
	})
	return leader
}

// expectMinorityRefuses sends a SET of a key of every group and a GET straight
// to node v, cut off from the others, all at once, and checks that each gets
// -CLUSTERDOWN within answerBound: a node without a majority neither
// acknowledges a write nor serves a read, and does not hang. It returns the
// keys it tried to write in group g, which v led when it was cut off. Each
// round (0 or 1) writes keys of its own.
func (c *cluster) expectMinorityRefuses(v, g, round int) []string {
	c.t.Helper()
	cl := c.clientWithin(v, answerBound+slack)
	type attempt struct {
		what string
		f    func(ctx context.Context) error
	}
	var attempts []attempt
	var ownKeys []string
	for h := range c.cfg.Nodes {
		k := c.keysOf(h, 4)[2+round] // 0 and 1 are expectMajorityServes's
		if h == g {
			ownKeys = append(ownKeys, k)
		}
		attempts = append(attempts, attempt{fmt.Sprintf("SET %s (group %d)", k, h), func(ctx context.Context) error {
			return cl.Set(ctx, k, "from-the-minority", 0).Err()
		}})
	}
	k := c.keysOf(g, 1)[0] // never written
	attempts = append(attempts, attempt{fmt.Sprintf("GET %s (group %d)", k, g), func(ctx context.Context) error {
		return cl.Get(ctx, k).Err()
	}})
	var wg sync.WaitGroup
	for _, a := range attempts {
		wg.Go(func() {
			d, err := timed(c.t, answerBound, a.f)
			switch {
			case err == nil || errors.Is(err, redis.Nil):
				c.t.Errorf("%s on %s, cut off from the others (round %d): succeeded after %v; a node without a majority must refuse it",
					a.what, c.cfg.Nodes[v].Name, round, d.Round(time.Millisecond))
			case !isClusterDown(err) || d > answerBound:
				c.t.Errorf("%s on %s, cut off from the others (round %d): %v after %v; want -CLUSTERDOWN within %v",
					a.what, c.cfg.Nodes[v].Name, round, err, d.Round(time.Millisecond), answerBound)
			default:
				c.t.Logf("%s on cut-off %s (round %d): -CLUSTERDOWN after %v", a.what, c.cfg.Nodes[v].Name, round, d.Round(time.Millisecond))
			}
		})
	}
	wg.Wait()
	return ownKeys
}

// expectMajorityServes checks that a write of a key of group g through each of
// the given nodes is acknowledged within answerBound and reads back through
// each of them.
func (c *cluster) expectMajorityServes(g int, nodes []int) {
	c.t.Helper()
	k := c.keysOf(g, 2)[1]
	for _, i := range nodes {
		v := "via-" + c.cfg.Nodes[i].Name
		d, err := timed(c.t, answerBound, func(ctx context.Context) error { return c.client(i).Set(ctx, k, v, 0).Err() })
		if err != nil || d > answerBound {
			c.t.Errorf("SET %s (group %d) via %s with the old leader gone: %v after %v; want OK within %v", k, g, c.cfg.Nodes[i].Name, err, d.Round(time.Millisecond), answerBound)
			continue
		}
		for _, j := range nodes {
			ctx, cancel := context.WithTimeout(c.t.Context(), answerBound)
			got, err := c.client(j).Get(ctx, k).Result()
			cancel()
			if err != nil || got != v {
				c.t.Errorf("GET %s via %s after %s acknowledged %q: %q, %v", k, c.cfg.Nodes[j].Name, c.cfg.Nodes[i].Name, v, got, err)
			}
		}
	}
}

// waitCaughtUp waits until node i takes part in the elections of all its groups:
// a node that restarted empty holds back until it has caught up.
func (c *cluster) waitCaughtUp(i int, within time.Duration) {
	c.t.Helper()
	cl := c.client(i)
	eventually(c.t, within, c.cfg.Nodes[i].Name+" holds none of its groups back", func(ctx context.Context) error {
		groups, err := c.groupsOf(ctx, cl)
		if err != nil {
			return err
		}
		if len(groups) != len(c.cfg.Nodes) {
			return fmt.Errorf("member of %d groups, want %d: %+v", len(groups), len(c.cfg.Nodes), groups)
		}
		for _, g := range groups {
			if g.Held {
				return fmt.Errorf("group %d held: %+v", g.ID, g)
			}
		}
		return nil
	})
}

// expectConverged waits, with no more writes coming, until every node agrees on
// each group's leader and term and has applied everything the leader committed.
func (c *cluster) expectConverged(within time.Duration) {
	c.t.Helper()
	var clients []*redis.Client
	for i := range c.cfg.Nodes {
		clients = append(clients, c.client(i))
	}
	eventually(c.t, within, "every node has applied each group's log up to its leader's commit", func(ctx context.Context) error {
		var views []map[int]lincheck.Group
		for i, cl := range clients {
			groups, err := c.groupsOf(ctx, cl)
			if err != nil {
				return fmt.Errorf("%s: %w", c.cfg.Nodes[i].Name, err)
			}
			views = append(views, groups)
		}
		for g := range c.cfg.Nodes {
			lead := views[0][g]
			if lead.Leader == "none" || lead.Leader == "" {
				return fmt.Errorf("group %d: %s knows no leader", g, c.cfg.Nodes[0].Name)
			}
			commit := views[c.index(lead.Leader)][g].Commit
			for i, v := range views {
				st := v[g]
				if st.Leader != lead.Leader || st.Term != lead.Term {
					return fmt.Errorf("group %d: %s says leader %s in term %d, %s says %s in term %d",
						g, c.cfg.Nodes[0].Name, lead.Leader, lead.Term, c.cfg.Nodes[i].Name, st.Leader, st.Term)
				}
				if st.Applied != commit || st.Held {
					return fmt.Errorf("group %d: %s applied %d (held %v), its leader %s committed %d",
						g, c.cfg.Nodes[i].Name, st.Applied, st.Held, lead.Leader, commit)
				}
			}
		}
		return nil
	})
	for i, cl := range clients {
		ctx, cancel := context.WithTimeout(c.t.Context(), clientTimeout)
		groups, err := c.groupsOf(ctx, cl)
		cancel()
		c.t.Logf("%s: %+v, %v", c.cfg.Nodes[i].Name, groups, err)
	}
}

// checkHistory checks that the history is linearizable and that every
// acknowledged write reads back, through the cluster client and then through
// node back (the node that was taken away) alone.
func (c *cluster) checkHistory(h *lincheck.History, back int) {
	c.t.Helper()
	st := h.Stats()
	c.t.Logf("workload seed %d: %+v", h.Seed, st)
	if st.Writes < 100 {
		c.t.Fatalf("only %d acknowledged writes: the cluster barely served", st.Writes)
	}
	checker := lincheck.Checker{Dir: c.t.ArtifactDir(), Timeout: time.Minute, Logger: slog.New(slog.NewTextHandler(c.t.Output(), nil))}
	if err := checker.Check(h); err != nil {
		c.t.Fatalf("%v\n(go test -artifacts keeps the visualization)", err)
	}
	cc := lincheck.NewClusterClient(c.addrs())
	defer cc.Close()
	for via, rc := range map[string]redis.UniversalClient{"the cluster client": cc, c.cfg.Nodes[back].Name: c.clientWithin(back, answerBound)} {
		ctx, cancel := context.WithTimeout(c.t.Context(), 30*time.Second)
		err := checker.CheckDurable(ctx, rc, h)
		cancel()
		if err != nil {
			c.t.Fatalf("reading every key back through %s: %v\n(go test -artifacts keeps the visualization)", via, err)
		}
	}
}

// replicatedNetworkDisconnect cuts the leader of a group off the cluster
// network while clients run. The cut-off node must stop acknowledging writes
// and serving reads (-CLUSTERDOWN within the failover bound, no hang), the other
// two must elect a new leader of the group and serve it; reconnected, the node
// must catch up. The history must be linearizable, every acknowledged write
// must read back, and the writes the cut-off node refused in the group it led
// must never take effect.
func replicatedNetworkDisconnect(c *cluster) {
	t := c.t
	c.startAll()
	s := c.schedule()
	hist := c.startWorkload(s.seed)
	time.Sleep(s.before)

	v := c.waitLeader(s.group, electBound, c.all(), -1)
	t.Logf("disconnecting %s, leader of group %d", c.cfg.Nodes[v].Name, s.group)
	c.disconnect(v)
	lostAt := time.Now()

	// While the majority elects, the cut-off node is asked directly.
	var refused []string
	minority := make(chan struct{})
	go func() { defer close(minority); refused = c.expectMinorityRefuses(v, s.group, 0) }()
	next := c.waitLeader(s.group, electBound, c.others(v), v)
	t.Logf("group %d: %s leads %v after %s was cut off", s.group, c.cfg.Nodes[next].Name, time.Since(lostAt).Round(time.Millisecond), c.cfg.Nodes[v].Name)
	<-minority
	c.expectMajorityServes(s.group, c.others(v))
	// By now the cut-off node has certainly lost its lead: still nothing.
	refused = append(refused, c.expectMinorityRefuses(v, s.group, 1)...)
	time.Sleep(s.during)

	c.connect(v)
	healedAt := time.Now()
	c.waitCaughtUp(v, catchUpBound)
	c.waitLeader(s.group, electBound, c.all(), -1)
	t.Logf("%s back on the network; all nodes agree on group %d's leader %v later", c.cfg.Nodes[v].Name, s.group, time.Since(healedAt).Round(time.Millisecond))

	h := <-hist
	c.expectConverged(catchUpBound)
	c.checkHistory(h, v)
	// Raft drops the uncommitted entries of a leader that lost its majority.
	for _, k := range refused {
		ctx, cancel := context.WithTimeout(t.Context(), answerBound)
		err := c.client(0).Get(ctx, k).Err()
		cancel()
		if !errors.Is(err, redis.Nil) {
			t.Errorf("GET %s, written only to the cut-off leader and refused: %v; want it absent", k, err)
		}
	}
}

// replicatedKillThenRestart kills the leader of a group while clients run: the
// other two must elect a new leader and serve the group. Started again, the
// node comes back empty (memory only) and must catch up from the others. The
// history must be linearizable and every acknowledged write must read back,
// through the restarted node too.
func replicatedKillThenRestart(c *cluster) {
	t := c.t
	c.startAll()
	s := c.schedule()
	hist := c.startWorkload(s.seed)
	time.Sleep(s.before)

	v := c.waitLeader(s.group, electBound, c.all(), -1)
	t.Logf("killing %s, leader of group %d", c.cfg.Nodes[v].Name, s.group)
	c.kill(v)
	lostAt := time.Now()

	next := c.waitLeader(s.group, electBound, c.others(v), v)
	t.Logf("group %d: %s leads %v after %s was killed", s.group, c.cfg.Nodes[next].Name, time.Since(lostAt).Round(time.Millisecond), c.cfg.Nodes[v].Name)
	c.expectMajorityServes(s.group, c.others(v))
	time.Sleep(s.during)

	c.start(v)
	restartedAt := time.Now()
	c.waitState("ok", recoverBound, v)
	c.waitCaughtUp(v, catchUpBound)
	c.waitLeader(s.group, electBound, c.all(), -1)
	t.Logf("%s restarted; caught up and all nodes agree on group %d's leader %v later", c.cfg.Nodes[v].Name, s.group, time.Since(restartedAt).Round(time.Millisecond))

	h := <-hist
	c.expectConverged(catchUpBound)
	c.checkHistory(h, v)
}

// all lists every node.
func (c *cluster) all() []int { return c.others(-1) }

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
