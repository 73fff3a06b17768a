package txn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Groups carries commands to the groups.
type Groups interface {
	// Call has the group that cmd.Route belongs to apply cmd (replicated, through its
	// leader) and returns its reply. An error means cmd may or may not have been
	// applied.
	Call(ctx context.Context, cmd Command) (Reply, error)
}

// Releases is implemented by Groups that can tell when a group may have released a
// lock: Released returns a channel closed when the group of the key route next
// releases one, as this node sees it, or nil when it cannot tell. A transaction
// that waits for a younger one then asks again as soon as the lock may be gone,
// rather than after Poll.
type Releases interface {
	Released(route []byte) <-chan struct{}
}

// Point is a step of the coordinator at which a test may make it stop, as if it
// died there.
type Point int

// The failpoints.
const (
	// AfterPrepare: every participant voted yes; no decision is written.
	AfterPrepare Point = iota + 1
	// AfterDecision: the record says committed; no participant knows.
	AfterDecision
	// AfterFirstCommit: one participant committed, the others not.
	AfterFirstCommit
)

// Errors of Run.
var (
	// ErrNotCommitted: the transaction did not commit and never will (its locks are
	// released, or will be once they are found stuck).
	ErrNotCommitted = errors.New("txn: not committed")
	// ErrUnknown: the decision was asked for but its answer was lost; the
	// transaction may have committed.
	ErrUnknown = errors.New("txn: outcome unknown")
)

// Coordinator runs transactions over the groups. Its exported fields are set before
// its first use; it may then run many transactions at once.
type Coordinator struct {
	Groups Groups
	// GroupOf is the group of a key.
	GroupOf func(key []byte) int
	// Node tells this coordinator's transactions from other nodes'.
	Node uint32
	// Now is the clock the transactions' ages are taken from.
	Now func() time.Time
	// Poll is how long, at the most, a transaction that waits for a lock sleeps
	// before asking again (less where Groups tell of releases, see Releases), and
	// the unit of the backoff of one that gave up.
	Poll time.Duration
	// Cleanup bounds the steps taken after the caller's context ended: releasing the
	// locks of an aborted attempt.
	Cleanup time.Duration
	// Failpoint, when set, is called at each Point; an error makes the coordinator
	// stop there and return it, leaving everything as a dead coordinator would
	// (tests only).
	Failpoint func(Point) error

	seq atomic.Uint64
}

// Result is the outcome of a transaction.
type Result struct {
	// Committed is set once the transaction is decided: its writes will be made,
	// or its reads were all made under its locks. It is false for an MSETNX that
	// found a key.
	Committed bool
	// Existed is how many of a write's keys existed (DEL's reply).
	Existed int
	// Values and Found are what a read found, in the order of its operations.
	Values [][]byte
	Found  []bool
	// Participants is how many groups took part, Attempts how many times the
	// transaction was started, Recovered how many stuck transactions it resolved on
	// its way, Waits how many times a group found its keys held by a younger
	// transaction and was asked again (after Poll, or once it released a lock).
	Participants, Attempts, Recovered, Waits int
}

// part is one group's share of a transaction.
type part struct {
	route []byte
	ops   []Op
	index []int // of each op in the transaction
}

// Run runs a transaction of ops (all reads or all writes) and resolves it in every
// group before it returns.
func (c *Coordinator) Run(ctx context.Context, ops []Op) (Result, error) {
	res, finish, err := c.Start(ctx, ops)
	if err != nil {
		return res, err
	}
	return res, finish(ctx)
}

// Start runs a transaction of ops up to its decision, which is final once Start
// returns; finish then tells the participants and forgets the record. A caller may
// answer its client between the two: a participant that is not told in time
// resolves the transaction from its record.
func (c *Coordinator) Start(ctx context.Context, ops []Op) (Result, func(context.Context) error, error) {
	nothing := func(context.Context) error { return nil }
	if err := checkOps(ops); err != nil || len(ops) == 0 {
		return Result{}, nothing, fmt.Errorf("%w: no operations, or reads mixed with writes", ErrNotCommitted)
	}
	parts := c.split(ops)
	res := Result{Participants: len(parts)}
	ts := c.Now().UnixNano()
	for {
		res.Attempts++
		id := ID{TS: ts, Node: c.Node, Seq: c.seq.Add(1)}
		done, err := c.attempt(ctx, id, ops[0].Key, parts, &res)
		if err != nil || done {
			if err != nil || !res.Committed {
				return res, nothing, err
			}
			return res, func(ctx context.Context) error { return c.finish(ctx, id, ops[0].Key, parts) }, nil
		}
		if err := sleep(ctx, c.backoff(res.Attempts, id)); err != nil {
			return res, nothing, fmt.Errorf("%w: %w", ErrNotCommitted, err)
		}
	}
}

