package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
)

func TestClusterClientConcurrentRoundTrips(t *testing.T) {
	cfg, _ := startCluster(t, 3, nil)
	ctx := context.Background()
	cc := clusterClient(t, cfg)
	const workers, perWorker = 16, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				k, v := fmt.Sprintf("w%d:k%d", w, i), fmt.Sprintf("v%d-%d\x00\r\n", w, i)
				if err := cc.Set(ctx, k, v, 0).Err(); err != nil {
					errs <- fmt.Errorf("set %s: %w", k, err)
					return
				}
				got, err := cc.Get(ctx, k).Result()
				if err != nil || got != v {
					errs <- fmt.Errorf("get %s = %q, %v; want %q", k, got, err, v)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Keys landed on every node, DBSIZE on each counts its own, and INFO cluster on
	// any node counts the whole cluster.
	if sum := dbsizeSum(ctx, t, cfg); sum != workers*perWorker {
		t.Errorf("DBSIZE adds up to %d over the nodes; want %d", sum, workers*perWorker)
	}
	for _, n := range cfg.Nodes {
		c := plainClient(t, n.Addr)
		// DHT.KEYCOUNT is for peers only; INFO keyspace counts the node's keys.
		info, err := c.Info(ctx, "keyspace").Result()
		local := 0
		if err == nil {
			_, err = fmt.Sscanf(info[strings.Index(info, "db0:"):], "db0:keys=%d", &local)
		}
		if err != nil || local == 0 {
			t.Errorf("node %s holds %d keys (%v); want a share of them", n.Name, local, err)
		}
		if size, err := c.DBSize(ctx).Result(); err != nil || size != int64(local) {
			t.Errorf("DBSIZE on %s = %d, %v; want %d, as INFO keyspace says", n.Name, size, err, local)
		}
		if total, err := clusterKeys(ctx, c); err != nil || total != workers*perWorker {
			t.Errorf("dht_cluster_keys on %s = %d, %v; want %d", n.Name, total, err, workers*perWorker)
		}
	}
}

func TestPlainClientThroughAnyNode(t *testing.T) {
	cfg, _ := startCluster(t, 3, nil)
	ctx := context.Background()
	cc := clusterClient(t, cfg)
	// Write through n1 keys owned by every node; read them back through n3 and directly.
	via1, via3 := plainClient(t, cfg.Nodes[0].Addr), plainClient(t, cfg.Nodes[2].Addr)
	for owner := range 3 {
		for _, k := range keysOn(t, 3, owner, 20, fmt.Sprintf("owner%d", owner)) {
			if err := via1.Set(ctx, k, "x"+k, 0).Err(); err != nil {
				t.Fatalf("SET %s via n1: %v", k, err)
			}
			for name, c := range map[string]redis.Cmdable{"n3": via3, "cluster client": cc} {
				if got, err := c.Get(ctx, k).Result(); err != nil || got != "x"+k {
					t.Fatalf("GET %s via %s = %q, %v", k, name, got, err)
				}
			}
		}
	}
	// Multi-key commands in one slot are forwarded whole.
	if err := via1.MSet(ctx, "{u1}.a", "1", "{u1}.b", "2").Err(); err != nil {
		t.Fatal(err)
	}
	vals, err := via3.MGet(ctx, "{u1}.a", "{u1}.b", "{u1}.missing").Result()
	if err != nil || fmt.Sprint(vals) != "[1 2 <nil>]" {
		t.Fatalf("MGET = %v, %v", vals, err)
	}
}

func TestMovedMode(t *testing.T) {
	cfg, _ := startCluster(t, 3, func(c *config.Config) { c.Routing = config.RoutingMoved })
	ctx := context.Background()
	k := keysOn(t, 3, 1, 1, "moved")[0]
	err := plainClient(t, cfg.Nodes[0].Addr).Set(ctx, k, "v", 0).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "MOVED ") || !strings.HasSuffix(err.Error(), " "+cfg.Nodes[1].Addr) {
		t.Fatalf("SET of n2's key on n1 in moved mode: %v; want MOVED <slot> %s", err, cfg.Nodes[1].Addr)
	}
	// A cluster client follows the redirects.
	cc := clusterClient(t, cfg)
	if err := cc.Set(ctx, k, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := cc.Get(ctx, k).Result(); got != "v" {
		t.Fatalf("GET = %q", got)
	}
}

func TestErrorsAsRedisWritesThem(t *testing.T) {
	cfg, _ := startCluster(t, 3, nil)
	ctx := context.Background()
	c := plainClient(t, cfg.Nodes[0].Addr)
	cases := []struct {
		args []any
		want string
	}{
		{[]any{"get"}, "ERR wrong number of arguments for 'get' command"},
		{[]any{"mset", "a", "1", "b"}, "ERR wrong number of arguments for 'mset' command"},
		{[]any{"frobnicate", "x", "y"}, "ERR unknown command 'frobnicate', with args beginning with: 'x' 'y' "},
		{[]any{"set", "k", "v", "ex", "ten"}, "ERR value is not an integer or out of range"},
		{[]any{"set", "k", "v", "ex", "0"}, "ERR invalid expire time in 'set' command"},
		{[]any{"set", "k", "v", "nx", "xx"}, "ERR syntax error"},
		{[]any{"set", "k", "v", "bogus"}, "ERR syntax error"},
		{[]any{"rename", "a", "b"}, "CROSSSLOT Keys in request don't hash to the same slot"},
		{[]any{"copy", "a", "b"}, "CROSSSLOT Keys in request don't hash to the same slot"},
		{[]any{"hello", "3"}, "NOPROTO unsupported protocol version"},
		{[]any{"select", "1"}, "ERR SELECT is not allowed in cluster mode"},
		{[]any{"cluster", "frob"}, "ERR unknown subcommand 'frob'. Try CLUSTER HELP."},
	}
	for _, tc := range cases {
		err := c.Do(ctx, tc.args...).Err()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestCommandsAndOptions(t *testing.T) {
	cfg, _ := startCluster(t, 3, nil)
	ctx := context.Background()
	c := clusterClient(t, cfg)
	if ok, err := c.SetNX(ctx, "pia", "first", 0).Result(); !ok || err != nil {
		t.Fatalf("SETNX on a new key = %v, %v", ok, err)
	}
	if ok, _ := c.SetNX(ctx, "pia", "second", 0).Result(); ok {
		t.Fatal("SETNX on an existing key succeeded")
	}
	if err := c.SetArgs(ctx, "pia", "third", redis.SetArgs{Mode: "NX"}).Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("SET NX on an existing key = %v, want nil reply", err)
	}
	if old, err := c.SetArgs(ctx, "pia", "fourth", redis.SetArgs{Get: true}).Result(); old != "first" || err != nil {
		t.Fatalf("SET GET = %q, %v; want the old value", old, err)
	}
	if err := c.SetArgs(ctx, "absent", "v", redis.SetArgs{Mode: "XX"}).Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("SET XX on a missing key = %v", err)
	}
	if err := c.Set(ctx, "short", "v", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := c.PTTL(ctx, "short").Result(); ttl <= 0 || ttl > 300*time.Millisecond {
		t.Fatalf("PTTL = %v", ttl)
	}
	time.Sleep(400 * time.Millisecond)
	if n, _ := c.Exists(ctx, "short").Result(); n != 0 {
		t.Fatal("key with PX 300 still exists after 400ms")
	}
	if n, _ := c.Del(ctx, "pia").Result(); n != 1 {
		t.Fatalf("DEL = %d", n)
	}
	if n, _ := c.MSetNX(ctx, "{t}a", "1", "{t}b", "2").Result(); !n {
		t.Fatal("MSETNX on new keys failed")
	}
	if n, _ := c.MSetNX(ctx, "{t}b", "x", "{t}c", "3").Result(); n {
		t.Fatal("MSETNX with one existing key succeeded")
	}
	if n, _ := c.Exists(ctx, "{t}c").Result(); n != 0 {
		t.Fatal("a failed MSETNX wrote a key")
	}
	if slot, _ := c.ClusterKeySlot(ctx, "foo").Result(); slot != 12182 {
		t.Fatalf("CLUSTER KEYSLOT foo = %d", slot)
	}
	shards, err := c.ClusterShards(ctx).Result()
	if err != nil || len(shards) != 3 {
		t.Fatalf("CLUSTER SHARDS = %v, %v", shards, err)
	}
	ids := map[string]bool{}
	for _, sh := range shards {
		ids[sh.Nodes[0].ID] = true
	}
	for _, n := range cfg.Nodes {
		if !ids[n.ID()] {
			t.Errorf("CLUSTER SHARDS lacks node %s id %s", n.Name, n.ID())
		}
		myid, err := plainClient(t, n.Addr).ClusterMyID(ctx).Result()
		if err != nil || myid != n.ID() {
			t.Errorf("CLUSTER MYID on %s = %q, %v", n.Name, myid, err)
		}
	}
	if info, err := c.Info(ctx, "cluster").Result(); err != nil || !strings.Contains(info, "cluster_enabled:1") {
		t.Fatalf("INFO cluster = %q, %v", info, err)
	}
	// total_commands_processed counts the commands that ran, as Redis's does: not
	// unknown ones (peers' probes do count). INFO counts once it has run.
	pc := plainClient(t, cfg.Nodes[0].Addr)
	before := commandsProcessed(t, pc)
	_ = pc.Do(ctx, "NOSUCHCOMMAND").Err()
	_ = pc.Ping(ctx).Err()
	if after := commandsProcessed(t, pc); after < before+2 {
		t.Errorf("total_commands_processed went from %d to %d over INFO, an unknown command and PING", before, after)
	}
}

// commandsProcessed reads INFO's total_commands_processed.
func commandsProcessed(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("INFO stats has no total_commands_processed: %q", info)
	return 0
}

func TestStartupBarrier(t *testing.T) {
	cfg, path := testConfig(t, 3, nil)
	ctx := context.Background()
	n1 := startNode(t, path, cfg, "n1")
	startNode(t, path, cfg, "n2")
	c := plainClient(t, n1.addr)
	waitPing(t, c)
	// n3 is missing: PING answers, data commands are refused, the log names n3.
	time.Sleep(2500 * time.Millisecond)
	if err := c.Set(ctx, "k", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "CLUSTERDOWN") || !strings.Contains(err.Error(), "n3") {
		t.Fatalf("SET before the barrier = %v; want CLUSTERDOWN naming n3", err)
	}
	if info, _ := c.ClusterInfo(ctx).Result(); !strings.Contains(info, "cluster_state:fail") {
		t.Fatalf("CLUSTER INFO before the barrier: %q", info)
	}
	if log := n1.log.String(); !strings.Contains(log, "waiting for nodes") || !strings.Contains(log, "waiting=n3") {
		t.Fatalf("n1's log does not say it waits for n3:\n%s", log)
	}
	// The late node arrives: the barrier passes everywhere.
	startNode(t, path, cfg, "n3")
	for _, n := range cfg.Nodes {
		waitState(t, n.Addr, "ok", 10*time.Second)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET after the barrier: %v", err)
	}
}

func TestConfigMismatchHoldsTheBarrier(t *testing.T) {
	cfg, path := testConfig(t, 2, nil)
	other := cfg
	other.Routing = config.RoutingMoved // a different digest
	otherPath := writeConfig(t, other)
	n1 := startNode(t, path, cfg, "n1")
	startNode(t, otherPath, other, "n2")
	c := plainClient(t, n1.addr)
	waitPing(t, c)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(n1.log.String(), "different config") {
		if time.Now().After(deadline) {
			t.Fatalf("n1 never reported n2's different config:\n%s", n1.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "CLUSTERDOWN") {
		t.Fatalf("SET with a mismatched peer = %v; want CLUSTERDOWN", err)
	}
}

func TestDeadPeer(t *testing.T) {
	cfg, procs := startCluster(t, 3, nil)
	ctx := context.Background()
	c := plainClient(t, cfg.Nodes[0].Addr)
	deadKeys, liveKeys := keysOn(t, 3, 2, 10, "dead"), keysOn(t, 3, 1, 10, "live")
	for _, k := range append(append([]string{}, deadKeys...), liveKeys...) {
		if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	procs[2].kill()
	// Requests for the dead node's slots fail with CLUSTERDOWN, bounded by the
	// request timeout; once probes mark it down they fail at once.
	bound := cfg.Timeouts.PeerRequest.Duration + time.Second
	for _, k := range deadKeys {
		start := time.Now()
		err := c.Get(ctx, k).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "CLUSTERDOWN") {
			t.Fatalf("GET %s on a dead owner = %v; want CLUSTERDOWN", k, err)
		}
		if took := time.Since(start); took > bound {
			t.Fatalf("GET %s took %s; want under %s", k, took, bound)
		}
	}
	waitState(t, cfg.Nodes[0].Addr, "fail", 5*time.Second)
	for _, k := range liveKeys {
		if v, err := c.Get(ctx, k).Result(); err != nil || v != "v" {
			t.Fatalf("GET %s on a live owner = %q, %v", k, v, err)
		}
	}
	nodes, _ := c.ClusterNodes(ctx).Result()
	if !strings.Contains(nodes, cfg.Nodes[2].ID()+" "+cfg.Nodes[2].Addr+"@") || !strings.Contains(nodes, "master,fail") {
		t.Fatalf("CLUSTER NODES does not flag the dead node:\n%s", nodes)
	}
}

func TestGracefulShutdown(t *testing.T) {
	cfg, procs := startCluster(t, 1, nil)
	c := plainClient(t, cfg.Nodes[0].Addr)
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := procs[0].stop(t, syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, procs[0].log.String())
	}
	if !strings.Contains(procs[0].log.String(), "stopped") {
		t.Fatalf("no clean stop in the log:\n%s", procs[0].log.String())
	}
}

func waitPing(t *testing.T, c *redis.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("node never answered PING")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
