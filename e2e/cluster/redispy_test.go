package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/keyspace"
)

// pythonWithRedis finds a Python that has redis-py (Debian: python3-redis).
func pythonWithRedis(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(py); err == nil && exec.Command(path, "-c", "import redis.cluster").Run() == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no python3 with redis-py under CI=true (apt-get install python3-redis)")
	}
	t.Skip("no python3 with redis-py (apt-get install python3-redis)")
	return ""
}

// failoverWriter writes keys over every slot through redis-py's RedisCluster for the
// given seconds, one line of JSON per second: how many writes succeeded and failed
// in it, and how many succeeded in the slots from lo to hi. The client is built once
// and never restarted.
//
// redis-py before 4.4 (Debian 12 ships 4.3.4) cannot rebuild its slot map once a node
// refused a connection: it deep-copies its connection options, which hold a method
// of the client itself, and fails with "cannot pickle '_thread.lock' object"
// (redis-py issues 2297 and 2354, fixed by pull request 2377). It does so against a
// Redis Cluster too. The script lets the client be copied as itself, which is what
// the fix amounts to.
const failoverWriter = `
import json, sys, time
from redis.cluster import RedisCluster, ClusterNode
RedisCluster.__deepcopy__ = lambda self, memo: self
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
lo, hi = int(sys.argv[4]), int(sys.argv[5])
rc = RedisCluster(startup_nodes=[ClusterNode(host, port)], socket_timeout=2, socket_connect_timeout=1)
end = time.time() + seconds
i = 0
while time.time() < end:
    second_end = min(end, time.time() + 1)
    ok = failed = in_range = 0
    while time.time() < second_end:
        i += 1
        key = "py:%d" % (i % 3000)
        try:
            rc.set(key, i)
            ok += 1
            in_range += lo <= rc.keyslot(key) <= hi
        except Exception:
            failed += 1
            time.sleep(0.05)
    print(json.dumps({"ok": ok, "failed": failed, "in_range": in_range}), flush=True)
`

