#!/usr/bin/env bash
# What durability costs, on this machine, loopback only: go-redis SET throughput of
# `dht bench --local 3` (R = 3, 3 clients x THREADS threads) with the nodes' logs
# synced on every batch (--fsync always), once a second (everysec) and kept in memory
# only (--in-memory), the contenders taking turns REPEAT times (median reported);
# then the restart of a 3-node cluster holding KEYS 32-byte values: disk use, and the
# time from starting the nodes to every key being served again.
#
# Usage: scripts/durability-bench.sh
# Environment (defaults in brackets):
#   THREADS   [17]       client threads per client (3 clients: 51 connections)
#   REQUESTS  [4000]     SETs per thread and run
#   REPEAT    [3]        runs of each contender
#   KEYS      [1000000]  keys for the restart measurement
#   PORT      [17401]    first port of the local cluster
set -euo pipefail
cd "$(dirname "$0")/.."

threads=${THREADS:-17}
requests=${REQUESTS:-4000}
repeat=${REPEAT:-3}
keys=${KEYS:-1000000}
port=${PORT:-17401}
source scripts/redis-cluster.sh
need_tools redis-cli redis-benchmark bc python3 go

tmp=$(mktemp -d)
workdirs+=("$tmp")
go build -o "$tmp/dht" ./cmd/dht

# throughput MODE...: SETs per second of one run with the given persistence flags.
throughput() {
  local out="$tmp/run-$RANDOM"
  "$tmp/dht" bench --local 3 --base-port "$port" "$@" --mix put=100 --threads "$threads" \
    --requests "$requests" --key-prefix "k$RANDOM:" --quiet --no-charts --no-verify --out "$out" >/dev/null
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["steps"][0]["total"]["ok_per_sec"])' "$out/results.json"
}

declare -A runs
for r in $(seq "$repeat"); do
  for mode in always everysec memory; do
    if [ "$mode" = memory ]; then flags=(--in-memory); else flags=(--fsync "$mode"); fi
    v=$(throughput "${flags[@]}")
    echo "run $r/$repeat $mode: $v SET/s" >&2
    runs[$mode]+="$v "
  done
done
echo "dht bench --local 3 (R = 3) --mix put=100, 3 clients x $threads threads, $requests SETs per thread; median of $repeat"
printf '%-10s %12s %12s\n' fsync 'SET/s' 'vs memory'
mem=$(echo "${runs[memory]}" | tr ' ' '\n' | grep . | median)
for mode in always everysec memory; do
  v=$(echo "${runs[$mode]}" | tr ' ' '\n' | grep . | median)
  printf '%-10s %12.0f %12.2f\n' "$mode" "$v" "$(echo "$v / $mem" | bc -l)"
done

# Restart: fill a cluster that keeps its data, stop it, start it again.
data="$tmp/data"
start_cluster() {
  "$tmp/dht" local --nodes 3 --base-port "$port" --data-dir "$data" --log-level error >"$tmp/local.log" 2>&1 &
  track "$!"
  cluster_pid=$!
}
start_cluster
until redis-cli -p "$port" cluster info 2>/dev/null | grep -q cluster_state:ok; do sleep 0.1; done
echo "writing $keys 32-byte values..." >&2
redis-benchmark --cluster -p "$port" -c 50 -P 64 -n "$keys" -r "$keys" -d 32 -t set -q >/dev/null 2>&1
# A node loads its snapshots and replays its log before it listens: once every node
# says cluster_state:ok, everything is served. The cluster's key count (INFO cluster;
# DBSIZE counts only the slots a node leads, which move) must read the same as before.
cluster_keys() { redis-cli -p "$port" info cluster | tr -d '\r' | sed -n 's/^dht_cluster_keys://p'; }
before=$(cluster_keys)
kill -INT "$cluster_pid"
wait "$cluster_pid" 2>/dev/null || true
disk=$(du -sb "$data" | cut -f1)
start=$(date +%s.%N)
start_cluster
for p in "$port" $((port + 1)) $((port + 2)); do
  until redis-cli -p "$p" cluster info 2>/dev/null | grep -q cluster_state:ok; do sleep 0.05; done
done
took=$(echo "$(date +%s.%N) - $start" | bc -l)
after=$(cluster_keys)
echo
echo "restart of a 3-node cluster (R = 3) after redis-benchmark -n $keys -r $keys -d 32 -t set"
echo "keys before: $before, after: $after"
printf 'disk use, all nodes: %.1f MiB\n' "$(echo "$disk / 1048576" | bc -l)"
printf 'from start to every node serving: %.2f s\n' "$took"
