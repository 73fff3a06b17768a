// Package lincheck checks that a dht cluster, or any Redis Cluster, is
// linearizable and loses no acknowledged write, under whatever faults a test
// injects while it runs.
//
// A check has three steps:
//
//  1. [Run] drives the cluster with concurrent clients doing random GET and SET
//     over a few keys and records every operation with its call and return
//     times on one monotonic clock: a [History]. Every SET writes a value
//     unique in the run, so a read names the write it saw.
//  2. [Checker.Check] checks the history against a register per key with the
//     porcupine linearizability checker. Keys are independent registers and
//     linearizability is compositional, so each key is checked on its own: a
//     failure names the keys that failed, and the checker writes an HTML
//     visualization of each for the failure message to point at.
//  3. [Checker.CheckDurable] reads every key back once the faults are over,
//     appends those reads to the history and checks it again. A final read
//     that returns an older value than an acknowledged write, or nothing where
//     a write was acknowledged, is not linearizable, so this catches lost
//     writes with the same checker and no second notion of "durable".
//
// # Failed operations
//
// A GET that fails has no effect and is ignored by the checker. A SET that
// fails is ambiguous: it may have been applied before the error (a timeout, a
// connection closed after the node wrote its log) or never. Such a write is
// checked as an operation that was called and never returned: it may take
// effect at any point after its call, or not at all. The checker therefore
// accepts reads of its value after its call, and never requires them. Since
// values are unique, the checker drops a failed write that no read saw and
// ends one that a read saw at that read's return; both keep the verdict and
// keep histories with many failed writes quick to check.
//
// For that to be sound, clients must not retry a SET on their own: a SET sent
// twice can be applied twice, around another client's write, which is a
// legitimate linearizability violation of the client's making. Build go-redis
// clients with MaxRetries: -1 (and for a ClusterClient also MaxRedirects: -1,
// since it resends on network errors as well as on redirects), as
// [NewClusterClient] does.
//
// # Reproducing a failure
//
// The operation mix, keys and values come from [Config.Seed], which Run logs
// and keeps in [History.Seed]. The interleaving of operations is the
// cluster's, so a seed reproduces the workload, not the schedule; the HTML
// visualization shows the schedule that failed.
package lincheck
