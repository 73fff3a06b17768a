// Package replica runs the Raft groups of one node: each group replicates one range
// of hash slots over replication_degree nodes with etcd's raft library.
//
// The package is split as etcd's raft is: group.go holds a group's consensus driver,
// a deterministic state machine that takes ticks, messages, proposals and read
// requests and hands back the messages to send, with no goroutines, clocks or I/O of
// its own; host.go runs one goroutine per group around it, with a ticker, an inbox and
// a Transport. The state machine being replicated (the node's table) sits behind
// StateMachine; the network sits behind Transport. Tests run whole groups in one
// process over an in-memory network that drops, delays, reorders and partitions.
//
// Commands are proposed in batches: everything proposed to a group while it was busy
// goes into one log entry, so one consensus round commits the commands of many
// connections. Reads are linearizable through ReadIndex, also batched: one
// heartbeat round confirms the leadership for every read that arrived before it.
// There are no lease reads.
package replica

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// StateMachine is what a group replicates. Every method is called from the group's
// goroutine only, one call at a time.
type StateMachine interface {
	// Apply applies one committed command and returns its result for the proposer.
	// now is the log's clock: the time the leader stamped on the entry, never less
	// than that of any earlier entry; index is the entry's index in the log (an entry
	// may hold several commands). Apply must be deterministic given the state, cmd,
	// now and index, so that every replica ends in the same state.
	Apply(now time.Time, index uint64, cmd []byte) []byte
	// Snapshot returns the whole state of the group, as Restore reads it.
	Snapshot() ([]byte, error)
	// Restore replaces the group's state with a snapshot's.
	Restore(data []byte) error
}

// ThroughWatcher is a StateMachine that is told, on the leader, of the commands the
// leader appends to the log on a follower's behalf (see Host.ProposeThrough), as the
// leader knows of those proposed on it. AppendedThrough is called on the group's
// goroutine, before the commands are committed; it must not block.
type ThroughWatcher interface {
	AppendedThrough(cmd []byte)
}

// Transport carries a group's Raft messages to the other nodes. Send must not block:
// a transport that cannot deliver a message drops it (Raft retransmits) and tells the
// host through ReportUnreachable or ReportSnapshot.
type Transport interface {
	Send(group int, msgs []raftpb.Message)
}

// Errors of proposals and reads.
var (
	// ErrStopped: the host stopped before the request completed.
	ErrStopped = errors.New("replica: stopped")
	// ErrLost: the proposal was not committed and never will be (its leader lost its
	// term before a majority had it). It is safe to retry.
	ErrLost = errors.New("replica: proposal lost in a leader change")
	// ErrDropped: the leader refused the proposal without putting it in the log (it
	// is handing the lead over, or has too much uncommitted). It is safe to retry.
	ErrDropped = errors.New("replica: proposal dropped by the leader")
	// ErrNotMember: this node holds no replica of the group.
	ErrNotMember = errors.New("replica: not a member of the group")
	// ErrUnconfirmed: a proposal sent to the leader was not seen applied in time;
	// it may still be.
	ErrUnconfirmed = errors.New("replica: the proposal sent to the leader was not seen applied in time")
)

// NotLeaderError is returned for a proposal or read that this node cannot serve
// because it does not lead the group (or lost the lead before the request
// completed). Leader is the leader's Raft id, or 0 when none is known.
type NotLeaderError struct {
	Group  int
	Leader uint64
}

func (e *NotLeaderError) Error() string {
	if e.Leader == 0 {
		return fmt.Sprintf("replica: group %d has no leader", e.Group)
	}
	return fmt.Sprintf("replica: not the leader of group %d (node %d is)", e.Group, e.Leader)
}

// Proposal is a command submitted to a group. It completes once the command is
// applied here, or once it is known that it will not be.
type Proposal struct {
	cmd  []byte
	seq  uint64
	term uint64
	// through is set for a proposal a follower may send to its leader (see
	// Host.ProposeThrough); expires, once it has been sent, is the tick at which
	// the follower stops waiting for it (0 for a proposal made by the leader).
	through bool
	expires int
	done    chan struct{}
	result  []byte
	index   uint64
	err     error
	// then, when set, is called once the proposal completes.
	then func()
}

func newProposal(cmd []byte, then func()) *Proposal {
	return &Proposal{cmd: cmd, done: make(chan struct{}), then: then}
}

func (p *Proposal) finish(result []byte, index uint64, err error) {
	p.result, p.index, p.err = result, index, err
	close(p.done)
	if p.then != nil {
		p.then()
	}
}

// Wait waits for the proposal to complete and returns the command's result. An
// error other than ctx's means the command was not applied; ctx's error means its
// outcome is unknown.
func (p *Proposal) Wait(ctx context.Context) ([]byte, error) {
	select {
	case <-p.done:
		return p.result, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Done is closed once the proposal completes; Result then tells how.
func (p *Proposal) Done() <-chan struct{} { return p.done }

// Result returns the command's result, or the error that means it was not applied.
// It may only be called once Done is closed.
func (p *Proposal) Result() ([]byte, error) { return p.result, p.err }

// Index is the log index the command was applied at; valid once Wait returned no
// error.
func (p *Proposal) Index() uint64 { return p.index }

// Read is a request to read a group's state linearizably. It completes once this
// node has applied everything that was committed when the request was made, and its
// leadership was confirmed by a majority after that.
type Read struct {
	done  chan struct{}
	index uint64
	err   error
	// then, when set, is called once the read completes.
	then func()
}

func newRead(then func()) *Read { return &Read{done: make(chan struct{}), then: then} }

func (r *Read) finish(err error) {
	r.err = err
	close(r.done)
	if r.then != nil {
		r.then()
	}
}

// Done is closed once the read completes; Err then tells whether it may go ahead.
func (r *Read) Done() <-chan struct{} { return r.done }

// Err returns nil when the state may be read, or why not. It may only be called once
// Done is closed.
func (r *Read) Err() error { return r.err }

// Wait waits until the state may be read.
func (r *Read) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
