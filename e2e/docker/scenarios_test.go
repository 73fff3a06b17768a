package docker

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/keyspace"
)

// victim is the node the failure scenarios take away; node 0 survives and
// is the node the plain client talks to.
const victim = 2

// TestContainers builds the image once and runs each scenario on a cluster of
// its own: a private network and one container per node, all removed when the
// scenario ends. Run one with -run TestContainers/Pause. The Replicated
// scenarios run at replication degree 3 (see replication_test.go); the others
// at 1.
func TestContainers(t *testing.T) {
	eng := requireEngine(t)
	image := eng.buildImage(t, uniquePrefix(t))
	for _, sc := range []struct {
		name        string
		nodes       int
		replication int
		run         func(c *cluster)
	}{
		{"StartupBarrier", 5, 1, startupBarrier},
		{"KillThenRestart", 3, 1, killThenRestart},
		{"Pause", 3, 1, pauseAndUnpause},
		{"NetworkDisconnect", 3, 1, networkDisconnect},
		{"ReplicatedNetworkDisconnect", 3, 3, replicatedNetworkDisconnect},
		{"ReplicatedKillThenRestart", 3, 3, replicatedKillThenRestart},
		{"KillAllThenRestart", 3, 3, killAllThenRestart},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(newCluster(t, eng, image, sc.nodes, sc.replication)) })
	}
}

// startupBarrier starts four of five nodes, checks that they refuse data
// commands while the fifth is missing, starts it late, and checks that the
// cluster then forms and serves every slot from every node.
func startupBarrier(c *cluster) {
	t := c.t
	early, late := []int{0, 1, 2, 3}, 4
	c.start(early...)
	for _, i := range early {
		cl := c.client(i)
		eventually(t, 20*time.Second, c.cfg.Nodes[i].Name+" answers PING", func(ctx context.Context) error {
			return cl.Ping(ctx).Err()
		})
	}

	// Twice, a while apart: refusing is the steady state, not a start-up blip.
	for round := range 2 {
		if round > 0 {
			time.Sleep(time.Duration(probeFailures+2) * probeInterval)
		}
		for _, i := range early {
			c.expectBarrierClosed(i)
		}
	}

	c.start(late)
	lateAt := time.Now()
	c.waitState("ok", 20*time.Second, 0, 1, 2, 3, 4)
	t.Logf("cluster formed %v after the late node was started", time.Since(lateAt).Round(time.Millisecond))

	for i := range c.cfg.Nodes {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		code, err := c.healthz(ctx, i)
		cancel()
		if err != nil || code != http.StatusOK {
			t.Errorf("%s /healthz = %d, %v; want 200 once the cluster is formed", c.cfg.Nodes[i].Name, code, err)
		}
		c.checkTopology(i)
	}

	// Every slot through the cluster client, and every key through every node.
	cc := c.clusterClient()
	ds := c.seed(cc, 20)
	for i := range c.cfg.Nodes {
		c.checkIntact(c.client(i), ds, 0, 1, 2, 3, 4)
	}

	if code := c.stop(0); code != 0 {
		t.Errorf("%s exited with code %d after SIGTERM, want 0", c.cfg.Nodes[0].Name, code)
	}
}

// expectBarrierClosed checks that node i, up but with the cluster incomplete,
// answers PING, refuses data commands with -CLUSTERDOWN, and reports fail.
func (c *cluster) expectBarrierClosed(i int) {
	c.t.Helper()
	name := c.cfg.Nodes[i].Name
	cl := c.client(i)
	ctx, cancel := context.WithTimeout(c.t.Context(), clientTimeout)
	defer cancel()
	if err := cl.Ping(ctx).Err(); err != nil {
		c.t.Errorf("%s: PING before the barrier: %v", name, err)
	}
	key := c.keysOf(i, 1)[0]
	if err := cl.Set(ctx, key, "x", 0).Err(); !isClusterDown(err) {
		c.t.Errorf("%s: SET %s before the barrier = %v, want -CLUSTERDOWN", name, key, err)
	}
	if err := cl.Get(ctx, key).Err(); !isClusterDown(err) {
		c.t.Errorf("%s: GET %s before the barrier = %v, want -CLUSTERDOWN", name, key, err)
	}
	if state, err := clusterState(ctx, cl); err != nil || state != "fail" {
		c.t.Errorf("%s: cluster_state before the barrier = %q, %v; want fail", name, state, err)
	}
	if code, err := c.healthz(ctx, i); err != nil || code != http.StatusServiceUnavailable {
		c.t.Errorf("%s: /healthz before the barrier = %d, %v; want 503", name, code, err)
	}
}

