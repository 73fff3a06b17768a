#!/usr/bin/env bash
# Runs the same dht bench sweep against a 3-node dht cluster and against a real
# 3-master Redis Cluster on this machine (loopback only), then prints dht's
# throughput relative to Redis's at every step and draws them on common charts.
# dht is `dht bench --local 3`: one `dht serve` process per node, as Redis has one
# redis-server per master, and the same bench clients drive both; both keep
# everything in memory (dht --in-memory; the Redis nodes have no RDB or AOF).
#
# Usage: scripts/bench-vs-redis.sh [OUT_DIR]
# Environment (defaults in brackets):
#   SWEEP      [key_range=10,100,1000,10000]
#   MIX        [get=60,put_if_absent=40]
#   REQUESTS   [10000]  requests per client thread
#   THREADS    [8]      threads per client (3 clients either way)
#   REPEAT     [3]      runs of each; every step reports the median run
#   REDIS_PORT [8101]   first of the three Redis ports
#   DHT_PORT   [17001]  first of the three dht ports
#   DHT_R      [1]      dht's replication degree (Redis Cluster here has no replicas)
# Needs redis-server and redis-cli (Debian: apt-get install redis-server redis-tools).
# The Redis processes it starts are stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-bench-results/vs-redis-$(date +%Y%m%d-%H%M%S)}
sweep=${SWEEP:-key_range=10,100,1000,10000}
mix=${MIX:-get=60,put_if_absent=40}
requests=${REQUESTS:-10000}
threads=${THREADS:-8}
repeat=${REPEAT:-3}
rport=${REDIS_PORT:-8101}
dport=${DHT_PORT:-17001}

source scripts/redis-cluster.sh
need_tools redis-server redis-cli go
tmp=$(mktemp -d)
workdirs+=("$tmp")

go build -o "$tmp/dht" ./cmd/dht
start_redis_cluster "$rport" "$tmp"
addrs=("${redis_addrs[@]}")

target=$(IFS=,; echo "${addrs[*]}")
dhts=() rediss=()
# Alternate the contenders, so that a noisy moment on the machine hits all alike.
# Every repetition writes fresh keys (--key-prefix), as the clusters outlive runs.
for r in $(seq "$repeat"); do
  common=(--sweep "$sweep" --mix "$mix" --requests "$requests" --threads "$threads" --key-prefix "key$r:" --quiet)
  echo "== run $r/$repeat, dht: dht bench --local 3 --replication-degree ${DHT_R:-1} --in-memory ${common[*]}"
  "$tmp/dht" bench --local 3 --replication-degree "${DHT_R:-1}" --in-memory --base-port "$dport" "${common[@]}" --out "$out/dht-$r"
  echo "== run $r/$repeat, redis: dht bench --target $target --clients 3 ${common[*]}"
  "$tmp/dht" bench --target "$target" --clients 3 "${common[@]}" --out "$out/redis-$r"
  dhts+=("$out/dht-$r") rediss+=("$out/redis-$r")
done
echo "== dht vs Redis Cluster $(redis-server --version | cut -d' ' -f3), median of $repeat runs per step"
"$tmp/dht" bench compare dht="$(IFS=,; echo "${dhts[*]}")" \
  redis="$(IFS=,; echo "${rediss[*]}")" --baseline redis --out "$out"
echo "charts: $out/sweep-throughput.png $out/sweep-latency.png $out/sweep-failures.png"
