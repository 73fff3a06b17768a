// Package txn makes multi-key commands atomic across the Raft groups of a cluster,
// with two-phase commit whose participants are the groups themselves.
//
// The package holds the protocol and nothing else: it opens no sockets and reads no
// clock. Participant is the state a group replicates next to its keys (the locks and
// intents of prepared transactions, and the transaction records of those whose
// first key it owns); it changes only through Apply, with the time of the log entry
// as an input, so every replica of a group ends in the same state. Coordinator runs
// a transaction against the groups through the Groups interface, which the server
// implements by proposing commands to the groups' leaders, and the tests with
// in-memory groups that lose, repeat and refuse messages.
//
// The protocol, the records and their states, and the reasons for its shape are in
// docs/transactions.md.
package txn