// checkTopology checks node i's CLUSTER SLOTS and CLUSTER MYID against the
// config: node j owns the j-th range of keyspace.Split, under its config
// address and its 40-hex id.
func (c *cluster) checkTopology(i int) {
	c.t.Helper()
	name := c.cfg.Nodes[i].Name
	cl := c.client(i)
	ctx, cancel := context.WithTimeout(c.t.Context(), clientTimeout)
	defer cancel()

	myID, err := cl.Do(ctx, "CLUSTER", "MYID").Text()
	if want := c.cfg.Nodes[i].ID(); err != nil || myID != want {
		c.t.Errorf("%s: CLUSTER MYID = %q, %v; want %q", name, myID, err, want)
	}

	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		c.t.Errorf("%s: CLUSTER SLOTS: %v", name, err)
		return
	}
	slices.SortFunc(slots, func(a, b redis.ClusterSlot) int { return a.Start - b.Start })
	ranges, err := keyspace.Split(len(c.cfg.Nodes))
	if err != nil {
		c.t.Fatal(err)
	}
	var want, got []string
	for j, r := range ranges {
		want = append(want, fmt.Sprintf("%d-%d %s %s", r.Start, r.End, c.addr(j), c.cfg.Nodes[j].ID()))
	}
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			got = append(got, fmt.Sprintf("%d-%d (no node)", s.Start, s.End))
			continue
		}
		got = append(got, fmt.Sprintf("%d-%d %s %s", s.Start, s.End, s.Nodes[0].Addr, s.Nodes[0].ID))
	}
	if !slices.Equal(got, want) {
		c.t.Errorf("%s: CLUSTER SLOTS\n got %q\nwant %q", name, got, want)
	}
}

// killThenRestart kills a node of an unreplicated cluster: requests for its
// slots must fail fast with -CLUSTERDOWN while the other nodes keep serving.
// Then it starts the node again: it rejoins with its data, kept in its volume.
func killThenRestart(c *cluster) {
	t := c.t
	c.startAll()
	cc := c.clusterClient()
	ds := c.seed(cc, 10)
	survivor := c.client(0)
	c.checkIntact(survivor, ds, 0, 1, 2)

	c.kill(victim)
	c.expectDown(survivor, ds, time.Now())
	c.expectUnreachable(cc, ds)
	c.expectServing(survivor, cc, ds)

	c.start(victim)
	restartedAt := time.Now()
	c.waitState("ok", recoverBound, 0, 1, 2)
	t.Logf("%s rejoined %v after its restart", c.cfg.Nodes[victim].Name, time.Since(restartedAt).Round(time.Millisecond))

	// The restarted node serves its slots again, with what they held: it kept its
	// data in its volume.
	eventually(t, recoverBound, "the restarted node's slots are served", func(ctx context.Context) error {
		return survivor.Get(ctx, ds.byNode[victim][0]).Err()
	})
	c.checkIntact(survivor, ds, 0, 1, 2)

	// Its slots take writes again, through the cluster client too.
	k := ds.byNode[victim][0]
	eventually(t, recoverBound, "the cluster client writes to the restarted node", func(ctx context.Context) error {
		return cc.Set(ctx, k, "after-restart", 0).Err()
	})
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	if got, err := survivor.Get(ctx, k).Result(); err != nil || got != "after-restart" {
		t.Errorf("GET %s after writing it on the restarted node = %q, %v; want \"after-restart\"", k, got, err)
	}
}

