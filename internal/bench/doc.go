// Package bench is the workload driver of dht bench: the original assignment's
// benchmark, run against a dht cluster or any Redis Cluster.
//
// A run has one or more bench clients (one per host in the original setup).
// Every client waits until its node reports cluster_state:ok, meets the other
// clients at a distributed barrier, then runs Threads threads, each issuing
// Requests operations (or running for a Duration) drawn from an operation mix
// over keys uniform in [KeyMin, KeyMax). Each client records:
//
//   - throughput as completed operations divided by wall-clock time;
//   - latency per operation type in HDR histograms (microseconds, 3 significant
//     digits), merged over threads and clients;
//   - failed requests by reason, retries and redirects, put-if-absent won and
//     lost, get hit and miss;
//   - a time series sampled every second.
//
// At the end each client checks that every key it saw acknowledged still
// exists and that every put-if-absent it won still holds the winning value.
//
// Keys are the key prefix ("key:" by default) followed by the decimal key
// number, so key 17 is "key:17". A written value is ValueSize bytes: the run
// tag, client, thread and sequence number of the write ("3fa9c2:0:5:1234:")
// padded with '.', so the check can tell which write won; values shorter than
// that header are truncated and then identify the write only as far as they go.
//
// Workload generation, operation selection, metric merging, summaries and charts
// are pure functions; the Store interface separates them from the network.
package bench
