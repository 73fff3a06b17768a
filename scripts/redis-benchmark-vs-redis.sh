#!/usr/bin/env bash
# redis-benchmark --cluster against a 3-node dht cluster (`dht local`: one process
# per node) and a real
# 3-master Redis Cluster on this machine, loopback only: SET and GET on
# key:{tag}:__rand_int__ (redis-benchmark's keys in cluster mode), 50 clients,
# 33334 random keys, without pipelining (-P 1) and with -P 16. The contenders
# take turns, REPEAT times, and every figure is the median of its runs.
#
# Usage: scripts/redis-benchmark-vs-redis.sh
# Environment (defaults in brackets):
#   REQUESTS   [1000000]  requests per test and run (-n)
#   REPEAT     [3]        runs of each contender
#   PIPELINES  [1 16]     the -P values
#   REDIS_PORT [8101]     first of the three Redis ports
#   DHT_PORT   [17001]    first of the three dht ports
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${REQUESTS:-1000000}
repeat=${REPEAT:-3}
pipelines=${PIPELINES:-1 16}
rport=${REDIS_PORT:-8101}
dport=${DHT_PORT:-17001}

source scripts/redis-cluster.sh
need_tools redis-server redis-cli redis-benchmark go
tmp=$(mktemp -d)
workdirs+=("$tmp")

go build -o "$tmp/dht" ./cmd/dht
start_redis_cluster "$rport" "$tmp"
"$tmp/dht" local --nodes 3 --base-port "$dport" >"$tmp/dht.log" 2>&1 &
track "$!"
for _ in $(seq 100); do
  redis-cli -p "$dport" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
  sleep 0.05
done

# bench PORT P: prints "SET-rps GET-rps" for one redis-benchmark run.
bench() {
  redis-benchmark --cluster -p "$1" -c 50 -n "$requests" -r 33334 -P "$2" -t set,get --csv 2>/dev/null |
    awk -F'","' '/^"SET"/ {s=$2} /^"GET"/ {g=$2} END {gsub(/"/, "", s); gsub(/"/, "", g); print s, g}'
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "redis-benchmark --cluster -c 50 -n $requests -r 33334 -t set,get; $(redis-server --version | cut -d' ' -f3); dht local --nodes 3; median of $repeat"
printf '%-4s %-4s %14s %14s %7s\n' P test dht redis dht/redis
for p in $pipelines; do
  : >"$tmp/dht-$p" && : >"$tmp/redis-$p"
  for r in $(seq "$repeat"); do
    bench "$dport" "$p" >>"$tmp/dht-$p"
    bench "$rport" "$p" >>"$tmp/redis-$p"
  done
  for col in 1 2; do
    test=$([ "$col" = 1 ] && echo SET || echo GET)
    d=$(cut -d' ' -f"$col" "$tmp/dht-$p" | median)
    r=$(cut -d' ' -f"$col" "$tmp/redis-$p" | median)
    printf '%-4s %-4s %14.0f %14.0f %7.2f\n' "$p" "$test" "$d" "$r" "$(echo "$d / $r" | bc -l)"
  done
done
