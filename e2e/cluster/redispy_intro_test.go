package cluster_test

import (
	"net"
	"os/exec"
	"strings"
	"testing"
)

// introspectionScript drives a 3-node cluster through redis-py's RedisCluster with
// the introspection commands: OBJECT (idle times included) and MEMORY USAGE routed
// by their key (redis-py
// finds it in COMMAND's subcommands), CLIENT, TIME, CONFIG, SLOWLOG and INFO on
// chosen nodes. It prints ok, or what went wrong.
const introspectionScript = `
import sys, time
from redis.cluster import RedisCluster, ClusterNode
from redis.exceptions import ResponseError
host, port = sys.argv[1], int(sys.argv[2])
rc = RedisCluster(startup_nodes=[ClusterNode(host, port)], socket_timeout=5)

def check(cond, what):
    if not cond:
        print("FAIL: " + what, flush=True)
        sys.exit(1)

for i in range(60):
    rc.set("intro:%d" % i, "value-%d" % i)
rc.set("intro:int", 12345)
rc.set("intro:raw", "x" * 100)
for i in range(60):
    key = "intro:%d" % i
    check(rc.object("encoding", key) == b"embstr", "OBJECT ENCODING " + key)
    check(rc.object("refcount", key) == 1, "OBJECT REFCOUNT " + key)
    idle = rc.object("idletime", key)
    check(isinstance(idle, int) and 0 <= idle <= 5, "OBJECT IDLETIME %s = %r" % (key, idle))
    usage = rc.memory_usage(key)
    check(isinstance(usage, int) and 40 < usage < 1000, "MEMORY USAGE %s = %r" % (key, usage))
# Idle times are seconds since the last read or write, on the node that serves
# the key: OBJECT does not touch the key, GET does.
rc.set("intro:idle", "x")
time.sleep(2.2)
idle = rc.object("idletime", "intro:idle")
check(2 <= idle <= 4, "OBJECT IDLETIME 2.2 s after SET = %r" % idle)
rc.get("intro:idle")
idle = rc.object("idletime", "intro:idle")
check(0 <= idle <= 1, "OBJECT IDLETIME after GET = %r" % idle)
check(rc.object("encoding", "intro:int") == b"int", "OBJECT ENCODING of an integer")
check(rc.object("encoding", "intro:raw") == b"raw", "OBJECT ENCODING of 100 bytes")
check(rc.object("encoding", "intro:missing") is None, "OBJECT ENCODING of a missing key")
check(rc.memory_usage("intro:missing") is None, "MEMORY USAGE of a missing key")
check(rc.memory_usage("intro:raw") > rc.memory_usage("intro:int"), "MEMORY USAGE grows with the value")
try:
    rc.object("freq", "intro:1")
    check(False, "OBJECT FREQ answered")
except ResponseError as e:
    check("LFU" in str(e), "OBJECT FREQ error: %s" % e)

secs, micros = rc.time()
check(abs(secs - time.time()) < 30 and 0 <= micros < 1000000, "TIME = %r" % ((secs, micros),))

for node in rc.get_nodes():
    clients = rc.client_list(target_nodes=node)
    check(len(clients) >= 1 and all("id" in c and "addr" in c and "cmd" in c for c in clients), "CLIENT LIST %r" % clients)
    info = rc.info("commandstats", target_nodes=node)
    check(any(k.startswith("cmdstat_") for k in info), "INFO commandstats %r" % info)
    stats = rc.info("stats", target_nodes=node)
    check("keyspace_hits" in stats and "instantaneous_ops_per_sec" in stats, "INFO stats %r" % stats)
    mem = rc.info("memory", target_nodes=node)
    check(mem["used_memory"] > 0 and mem["used_memory_rss"] > 0, "INFO memory %r" % mem)
    check(rc.config_get("maxclients", target_nodes=node) == {"maxclients": "10000"}, "CONFIG GET maxclients")
    rc.config_set("slowlog-log-slower-than", 0, target_nodes=node)
    rc.ping(target_nodes=node)
    check(rc.slowlog_len(target_nodes=node) >= 1, "SLOWLOG LEN after a logged command")
    entries = rc.slowlog_get(1, target_nodes=node)
    check(len(entries) == 1 and "duration" in entries[0], "SLOWLOG GET %r" % entries)
    rc.config_set("slowlog-log-slower-than", 10000, target_nodes=node)
    rc.slowlog_reset(target_nodes=node)

conn = rc.get_redis_connection(rc.get_node_from_key("intro:1"))
conn.client_setname("py-intro")
check(conn.client_getname() == "py-intro", "CLIENT GETNAME")
check(conn.client_info()["name"] == "py-intro", "CLIENT INFO")
check(isinstance(conn.client_id(), int), "CLIENT ID")
print("ok", flush=True)
`

// TestRedisPyIntrospection runs introspectionScript against a 3-node replicated
// cluster.
func TestRedisPyIntrospection(t *testing.T) {
	py := pythonWithRedis(t)
	cfg, _ := startCluster(t, 3, replicated)
	host, port, err := net.SplitHostPort(cfg.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", introspectionScript, host, port)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("redis-py: %v\n%s\nstderr (redis-py logs the errors it raises):\n%s", err, out, stderr.String())
	}
}
