#!/usr/bin/env bash
# redis-benchmark --cluster against three 3-node dht clusters (`dht local`: one
# process per node, every slot range replicated on all three through Raft), on this
# machine, loopback only: BASE's binary over plain TCP (the baseline: the plain path
# must not get slower), this tree's binary over plain TCP, and this tree's binary
# serving TLS only (`dht local --tls`; redis-benchmark --tls --cacert). SET and GET on
# key:{tag}:__rand_int__, 50 clients, 33334 random keys, without pipelining (-P 1) and
# with -P 16. The contenders take turns, REPEAT times, and every figure is the median
# of its runs.
#
# Usage: scripts/redis-benchmark-tls.sh
# Environment (defaults in brackets):
#   BASE       [main]     the git revision whose binary is the baseline
#   REQUESTS   [200000]   requests per test and run (-n)
#   REPEAT     [3]        runs of each contender
#   PIPELINES  [1 16]     the -P values
#   DHT_PORT   [17201]    first port of the baseline (this tree: 100 above, TLS: 200)
set -euo pipefail
cd "$(dirname "$0")/.."

base=${BASE:-main}
requests=${REQUESTS:-200000}
repeat=${REPEAT:-3}
pipelines=${PIPELINES:-1 16}
bport=${DHT_PORT:-17201}
pport=$((bport + 100))
tport=$((bport + 200))

source scripts/redis-cluster.sh
need_tools redis-cli redis-benchmark go git
tmp=$(mktemp -d)
workdirs+=("$tmp")

mkdir "$tmp/base"
git archive "$base" | tar -x -C "$tmp/base"
(cd "$tmp/base" && go build -o "$tmp/dht-base" ./cmd/dht)
go build -o "$tmp/dht" ./cmd/dht

# start NAME BINARY PORT [FLAGS...]: a 3-node local cluster, waited for.
start() {
  local name=$1 bin=$2 port=$3
  shift 3
  "$bin" local --nodes 3 --base-port "$port" "$@" >"$tmp/$name.log" 2>&1 &
  track "$!"
  for _ in $(seq 400); do
    grep -q '^try:' "$tmp/$name.log" && return 0
    sleep 0.05
  done
  echo "$0: the $name cluster did not start:" >&2
  cat "$tmp/$name.log" >&2
  exit 1
}
start base "$tmp/dht-base" "$bport"
start plain "$tmp/dht" "$pport"
start tls "$tmp/dht" "$tport" --tls
cacert=$(grep -o -- '--cacert [^ ]*' "$tmp/tls.log" | cut -d' ' -f2)

# bench PORT P [FLAGS...]: prints "SET-rps GET-rps" for one redis-benchmark run.
bench() {
  local port=$1 p=$2
  shift 2
  redis-benchmark --cluster -p "$port" "$@" -c 50 -n "$requests" -r 33334 -P "$p" -t set,get --csv 2>/dev/null |
    awk -F'","' '/^"SET"/ {s=$2} /^"GET"/ {g=$2} END {gsub(/"/, "", s); gsub(/"/, "", g); print s, g}'
}

echo "redis-benchmark --cluster -c 50 -n $requests -r 33334 -t set,get; dht local --nodes 3 (R = 3); median of $repeat"
printf '%-4s %-4s %14s %14s %14s %11s %10s\n' P test "plain $base" 'plain' 'TLS' 'plain/base' 'TLS/plain'
for p in $pipelines; do
  : >"$tmp/base-$p" && : >"$tmp/plain-$p" && : >"$tmp/tls-$p"
  for _ in $(seq "$repeat"); do
    bench "$bport" "$p" >>"$tmp/base-$p"
    bench "$pport" "$p" >>"$tmp/plain-$p"
    bench "$tport" "$p" --tls --cacert "$cacert" >>"$tmp/tls-$p"
  done
  for col in 1 2; do
    test=$([ "$col" = 1 ] && echo SET || echo GET)
    b=$(cut -d' ' -f"$col" "$tmp/base-$p" | median)
    d=$(cut -d' ' -f"$col" "$tmp/plain-$p" | median)
    s=$(cut -d' ' -f"$col" "$tmp/tls-$p" | median)
    printf '%-4s %-4s %14.0f %14.0f %14.0f %11.2f %10.2f\n' "$p" "$test" "$b" "$d" "$s" \
      "$(echo "$d / $b" | bc -l)" "$(echo "$s / $d" | bc -l)"
  done
done