// TestRedisPyFollowsFailover kills the node leading a third of the slots while
// redis-py's RedisCluster writes over all of them: the same client object must be
// writing every key again once the group has a new leader.
func TestRedisPyFollowsFailover(t *testing.T) {
	py := pythonWithRedis(t)
	cfg, procs := startCluster(t, 3, replicated)
	leader := waitLeader(t, addrsOf(cfg), 0, 10*time.Second)
	var other string
	for _, n := range cfg.Nodes {
		if n.Name != leader {
			other = n.Addr
			break
		}
	}
	host, port, err := net.SplitHostPort(other)
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := keyspace.Split(3)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := strconv.Itoa(ranges[0].Start), strconv.Itoa(ranges[0].End)
	cmd := exec.Command(py, "-c", failoverWriter, host, port, "10", lo, hi)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	type second struct {
		OK, Failed int
		InRange    int `json:"in_range"`
	}
	var seconds []second
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var s second
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("writer said %q: %v", sc.Text(), err)
		}
		seconds = append(seconds, s)
		if len(seconds) == 3 {
			for _, p := range procs {
				if p.name == leader {
					t.Logf("SIGKILL %s, leader of group 0", leader)
					p.kill()
				}
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	t.Logf("writes per second (ok/failed/ok in group 0's slots): %v", seconds)
	if len(seconds) < 8 {
		t.Fatalf("writer reported %d seconds, want 10", len(seconds))
	}
	inRange := 0
	for _, s := range seconds[len(seconds)-3:] {
		if s.Failed > 0 {
			t.Fatalf("redis-py still failing seconds after the failover: %v", seconds)
		}
		inRange += s.InRange
	}
	if inRange == 0 {
		t.Fatalf("redis-py wrote nothing to the slots that failed over in the last 3 seconds: %v", seconds)
	}
}

// keyspaceScript drives the keyspace commands and transactions through redis-py's
// RedisCluster: FLUSHALL, SCAN, DBSIZE, KEYS and RANDOMKEY go to every node and their
// answers are added up; MULTI/EXEC and WATCH run on the connection of the key's node.
// It prints "ok" or fails.
//
// The commands name target_nodes=ALL_NODES: a node answers for the slots it leads
// when asked, and one that leads nothing answers for no slot, so asking every node
// adds up right even if the lead moves after redis-py read the layout (redis-py's
// own primaries are TestRedisPySeesEveryPrimary's).
const keyspaceScript = `
import sys
import redis
from redis.cluster import RedisCluster, ClusterNode
host, port = sys.argv[1], int(sys.argv[2])
rc = RedisCluster(startup_nodes=[ClusterNode(host, port)], socket_timeout=5)
P = RedisCluster.ALL_NODES
flushed = rc.flushall(target_nodes=P)
assert flushed is True or all(flushed.values()), flushed
assert rc.dbsize(target_nodes=P) == 0
want = sorted(b"py:%d" % i for i in range(200))
for i in range(200):
    rc.set("py:%d" % i, i)
assert rc.dbsize(target_nodes=P) == 200, rc.dbsize(target_nodes=P)
assert sorted(rc.keys("py:*", target_nodes=P)) == want
assert sorted(rc.scan_iter(match="py:*", count=7, target_nodes=P)) == want
randoms = [k for k in rc.randomkey(target_nodes=P).values() if k is not None]
assert randoms and all(k in want for k in randoms), randoms

r = rc.get_redis_connection(rc.get_node_from_key("{t}a"))
p = r.pipeline(transaction=True)
p.set("{t}a", 1)
p.incr("{t}a")
p.get("{t}a")
assert p.execute() == [True, 2, b"2"]
with r.pipeline() as p:
    p.watch("{t}a")
    rc.set("{t}a", 10)
    p.multi()
    p.incr("{t}a")
    try:
        p.execute()
        raise AssertionError("EXEC ran although a watched key changed")
    except redis.WatchError:
        pass
assert rc.get("{t}a") == b"10"
with r.pipeline() as p:
    p.watch("{t}a")
    v = int(p.get("{t}a"))
    p.multi()
    p.set("{t}a", v + 1)
    assert p.execute() == [True]
assert rc.get("{t}a") == b"11"
try:
    p = r.pipeline(transaction=True)
    p.set("{t}a", 1)
    p.set("{u}b", 1)
    p.execute()
    raise AssertionError("a transaction over two slots ran")
except redis.exceptions.ClusterCrossSlotError:
    pass

rc.flushall(target_nodes=P)
assert rc.dbsize(target_nodes=P) == 0
print("ok")
`

// TestRedisPyKeyspaceAndTransactions runs keyspaceScript against a 3-node cluster,
// at replication degrees 1 and 3.
func TestRedisPyKeyspaceAndTransactions(t *testing.T) {
	py := pythonWithRedis(t)
	replicationDegrees(t, func(t *testing.T, cfg config.Config) {
		host, port, err := net.SplitHostPort(cfg.Nodes[1].Addr)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(py, "-c", keyspaceScript, host, port).CombinedOutput()
		if err != nil || string(out) != "ok\n" {
			t.Fatalf("redis-py script: %v\n%s", err, out)
		}
	})
}

// primariesScript checks that redis-py's RedisCluster takes every node of the
// cluster for a primary (the nodes given as arguments, after the seed's host and
// port), then runs the commands it sends to every primary: FLUSHALL and SCAN by
// default, DBSIZE and KEYS when asked to. A second client reads every key back from
// replicas (READONLY). It leaves the cluster flushed and prints "ok", or what went
// wrong.
const primariesScript = `
import sys
from redis.cluster import RedisCluster, ClusterNode
host, port = sys.argv[1], int(sys.argv[2])
nodes = sorted(sys.argv[3:])

def check(cond, what):
    if not cond:
        print("FAIL: " + what, flush=True)
        sys.exit(1)

rc = RedisCluster(startup_nodes=[ClusterNode(host, port)], socket_timeout=5)
primaries = sorted(n.name for n in rc.get_primaries())
check(primaries == nodes, "primaries %r, want %r" % (primaries, nodes))
check(rc.get_replicas() == [], "replicas %r" % [n.name for n in rc.get_replicas()])
P = RedisCluster.PRIMARIES
rc.flushall()
check(rc.dbsize(target_nodes=P) == 0, "DBSIZE after FLUSHALL")
want = sorted(b"rp:%d" % i for i in range(300))
for k in want:
    rc.set(k, k)
served = {rc.get_node_from_key(k).name for k in want}
check(sorted(served) == nodes, "the keys are served by %r" % sorted(served))
check(rc.dbsize(target_nodes=P) == len(want), "DBSIZE over the primaries = %r" % rc.dbsize(target_nodes=P))
check(sorted(rc.keys("rp:*", target_nodes=P)) == want, "KEYS over the primaries")
got = sorted(rc.scan_iter(match="rp:*", count=25))
check(got == want, "SCAN gave %d keys, want %d" % (len(got), len(want)))
check(rc.randomkey(target_nodes=rc.get_primaries()[0]) in want, "RANDOMKEY")

ro = RedisCluster(startup_nodes=[ClusterNode(host, port)], socket_timeout=5, read_from_replicas=True)
for k in want:
    check(ro.get(k) == k, "GET %r from a replica" % k)
ro.close()
rc.flushall()
print("ok", flush=True)
`

// TestRedisPySeesEveryPrimary runs primariesScript at R=3, where every node leads a
// range and follows the two others: redis-py must take all three nodes for primaries,
// so that what it sends to every primary covers the whole cluster. The script's
// FLUSHALL must leave every node empty, and no request of its is forwarded between
// the nodes (redis-py sends each to a node that serves it, READONLY reads included).
func TestRedisPySeesEveryPrimary(t *testing.T) {
	py := pythonWithRedis(t)
	cfg, _ := startCluster(t, 3, replicated)
	// Each node is to lead the range it prefers, as redis-py reads the layout once.
	waitPreferredLeaders(t, cfg, 15*time.Second)
	host, port, err := net.SplitHostPort(cfg.Nodes[1].Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	forwards := func() (n int) {
		for _, node := range cfg.Nodes {
			n += forwarded(t, nodeClient(t, cfg, node.Addr))
		}
		return n
	}
	before := forwards()
	args := []string{"-c", primariesScript, host, port}
	for _, node := range cfg.Nodes {
		args = append(args, node.Addr)
	}
	cmd := exec.Command(py, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("redis-py: %v\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	for _, node := range cfg.Nodes {
		c := nodeClient(t, cfg, node.Addr)
		if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
			t.Errorf("%s: DBSIZE after redis-py's FLUSHALL = %d, %v; want 0", node.Name, n, err)
		}
		if n, err := clusterKeys(ctx, c); err != nil || n != 0 {
			t.Errorf("%s: the cluster's keys after redis-py's FLUSHALL = %d, %v; want 0", node.Name, n, err)
		}
	}
	if n := forwards() - before; n != 0 {
		t.Errorf("%d of redis-py's requests were forwarded to another node", n)
	}
}
