package cluster_test

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strconv"
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
// The commands name target_nodes=ALL_NODES: redis-py 4.3 gives a node the first role
// CLUSTER SLOTS shows it in, so at replication degree 3, where each node leads one
// range and follows the others, it counts one node as a primary; the nodes that
// lead nothing answer for no slot, so asking every node adds up right.
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
