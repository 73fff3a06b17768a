#!/usr/bin/env bash
# What cross-node multi-puts cost, on this machine, loopback only: `dht bench --local 3`
# (R = 3, 3 clients x THREADS threads, DURATION per step) with the second assignment's
# mix, 60% GET / 20% SET / 20% MSET of 3 keys drawn from the whole key range (so
# across nodes, each an atomic transaction), against the first assignment's mix, 60%
# GET / 40% put-if-absent, at every key range of KEY_RANGES, the two mixes taking
# turns REPEAT times on a new cluster each. It prints, per key range, the median
# throughput of each mix and their ratio, and the median of the MSET's p50 latency
# over the single SET's (both from the 60/20/20 runs).
#
# Usage: scripts/txn-mix.sh
# Environment (defaults in brackets):
#   KEY_RANGES [10,100,1000,10000]
#   THREADS    [8]     client threads per client
#   DURATION   [8s]    per key range and run
#   REPEAT     [3]     runs of each mix
#   PORT       [17501] first port of the local cluster
#   OUT        []      if set, keep the runs' results and draw the comparison charts here
set -euo pipefail
cd "$(dirname "$0")/.."

ranges=${KEY_RANGES:-10,100,1000,10000}
threads=${THREADS:-8}
duration=${DURATION:-8s}
repeat=${REPEAT:-3}
port=${PORT:-17501}
source scripts/redis-cluster.sh
need_tools python3 bc go

tmp=$(mktemp -d)
workdirs+=("$tmp")
out=${OUT:-$tmp/runs}
mkdir -p "$out"
go build -o "$tmp/dht" ./cmd/dht

declare -A mixes=([base]=get=60,put_if_absent=40 [txn]=get=60,put=20,multi_put=20)
declare -A runs
for r in $(seq "$repeat"); do
  for m in base txn; do
    dir="$out/$m-$r"
    echo "run $r/$repeat: ${mixes[$m]}" >&2
    "$tmp/dht" bench --local 3 --base-port "$port" --mix "${mixes[$m]}" --sweep "key_range=$ranges" \
      --threads "$threads" --duration "$duration" --quiet --out "$dir" >/dev/null
    runs[$m]+="${runs[$m]:+,}$dir"
  done
done

# The figures of every step of every run, one line each: mix, key range, ok/s,
# failed requests, MSET p50 / SET p50 (0 for the 60/40 mix).
for m in base txn; do
  IFS=, read -ra dirs <<<"${runs[$m]}"
  for d in "${dirs[@]}"; do
    python3 - "$m" "$d/results.json" <<'EOF'
import json, sys
mix, path = sys.argv[1], sys.argv[2]
for st in json.load(open(path))["steps"]:
    t, ops = st["total"], st["total"]["ops"]
    ratio = 0
    if "multi_put" in ops:
        ratio = ops["multi_put"]["latency"]["p50_us"] / ops["put"]["latency"]["p50_us"]
    print(mix, st["workload"]["key_max"] - st["workload"]["key_min"], t["ok_per_sec"], t["failed"], ratio)
EOF
  done
done >"$tmp/steps"

echo "dht bench --local 3 (R = 3), 3 clients x $threads threads, $duration per key range; median of $repeat"
printf '%9s %12s %14s %7s %8s %19s\n' 'key range' '60/40 ok/s' '60/20/20 ok/s' ratio failed 'MSET p50 / SET p50'
IFS=, read -ra krs <<<"$ranges"
for kr in "${krs[@]}"; do
  base=$(awk -v k="$kr" '$1 == "base" && $2 == k {print $3}' "$tmp/steps" | median)
  txn=$(awk -v k="$kr" '$1 == "txn" && $2 == k {print $3}' "$tmp/steps" | median)
  failed=$(awk -v k="$kr" '$2 == k {s += $4} END {print s}' "$tmp/steps")
  lat=$(awk -v k="$kr" '$1 == "txn" && $2 == k {print $5}' "$tmp/steps" | median)
  printf '%9s %12.0f %14.0f %7.2f %8d %19.2f\n' "$kr" "$base" "$txn" "$(echo "$txn / $base" | bc -l)" "$failed" "$lat"
done
if [ -n "${OUT:-}" ]; then
  "$tmp/dht" bench compare "60/20/20=${runs[txn]}" "60/40=${runs[base]}" --out "$OUT" >/dev/null
  echo "charts: $OUT/sweep-*.png" >&2
fi
