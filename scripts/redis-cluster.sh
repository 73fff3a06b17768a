# Sourced by the comparison scripts: starts a real 3-master Redis Cluster on
# loopback for a side-by-side measurement, and stops it (and anything else the
# script started) on exit; checks for tools; takes medians.
#
#   source scripts/redis-cluster.sh
#   start_redis_cluster FIRST_PORT WORKDIR [ARG...]  # sets redis_addrs (host:port);
#                                            # ARGs go to every redis-server
#   track PID                                # stop PID on exit too
#   workdirs+=(DIR)                          # remove DIR on exit
#   need_tools TOOL...                       # exit unless every TOOL is on the PATH
#   ... | median                             # the median of the numbers read, one a line

pids=()
workdirs=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for d in "${workdirs[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT INT TERM

track() { pids+=("$1"); }

need_tools() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found (redis-*: apt-get install redis-server redis-tools)" >&2; exit 1; }
  done
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

start_redis_cluster() {
  local first=$1 dir=$2 p
  shift 2
  local ports=("$first" "$((first + 1))" "$((first + 2))")
  redis_addrs=()
  for p in "${ports[@]}"; do
    mkdir -p "$dir/redis-$p"
    (cd "$dir/redis-$p" && exec redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file nodes.conf --save '' --appendonly no --logfile redis.log "$@") &
    track "$!"
    redis_addrs+=("127.0.0.1:$p")
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
  redis-cli --cluster create "${redis_addrs[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  for _ in $(seq 100); do
    redis-cli -p "$first" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && return 0
    sleep 0.05
  done
  echo "$0: the Redis Cluster on ports ${ports[*]} did not reach cluster_state:ok" >&2
  exit 1
}