func (c *Coordinator) split(ops []Op) []part {
	var parts []part
	groups := map[int]int{}
	for i, op := range ops {
		g := c.GroupOf(op.Key)
		j, ok := groups[g]
		if !ok {
			j = len(parts)
			groups[g] = j
			parts = append(parts, part{route: op.Key})
		}
		parts[j].ops = append(parts[j].ops, op)
		parts[j].index = append(parts[j].index, i)
	}
	return parts
}

// attempt runs one attempt up to the decision. done is false when the attempt gave
// up under wait-die, and another should start. parts[0], the record group's share,
// is prepared and decided in one step once every other group voted yes.
func (c *Coordinator) attempt(ctx context.Context, id ID, record []byte, parts []part, res *Result) (done bool, err error) {
	others := parts[1:]
	replies := make([]Reply, len(parts))
	errs := make([]error, len(parts))
	var recovered, waits atomic.Int64
	defer func() { res.Recovered, res.Waits = res.Recovered+int(recovered.Load()), res.Waits+int(waits.Load()) }()
	parallel(len(others), func(i int) {
		cmd := Command{Verb: Prepare, Route: others[i].route, ID: id, Record: record, Ops: others[i].ops}
		replies[i+1], errs[i+1] = c.prepare(ctx, cmd, &recovered, &waits)
	})
	var failed error
	no, die := false, false
	for i, r := range replies[1:] {
		switch {
		case errs[i+1] != nil:
			failed = errs[i+1]
		case r.Vote == VoteNo:
			no = true
		case r.Vote != VoteYes:
			die = true
		}
	}
	if failed != nil || no || die {
		c.release(ctx, id, others)
		switch {
		case failed != nil:
			return true, fmt.Errorf("%w: %w", ErrNotCommitted, failed)
		case die:
			return false, nil
		}
		return true, nil
	}
	if err := c.failpoint(AfterPrepare); err != nil {
		return true, err
	}
	decide := Command{Verb: Decide, Route: record, ID: id, Record: record, Ops: parts[0].ops, Commit: true}
	for _, p := range others {
		decide.Parts = append(decide.Parts, p.route)
	}
	for {
		replies[0], errs[0] = c.prepare(ctx, decide, &recovered, &waits)
		if errs[0] == nil || ctx.Err() != nil {
			break
		}
	}
	if errs[0] != nil {
		// The record may say committed: only the record may resolve the others now.
		return true, fmt.Errorf("%w: %w", ErrUnknown, errs[0])
	}
	switch r := replies[0]; {
	case r.Status == StatusCommitted:
	case r.Status == StatusAborted:
		// A participant found the transaction stuck and aborted it first (and may
		// have let a writer past a read lock since).
		c.release(ctx, id, others)
		return false, nil
	case r.Vote == VoteNo:
		c.release(ctx, id, others)
		return true, nil
	default:
		c.release(ctx, id, others)
		return false, nil
	}
	res.Committed = true
	for _, r := range replies {
		res.Existed += r.Existed
	}
	if parts[0].ops[0].Kind == OpRead {
		n := 0
		for _, p := range parts {
			n += len(p.index)
		}
		res.Values, res.Found = make([][]byte, n), make([]bool, n)
		for i, p := range parts {
			for j, k := range p.index {
				res.Values[k], res.Found[k] = replies[i].Values[j], replies[i].Found[j]
			}
		}
	}
	if err := c.failpoint(AfterDecision); err != nil {
		return true, err
	}
	return true, nil
}

// prepare has one group apply cmd, a Prepare (or a Decide, which prepares and
// decides), waiting while a younger transaction holds a key, and resolving a holder
// found stuck. It counts the holders it resolved and the times it waited.
func (c *Coordinator) prepare(ctx context.Context, cmd Command, recovered, waits *atomic.Int64) (Reply, error) {
	for {
		var released <-chan struct{}
		if rs, ok := c.Groups.(Releases); ok {
			released = rs.Released(cmd.Route)
		}
		r, err := c.Groups.Call(ctx, cmd)
		if err != nil {
			return r, err
		}
		if r.Vote == VoteYes && cmd.Ops[0].Kind == OpRead && (len(r.Values) != len(cmd.Ops) || len(r.Found) != len(cmd.Ops)) {
			return r, fmt.Errorf("txn %s: a read of %d keys answered with %d values", cmd.ID, len(cmd.Ops), len(r.Values))
		}
		if r.HolderStuck {
			if _, err := Recover(ctx, c.Groups, Stuck{ID: r.Holder, Route: cmd.Route, Record: r.HolderRecord}); err == nil {
				recovered.Add(1)
			}
		}
		if r.Vote != VoteWait {
			return r, nil
		}
		waits.Add(1)
		if err := sleepUntil(ctx, c.Poll, released); err != nil {
			return r, err
		}
	}
}