// pauseAndUnpause freezes a node: requests forwarded to it must end with -CLUSTERDOWN
// within the peer request timeout, requests sent to it directly within the
// client's timeout, and the other nodes keep serving. Thawed, the node serves
// its slots again with its data intact.
func pauseAndUnpause(c *cluster) {
	t := c.t
	c.startAll()
	cc := c.clusterClient()
	ds := c.seed(cc, 10)
	survivor := c.client(0)

	c.pause(victim)
	c.expectDown(survivor, ds, time.Now())
	// A paused node's kernel still accepts connections; only the reply never comes.
	d, err := timed(t, clientTimeout, func(ctx context.Context) error {
		return cc.Get(ctx, ds.byNode[victim][0]).Err()
	})
	if !isTimeout(err) || d > clientTimeout+slack {
		t.Errorf("cluster client GET on the paused node: %v after %v; want a timeout within %v", err, d, clientTimeout+slack)
	}
	c.expectServing(survivor, cc, ds)

	c.unpause(victim)
	c.expectBack(survivor, cc, ds)
}

// networkDisconnect takes a node off the network while it keeps running:
// requests for its slots fail with -CLUSTERDOWN within the bound and the
// other nodes keep serving. Reconnected at its address, the node serves its
// slots again with its data intact.
func networkDisconnect(c *cluster) {
	c.startAll()
	cc := c.clusterClient()
	ds := c.seed(cc, 10)
	survivor := c.client(0)

	c.disconnect(victim)
	c.expectDown(survivor, ds, time.Now())
	c.expectUnreachable(cc, ds)
	c.expectServing(survivor, cc, ds)

	c.connect(victim)
	c.expectBack(survivor, cc, ds)
}

// expectDown checks, through a surviving node's client, that requests for the
// victim's slots get -CLUSTERDOWN: the first within failBound, and from
// markDownBound after the loss on, each within fastBound.
func (c *cluster) expectDown(survivor *redis.Client, ds dataset, lostAt time.Time) {
	c.t.Helper()
	keys := ds.byNode[victim]
	d, err := timed(c.t, failBound, func(ctx context.Context) error { return survivor.Get(ctx, keys[0]).Err() })
	if !isClusterDown(err) || d > failBound {
		c.t.Fatalf("GET %s for the lost node's slot: %v after %v; want -CLUSTERDOWN within %v", keys[0], err, d, failBound)
	}
	c.t.Logf("first request for the lost node's slots: %q after %v", err, d.Round(time.Millisecond))

	eventually(c.t, markDownBound-time.Since(lostAt), "the lost node is marked down (requests for its slots refused at once)", func(ctx context.Context) error {
		d, err := timed(c.t, failBound, func(ctx context.Context) error { return survivor.Get(ctx, keys[0]).Err() })
		if !isClusterDown(err) {
			return fmt.Errorf("GET %s: %v, want -CLUSTERDOWN", keys[0], err)
		}
		if d > fastBound {
			return fmt.Errorf("GET %s: -CLUSTERDOWN after %v, want within %v", keys[0], d, fastBound)
		}
		return nil
	})
	c.t.Logf("lost node marked down %v after it was lost", time.Since(lostAt).Round(time.Millisecond))

	// Nothing hangs: every key, read and write, refused at once.
	for _, k := range keys {
		for op, f := range map[string]func(ctx context.Context) error{
			"GET": func(ctx context.Context) error { return survivor.Get(ctx, k).Err() },
			"SET": func(ctx context.Context) error { return survivor.Set(ctx, k, "while-down", 0).Err() },
		} {
			d, err := timed(c.t, fastBound, f)
			if !isClusterDown(err) || d > fastBound {
				c.t.Errorf("%s %s while its owner is down: %v after %v; want -CLUSTERDOWN within %v", op, k, err, d, fastBound)
			}
		}
	}

	// Like Redis with full coverage required: a slot without its node is a
	// cluster in state fail, and the survivor's /healthz says so.
	ctx, cancel := context.WithTimeout(c.t.Context(), clientTimeout)
	defer cancel()
	if state, err := clusterState(ctx, survivor); err != nil || state != "fail" {
		c.t.Errorf("survivor's cluster_state with a node down = %q, %v; want fail", state, err)
	}
	if code, err := c.healthz(ctx, 0); err != nil || code != http.StatusServiceUnavailable {
		c.t.Errorf("survivor's /healthz with a node down = %d, %v; want 503", code, err)
	}
}

