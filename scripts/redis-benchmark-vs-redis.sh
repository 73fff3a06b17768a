#!/usr/bin/env bash
# redis-benchmark --cluster against a real 3-master Redis Cluster and two 3-node dht
# clusters (`dht local`: one process per node), one with a single copy of each key
# (R = 1, as the Redis Cluster) and one with every slot range replicated on all three
# nodes through Raft (R = 3), on this machine, loopback only: SET and GET (or TESTS) on
# key:{tag}:__rand_int__ (redis-benchmark's keys in cluster mode), 50 clients, 33334
# random keys, without pipelining (-P 1) and with -P 16. The contenders take turns,
# REPEAT times, and every figure is the median of its runs. The table gives dht R = 1
# against Redis, and R = 3 against R = 1. Both stores keep everything in memory (Redis
# with no RDB or AOF, dht --in-memory), as the comparison is of serving, not of disks,
# unless DHT_STORAGE is disk: then the dht nodes keep their logs on disk as they do by
# default (a temporary directory, fsync everysec), so that R = 1 too runs its writes
# through a log (a Raft group of one member), as a user's cluster does, and Redis
# keeps an append-only file, also synced once a second (appendfsync everysec).
#
# Usage: scripts/redis-benchmark-vs-redis.sh
# Environment (defaults in brackets):
#   REQUESTS   [1000000]  requests per test and run (-n) without pipelining; with -P p,
#                         p/4 times as many, as redis-benchmark measures its run time in
#                         quarter seconds and a pipelined run is short
#   REPEAT     [3]        runs of each contender
#   PIPELINES  [1 16]     the -P values
#   TESTS      [set,get]  redis-benchmark's tests (-t), e.g. set,get,incr
#   REDIS_PORT [8101]     first of the three Redis ports
#   DHT_PORT   [17001]    first of the three ports of dht R = 1 (R = 3: 100 above)
#   DHT_STORAGE [memory]  memory (--in-memory) or disk (logs on disk, fsync everysec;
#                         Redis with an append-only file, appendfsync everysec)
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${REQUESTS:-1000000}
repeat=${REPEAT:-3}
pipelines=${PIPELINES:-1 16}
tests=${TESTS:-set,get}
rport=${REDIS_PORT:-8101}
dport=${DHT_PORT:-17001}
d3port=$((dport + 100))
case ${DHT_STORAGE:-memory} in
memory) storage=(--in-memory) redis_storage=() ;;
disk) storage=(--fsync everysec) redis_storage=(--appendonly yes --appendfsync everysec) ;;
*) echo "$0: DHT_STORAGE is memory or disk, not ${DHT_STORAGE}" >&2; exit 2 ;;
esac

source scripts/redis-cluster.sh
need_tools redis-server redis-cli redis-benchmark go
tmp=$(mktemp -d)
workdirs+=("$tmp")

go build -o "$tmp/dht" ./cmd/dht
start_redis_cluster "$rport" "$tmp" "${redis_storage[@]}"
for r in 1 3; do
  port=$([ "$r" = 1 ] && echo "$dport" || echo "$d3port")
  "$tmp/dht" local --nodes 3 --replication-degree "$r" "${storage[@]}" --base-port "$port" >"$tmp/dht-r$r.log" 2>&1 &
  track "$!"
  for _ in $(seq 200); do
    redis-cli -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
    sleep 0.05
  done
done

# requests_for P: the requests of a run with -P P.
requests_for() { echo $((requests * ($1 > 4 ? $1 / 4 : 1))); }

# bench PORT P: prints the requests per second of each test, in the order of TESTS,
# for one redis-benchmark run.
bench() {
  local out
  out=$(redis-benchmark --cluster -p "$1" -c 50 -n "$(requests_for "$2")" -r 33334 -P "$2" -t "$tests" --csv 2>/dev/null)
  local t
  for t in ${tests//,/ }; do
    awk -F'","' -v t="${t^^}" '$1 == "\"" t {gsub(/"/, "", $2); v=$2} END {printf "%s ", v}' <<<"$out"
  done
  echo
}

echo "redis-benchmark --cluster -c 50 -n $requests (times P/4 with -P P > 4) -r 33334 -t $tests; $(redis-server --version | cut -d' ' -f3); dht local --nodes 3 ${storage[*]}; median of $repeat"
printf '%-4s %-6s %12s %12s %12s %10s %9s\n' P test redis 'dht R=1' 'dht R=3' 'R1/redis' 'R3/R1'
for p in $pipelines; do
  : >"$tmp/r1-$p" && : >"$tmp/r3-$p" && : >"$tmp/redis-$p"
  for _ in $(seq "$repeat"); do
    bench "$rport" "$p" >>"$tmp/redis-$p"
    bench "$dport" "$p" >>"$tmp/r1-$p"
    bench "$d3port" "$p" >>"$tmp/r3-$p"
  done
  col=0
  for test in ${tests//,/ }; do
    col=$((col + 1))
    r=$(cut -d' ' -f"$col" "$tmp/redis-$p" | median)
    d1=$(cut -d' ' -f"$col" "$tmp/r1-$p" | median)
    d3=$(cut -d' ' -f"$col" "$tmp/r3-$p" | median)
    printf '%-4s %-6s %12.0f %12.0f %12.0f %10.2f %9.2f\n' "$p" "${test^^}" "$r" "$d1" "$d3" \
      "$(echo "$d1 / $r" | bc -l)" "$(echo "$d3 / $d1" | bc -l)"
  done
done