// release aborts the attempt in every group, best effort: a lock left behind is
// found stuck later.
func (c *Coordinator) release(ctx context.Context, id ID, parts []part) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Cleanup)
	defer cancel()
	parallel(len(parts), func(i int) {
		_ = c.tell(ctx, Command{Verb: Abort, Route: parts[i].route, ID: id})
	})
}

// tell sends cmd (a Commit or an Abort, which a group may apply any number of
// times) until a group answers or ctx ends: every lock released now is one that no
// command waits for until it is found stuck.
func (c *Coordinator) tell(ctx context.Context, cmd Command) error {
	for {
		_, err := c.Groups.Call(ctx, cmd)
		if err == nil {
			return nil
		}
		if serr := sleep(ctx, c.Poll); serr != nil {
			return err
		}
	}
}

// finish commits a decided transaction in every group but the record's (which
// committed with the decision), then forgets the record.
func (c *Coordinator) finish(ctx context.Context, id ID, record []byte, parts []part) error {
	routes := make([][]byte, 0, len(parts)-1)
	for _, p := range parts[1:] {
		routes = append(routes, p.route)
	}
	if c.Failpoint != nil && len(routes) > 0 {
		if err := c.tell(ctx, Command{Verb: Commit, Route: routes[0], ID: id}); err != nil {
			return fmt.Errorf("txn %s: committed, but not every group was told (they will ask): %w", id, err)
		}
		if err := c.failpoint(AfterFirstCommit); err != nil {
			return err
		}
		routes = routes[1:]
	}
	return c.Finish(ctx, Unfinished{ID: id, Record: record, Parts: routes})
}

// Finish does for committed transaction u what its coordinator does after the
// decision, and does it for one whose coordinator did not (see
// Participant.Unfinished): it tells every other participant to commit, which a group
// applies any number of times alike, then forgets the record. It gives up when ctx
// ends, leaving the record for another try.
func (c *Coordinator) Finish(ctx context.Context, u Unfinished) error {
	errs := make([]error, len(u.Parts))
	parallel(len(u.Parts), func(i int) {
		errs[i] = c.tell(ctx, Command{Verb: Commit, Route: u.Parts[i], ID: u.ID})
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("txn %s: committed, but not every group was told (they will ask): %w", u.ID, err)
	}
	if _, err := c.Groups.Call(ctx, Command{Verb: Forget, Route: u.Record, ID: u.ID}); err != nil {
		return fmt.Errorf("txn %s: committed, but its record stays: %w", u.ID, err)
	}
	return nil
}

func (c *Coordinator) failpoint(p Point) error {
	if c.Failpoint == nil {
		return nil
	}
	return c.Failpoint(p)
}

// backoff is how long attempt n sleeps before the next: Poll doubled with each
// attempt up to 64 times, with jitter drawn from the attempt's id.
func (c *Coordinator) backoff(n int, id ID) time.Duration {
	d := c.Poll << min(n, 6)
	r := rand.New(rand.NewPCG(uint64(id.TS), id.Seq<<32|uint64(id.Node)))
	return d/2 + time.Duration(r.Int64N(int64(d)/2+1))
}

// Recover resolves a transaction found stuck in the group of s.Route: from its
// record, which it writes as aborted when there is none (a transaction that is not
// committed by then never will be). A read needs this as much as a write: the
// record tells its coordinator that a read lock was taken from it. It returns what
// it decided.
func Recover(ctx context.Context, g Groups, s Stuck) (Status, error) {
	r, err := g.Call(ctx, Command{Verb: Decide, Route: s.Record, ID: s.ID, Commit: false})
	if err != nil {
		return StatusNone, fmt.Errorf("txn %s: record: %w", s.ID, err)
	}
	st := r.Status
	verb := Abort
	if st == StatusCommitted {
		verb = Commit
	}
	if _, err := g.Call(ctx, Command{Verb: verb, Route: s.Route, ID: s.ID}); err != nil {
		return StatusNone, fmt.Errorf("txn %s: %s: %w", s.ID, verb, err)
	}
	return st, nil
}

// parallel runs fn(0..n-1) at once and waits for them.
func parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

// sleepUntil is sleep that ends early once done (which may be nil) is closed.
func sleepUntil(ctx context.Context, d time.Duration, done <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error { return sleepUntil(ctx, d, nil) }
