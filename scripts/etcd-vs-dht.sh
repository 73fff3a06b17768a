#!/usr/bin/env bash
# Durable writes of dht against etcd on this machine, loopback only: a 3-member etcd
# 3.6 cluster (built from its Go module, scripts/etcd; every batch fsynced, as etcd
# always does) and a 3-node dht cluster with replication degree 3 and
# `--fsync always`, both keeping their data under the same temporary directory. Each
# takes CLIENTS concurrent clients, each on its own connection, putting 32-byte values
# (etcd: scripts/etcd/cmd/etcd-load with etcd's Go client; dht: `dht bench --mix
# put=100`, go-redis). The contenders take turns, REPEAT times, and the table gives the
# median of each and dht's figure over etcd's.
#
# Usage: scripts/etcd-vs-dht.sh
# Environment (defaults in brackets):
#   CLIENTS   [51]      concurrent clients (dht: 3 bench clients x CLIENTS/3 threads)
#   REQUESTS  [100000]  puts per run
#   REPEAT    [3]       runs of each contender
#   ETCD_PORT [23791]   first client port of the three etcd members (peers: 10 above)
#   DHT_PORT  [17451]   first port of the dht cluster
set -euo pipefail
cd "$(dirname "$0")/.."

clients=${CLIENTS:-51}
requests=${REQUESTS:-100000}
repeat=${REPEAT:-3}
eport=${ETCD_PORT:-23791}
dport=${DHT_PORT:-17451}
source scripts/redis-cluster.sh
need_tools go python3 bc

tmp=$(mktemp -d)
workdirs+=("$tmp")

echo "building dht, and etcd from its Go module..." >&2
go build -o "$tmp/dht" ./cmd/dht
(cd scripts/etcd && go build -o "$tmp/etcd" ./cmd/etcd && go build -o "$tmp/etcd-load" ./cmd/etcd-load)

cluster="" endpoints=""
for i in 1 2 3; do
  cluster+="${cluster:+,}e$i=http://127.0.0.1:$((eport + 9 + i))"
  endpoints+="${endpoints:+,}127.0.0.1:$((eport + i - 1))"
done
for i in 1 2 3; do
  "$tmp/etcd" --name "e$i" --data-dir "$tmp/etcd-$i" --log-level error \
    --listen-client-urls "http://127.0.0.1:$((eport + i - 1))" \
    --advertise-client-urls "http://127.0.0.1:$((eport + i - 1))" \
    --listen-peer-urls "http://127.0.0.1:$((eport + 9 + i))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((eport + 9 + i))" \
    --initial-cluster "$cluster" --initial-cluster-state new >"$tmp/etcd-$i.log" 2>&1 &
  track "$!"
done
# The first run waits for the members to elect a leader (etcd-load dials with a
# timeout and retries each put within 10 s).
"$tmp/etcd-load" --endpoints "$endpoints" --clients 3 --requests 300 >/dev/null

threads=$(( (clients + 2) / 3 ))
per_thread=$(( requests / (3 * threads) ))
etcd_runs="" dht_runs=""
for r in $(seq "$repeat"); do
  v=$("$tmp/etcd-load" --endpoints "$endpoints" --clients "$clients" --requests "$requests")
  echo "run $r/$repeat etcd: $v puts/s" >&2
  etcd_runs+="$v "
  out="$tmp/dht-run-$r"
  "$tmp/dht" bench --local 3 --base-port "$dport" --data-dir "$tmp/dht-$r" --fsync always \
    --mix put=100 --threads "$threads" --requests "$per_thread" --quiet --no-charts --no-verify \
    --out "$out" >/dev/null
  v=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["steps"][0]["total"]["ok_per_sec"])' "$out/results.json")
  echo "run $r/$repeat dht: $v SET/s" >&2
  dht_runs+="$v "
done
e=$(echo "$etcd_runs" | tr ' ' '\n' | grep . | median)
d=$(echo "$dht_runs" | tr ' ' '\n' | grep . | median)
echo "3 nodes, replication 3, every write fsynced on a majority; $clients clients, 32-byte values; median of $repeat"
printf '%-28s %12s\n' store 'puts/s'
printf '%-28s %12.0f\n' 'etcd 3.6' "$e" 'dht (--fsync always)' "$d"
printf 'dht / etcd: %.2f\n' "$(echo "$d / $e" | bc -l)"