// expectUnreachable checks that the cluster client, which talks to the lost
// node directly, gets an error for its slots within its own bounds.
func (c *cluster) expectUnreachable(cc *redis.ClusterClient, ds dataset) {
	c.t.Helper()
	limit := time.Second + clientTimeout // dial timeout, or read timeout on a pooled connection
	d, err := timed(c.t, limit, func(ctx context.Context) error { return cc.Get(ctx, ds.byNode[victim][0]).Err() })
	if err == nil || d > limit+slack {
		c.t.Errorf("cluster client GET on the lost node: %v after %v; want an error within %v", err, d, limit+slack)
	}
}

// expectServing checks that the nodes other than the victim keep serving,
// through the surviving node and through the cluster client: what was
// written reads back, and new writes succeed.
func (c *cluster) expectServing(survivor *redis.Client, cc *redis.ClusterClient, ds dataset) {
	c.t.Helper()
	var live []int
	for i := range c.cfg.Nodes {
		if i != victim {
			live = append(live, i)
		}
	}
	c.checkIntact(survivor, ds, live...)
	c.checkIntact(cc, ds, live...)
	for _, i := range live {
		k := c.keysOf(i, len(ds.byNode[i])+1)[len(ds.byNode[i])]
		for via, cl := range map[string]redis.Cmdable{"survivor": survivor, "cluster client": cc} {
			d, err := timed(c.t, clientTimeout, func(ctx context.Context) error { return cl.Set(ctx, k, "written-"+via, 0).Err() })
			if err != nil {
				c.t.Errorf("SET %s (owned by live %s) via %s while another node is down: %v after %v", k, c.cfg.Nodes[i].Name, via, err, d)
			}
		}
	}
}

// expectBack waits until the victim serves its slots again and checks that
// all data is intact, through the survivor and through the cluster client.
func (c *cluster) expectBack(survivor *redis.Client, cc *redis.ClusterClient, ds dataset) {
	c.t.Helper()
	backAt := time.Now()
	eventually(c.t, recoverBound, "the victim's slots are served again", func(ctx context.Context) error {
		return survivor.Get(ctx, ds.byNode[victim][0]).Err()
	})
	c.t.Logf("victim's slots served again %v after it came back", time.Since(backAt).Round(time.Millisecond))
	c.waitState("ok", recoverBound, 0, 1, 2)
	c.checkIntact(survivor, ds, 0, 1, 2)
	eventually(c.t, recoverBound, "the cluster client reads the victim's keys", func(ctx context.Context) error {
		return cc.Get(ctx, ds.byNode[victim][0]).Err()
	})
	c.checkIntact(cc, ds, 0, 1, 2)
}

// killAllThenRestart kills every node's container at once (SIGKILL) and starts them
// again on their volumes: the cluster comes back whole, with every key.
func killAllThenRestart(c *cluster) {
	t := c.t
	c.startAll()
	cc := c.clusterClient()
	ds := c.seed(cc, 20)
	for i := range c.cfg.Nodes {
		c.kill(i)
	}
	c.startAll()
	c.checkIntact(c.client(0), ds, 0, 1, 2)
	t.Logf("every node killed and restarted on its volume: %d keys intact", len(ds.values))
}
