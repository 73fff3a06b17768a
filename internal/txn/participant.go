package txn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// KV is a group's keys as a participant reads and writes them. Get must treat an
// expired key as absent; Put clears any expiry, as MSET does.
type KV interface {
	Get(key []byte) (value []byte, ok bool)
	Put(key, value []byte)
	Del(key []byte)
}

// Options are a participant's timeouts.
type Options struct {
	// Timeout is how long a transaction may hold locks before it is stuck: the
	// group's leader then resolves it from its record (see Recover).
	Timeout time.Duration
	// Retain is how long a resolved transaction is remembered, so that a late or
	// repeated Prepare of it locks nothing, and how long an aborted record is kept.
	Retain time.Duration
}

// DefaultOptions are the timeouts the server uses.
var DefaultOptions = Options{Timeout: 2 * time.Second, Retain: time.Minute}

// Participant is the transaction state of one group: the locks and intents of the
// transactions prepared in it, those it resolved lately, and the records of the
// transactions whose first key it owns. It changes only through Apply, which is
// deterministic given the state, the command and the log time, so that every replica
// of the group agrees; it is not safe for concurrent use.
type Participant struct {
	opts     Options
	locks    map[string]*lock
	prepared map[ID]*intent
	resolved map[ID]Status
	// records are the transaction records kept here, by transaction.
	records map[ID]*record
	// expiry lists resolved transactions and aborted records in the order they
	// were made, for pruning them once Retain has passed.
	expiry []expiring
}

// lock is the lock on one key: one writer, or any number of readers.
type lock struct {
	writer  ID
	readers []ID
}

// intent is a prepared transaction: its operations in this group, what it voted,
// and when (log time, Unix ns).
type intent struct {
	route, record []byte
	ops           []Op
	at            int64
	reply         Reply
}

// record is a transaction's record: the reply its Decide gave (with Status), and of
// a commit the transaction's first key and the other participants' keys; and when it
// was written (log time, Unix ns).
type record struct {
	reply Reply
	key   []byte
	parts [][]byte
	at    int64
}

type expiring struct {
	id     ID
	at     int64
	record bool
}

// NewParticipant returns a participant with no transactions.
func NewParticipant(opts Options) *Participant {
	return &Participant{opts: opts, locks: map[string]*lock{}, prepared: map[ID]*intent{},
		resolved: map[ID]Status{}, records: map[ID]*record{}}
}

// Apply carries out one command at log time now against the group's keys.
func (p *Participant) Apply(kv KV, now time.Time, c Command) Reply {
	ns := now.UnixNano()
	p.prune(ns)
	switch c.Verb {
	case Prepare:
		return p.prepare(kv, ns, c)
	case Commit, Abort:
		return Reply{Status: p.resolve(kv, ns, c.ID, c.Verb == Commit)}
	case Decide:
		return p.decide(kv, ns, c)
	case Forget:
		delete(p.records, c.ID)
		return Reply{}
	}
	return Reply{}
}

// decide writes the record of c.ID, unless there is one already, whose reply it
// repeats. With Ops (the record group's own keys), the group prepares them first and
// writes the record only on a yes, committing them at once: the decision and this
// group's share are one step. On a no or a die, with which the coordinator gives the
// attempt up, it writes the record aborted, so that a copy of the command applied
// later (sent again when an answer was lost) cannot commit what the coordinator
// aborted elsewhere; it answers the vote. On a wait it writes nothing: the
// coordinator asks again.
func (p *Participant) decide(kv KV, now int64, c Command) Reply {
	if rec, ok := p.records[c.ID]; ok {
		return rec.reply
	}
	commit := c.Commit && !p.tooOld(now, c.ID)
	var r Reply
	if len(c.Ops) > 0 && commit {
		if r = p.prepare(kv, now, c); r.Vote != VoteYes {
			if r.Vote == VoteNo || r.Vote == VoteDie {
				p.recordAborted(c.ID, now, Reply{Vote: r.Vote})
			}
			return r
		}
		p.resolve(kv, now, c.ID, true)
		r = cloneReply(r)
	}
	if !commit {
		return p.recordAborted(c.ID, now, r)
	}
	r.Status = StatusCommitted
	p.records[c.ID] = &record{at: now, reply: r, key: bytes.Clone(c.Route), parts: cloneKeys(c.Parts)}
	return r
}

// recordAborted writes id's record aborted, with reply (its Status set) as the
// answer to every DECIDE of id, pruned after Retain, and returns that reply.
func (p *Participant) recordAborted(id ID, now int64, reply Reply) Reply {
	reply.Status = StatusAborted
	p.records[id] = &record{at: now, reply: reply}
	p.expiry = append(p.expiry, expiring{id: id, at: now, record: true})
	return reply
}

func (p *Participant) prepare(kv KV, now int64, c Command) Reply {
	if in, ok := p.prepared[c.ID]; ok {
		return in.reply
	}
	if st, ok := p.resolved[c.ID]; ok {
		return Reply{Vote: VoteResolved, Status: st}
	}
	if p.tooOld(now, c.ID) {
		return Reply{Vote: VoteResolved, Status: StatusAborted}
	}
	if r, conflict := p.conflict(now, c, nil); conflict {
		return r
	}
	r := Reply{Vote: VoteYes}
	var seen map[string]bool // the keys of deletes counted
	for _, op := range c.Ops {
		if op.Kind == OpPut {
			continue // writes whatever is there
		}
		v, ok := kv.Get(op.Key)
		switch op.Kind {
		case OpRead:
			r.Values, r.Found = append(r.Values, v), append(r.Found, ok)
		case OpPutNX:
			if ok {
				return Reply{Vote: VoteNo}
			}
		case OpDel:
			if seen == nil {
				seen = map[string]bool{}
			}
			if ok && !seen[string(op.Key)] {
				r.Existed++
			}
			seen[string(op.Key)] = true
		}
	}
	for _, op := range c.Ops {
		l := p.locks[string(op.Key)]
		if l == nil {
			l = &lock{}
			p.locks[string(op.Key)] = l
		}
		if op.Kind != OpRead {
			l.writer = c.ID
		} else if !slices.Contains(l.readers, c.ID) {
			l.readers = append(l.readers, c.ID)
		}
	}
	p.prepared[c.ID] = &intent{route: bytes.Clone(c.Route), record: bytes.Clone(c.Record), ops: cloneOps(c.Ops), at: now, reply: cloneReply(r)}
	return r
}

// cloneOps copies ops, which may point into a buffer the caller reuses.
func cloneOps(ops []Op) []Op {
	out := make([]Op, len(ops))
	for i, op := range ops {
		out[i] = Op{Kind: op.Kind, Key: bytes.Clone(op.Key), Value: bytes.Clone(op.Value)}
	}
	return out
}

// cloneKeys copies keys, which may point into a buffer the caller reuses.
func cloneKeys(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = bytes.Clone(k)
	}
	return out
}

// cloneReply copies the values of r, which may be the caller's.
func cloneReply(r Reply) Reply {
	r.Values = slices.Clone(r.Values)
	for i, v := range r.Values {
		r.Values[i] = bytes.Clone(v)
	}
	r.Found = slices.Clone(r.Found)
	return r
}

// Conflict returns the vote a Prepare (or a Decide with operations) would get at
// now for meeting locks, if it would meet any. Such a vote changes nothing, so a
// leader may answer it without replicating the command. Holders that settled
// reports (when not nil) are passed over: see Blocks.
func (p *Participant) Conflict(now time.Time, c Command, settled func(ID) bool) (Reply, bool) {
	if !p.WouldLock(c) {
		return Reply{}, false
	}
	return p.conflict(now.UnixNano(), c, settled)
}

// WouldLock reports whether c asks to take locks anew: a Prepare, or a Decide with
// operations, of a transaction that holds none here and was not resolved here.
func (p *Participant) WouldLock(c Command) bool {
	if c.Verb != Prepare && (c.Verb != Decide || len(c.Ops) == 0) {
		return false
	}
	_, prepared := p.prepared[c.ID]
	_, recorded := p.records[c.ID]
	_, resolved := p.resolved[c.ID]
	return !prepared && !recorded && !resolved
}

// conflict applies wait-die to the locks c's keys meet: if any holder is older, c
// dies; if all are younger, c waits.
func (p *Participant) conflict(now int64, c Command, settled func(ID) bool) (Reply, bool) {
	var r Reply
	for _, op := range c.Ops {
		l := p.locks[string(op.Key)]
		if l == nil {
			continue
		}
		holders := []ID{l.writer}
		if op.Kind != OpRead {
			holders = append(holders, l.readers...)
		}
		for _, h := range holders {
			if h.IsZero() || h == c.ID || settled != nil && settled(h) {
				continue
			}
			if h.Older(c.ID) {
				return p.holderReply(VoteDie, h, now), true
			}
			if r.Vote == 0 {
				r = p.holderReply(VoteWait, h, now)
			}
		}
	}
	return r, r.Vote != 0
}

// tooOld reports whether transaction id started more than Retain before now: what
// this group knew of it may be forgotten (an aborted record, a resolution), so it
// may neither lock nor commit any more. Coordinators give up long before (their
// clocks must be within Retain less their deadline of the groups' leaders').
func (p *Participant) tooOld(now int64, id ID) bool {
	return now-id.TS > int64(p.opts.Retain)
}

// holderReply is the vote v for a transaction that met a lock of h.
func (p *Participant) holderReply(v Vote, h ID, now int64) Reply {
	r := Reply{Vote: v, Holder: h}
	if in := p.prepared[h]; in != nil {
		r.HolderRecord, r.HolderStuck = in.record, p.stuck(in, now)
	}
	return r
}

func (p *Participant) stuck(in *intent, now int64) bool {
	return now-in.at > int64(p.opts.Timeout)
}

// resolve commits (applies the writes) or aborts transaction id here and releases
// its locks. A transaction resolved before stays as it was.
func (p *Participant) resolve(kv KV, now int64, id ID, commit bool) Status {
	if st, ok := p.resolved[id]; ok {
		return st
	}
	st := StatusAborted
	if commit {
		st = StatusCommitted
	}
	p.resolved[id] = st
	p.expiry = append(p.expiry, expiring{id: id, at: now})
	in, ok := p.prepared[id]
	if !ok {
		return st
	}
	delete(p.prepared, id)
	for _, op := range in.ops {
		if commit {
			switch op.Kind {
			case OpPut, OpPutNX:
				kv.Put(op.Key, op.Value)
			case OpDel:
				kv.Del(op.Key)
			}
		}
		l := p.locks[string(op.Key)]
		if l == nil {
			continue
		}
		if l.writer == id {
			l.writer = ID{}
		}
		l.readers = slices.DeleteFunc(l.readers, func(r ID) bool { return r == id })
		if l.writer.IsZero() && len(l.readers) == 0 {
			delete(p.locks, string(op.Key))
		}
	}
	return st
}

// prune forgets the resolved transactions and aborted records older than Retain.
func (p *Participant) prune(now int64) {
	n := 0
	for n < len(p.expiry) && now-p.expiry[n].at > int64(p.opts.Retain) {
		e := p.expiry[n]
		if e.record {
			delete(p.records, e.id)
		} else {
			delete(p.resolved, e.id)
		}
		n++
	}
	p.expiry = p.expiry[n:]
}

// Blocks reports whether a lock on key keeps an ordinary command from running: any
// lock keeps a write out, a write lock a read. Holders that settled reports (when
// not nil) are passed over. A leader passes over the transactions whose COMMIT or
// ABORT it has proposed and not yet seen applied: what it proposes after them is
// applied after them, once the lock is gone, so it need not wait to propose
// (whatever it proposes is checked again when applied).
func (p *Participant) Blocks(key []byte, write bool, settled func(ID) bool) bool {
	l := p.locks[string(key)]
	if l == nil {
		return false
	}
	if !l.writer.IsZero() && (settled == nil || !settled(l.writer)) {
		return true
	}
	if !write {
		return false
	}
	for _, h := range l.readers {
		if settled == nil || !settled(h) {
			return true
		}
	}
	return false
}

// Prepared returns how many transactions hold locks here.
func (p *Participant) Prepared() int { return len(p.prepared) }

// Records returns how many transaction records are kept here: committed ones until
// their transaction is finished, aborted ones for Retain.
func (p *Participant) Records() (committed, aborted int) {
	for _, rec := range p.records {
		if rec.reply.Status == StatusCommitted {
			committed++
		} else {
			aborted++
		}
	}
	return committed, aborted
}

// Stuck is a transaction that has held its locks in a group past the timeout.
type Stuck struct {
	ID ID
	// Route is a key of the group, Record the transaction's first key.
	Route, Record []byte
}

// Stuck lists the transactions prepared here before now less the timeout, oldest
// first.
func (p *Participant) Stuck(now time.Time) []Stuck {
	var out []Stuck
	for id, in := range p.prepared {
		if p.stuck(in, now.UnixNano()) {
			out = append(out, Stuck{ID: id, Route: in.route, Record: in.record})
		}
	}
	slices.SortFunc(out, func(a, b Stuck) int { return olderFirst(a.ID, b.ID) })
	return out
}

// Unfinished is a committed transaction whose record is still here past the
// timeout: its coordinator did not finish it (it died, or lost touch with a group).
type Unfinished struct {
	ID ID
	// Record is the transaction's first key; Parts a key of each other participant.
	Record []byte
	Parts  [][]byte
}

// Unfinished lists the committed transactions whose records were written here
// before now less the timeout, oldest first. Finish tells their participants and
// forgets them, as their coordinators would have.
func (p *Participant) Unfinished(now time.Time) []Unfinished {
	var out []Unfinished
	for id, rec := range p.records {
		if rec.reply.Status == StatusCommitted && len(rec.parts) > 0 && now.UnixNano()-rec.at > int64(p.opts.Timeout) {
			out = append(out, Unfinished{ID: id, Record: rec.key, Parts: rec.parts})
		}
	}
	slices.SortFunc(out, func(a, b Unfinished) int { return olderFirst(a.ID, b.ID) })
	return out
}

// olderFirst orders transactions by age, for sorting.
func olderFirst(a, b ID) int {
	switch {
	case a == b:
		return 0
	case a.Older(b):
		return -1
	}
	return 1
}

// Snapshot version, for Restore to refuse what it cannot read. Version 2, whose
// records keep neither the participants' keys nor their time, is read too: such a
// record is forgotten by its coordinator only.
const snapshotVersion = 3

// AppendSnapshot appends the participant's state to b, as Restore reads it.
func (p *Participant) AppendSnapshot(b []byte) []byte {
	b = append(b, snapshotVersion)
	b = appendUvarint(b, len(p.prepared))
	for id, in := range p.prepared {
		b = appendID(b, id)
		b = appendBytes(b, in.route)
		b = appendBytes(b, in.record)
		b = binary.AppendVarint(b, in.at)
		b = appendBytes(b, AppendReply(nil, in.reply))
		b = appendUvarint(b, len(in.ops))
		for _, op := range in.ops {
			b = append(b, byte(op.Kind))
			b = appendBytes(b, op.Key)
			b = appendBytes(b, op.Value)
		}
	}
	b = appendUvarint(b, len(p.records))
	for id, rec := range p.records {
		b = appendID(b, id)
		b = appendBytes(b, AppendReply(nil, rec.reply))
		b = appendBytes(b, rec.key)
		b = appendBytes(b, appendKeys(nil, rec.parts))
		b = binary.AppendVarint(b, rec.at)
	}
	b = appendUvarint(b, len(p.expiry))
	for _, e := range p.expiry {
		b = appendID(b, e.id)
		b = binary.AppendVarint(b, e.at)
		b = append(b, boolByte(e.record))
		if !e.record {
			b = append(b, byte(p.resolved[e.id]))
		}
	}
	return b
}

func appendUvarint(b []byte, n int) []byte { return binary.AppendUvarint(b, uint64(n)) }

// Restore replaces the participant's state with a snapshot's.
func (p *Participant) Restore(data []byte) error {
	q := NewParticipant(p.opts)
	d := decoder{b: data}
	version := d.byte()
	if version != snapshotVersion && version != 2 {
		return fmt.Errorf("txn: snapshot version %d, want %d", version, snapshotVersion)
	}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		id := d.id()
		in := &intent{route: d.bytes(), record: d.bytes(), at: d.varint()}
		r, err := ParseReply(d.bytes())
		if err != nil {
			return fmt.Errorf("txn: snapshot: %w", err)
		}
		in.reply = r
		for m := d.uvarint(); m > 0 && d.err == nil; m-- {
			in.ops = append(in.ops, Op{Kind: OpKind(d.byte()), Key: d.bytes(), Value: d.bytes()})
		}
		if len(in.ops) == 0 {
			return errors.New("txn: snapshot: an intent without operations")
		}
		q.prepared[id] = in
		for _, op := range in.ops {
			l := q.locks[string(op.Key)]
			if l == nil {
				l = &lock{}
				q.locks[string(op.Key)] = l
			}
			if op.Kind == OpRead {
				l.readers = append(l.readers, id)
			} else {
				l.writer = id
			}
		}
	}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		id := d.id()
		r, err := ParseReply(d.bytes())
		if err != nil {
			return fmt.Errorf("txn: snapshot: record: %w", err)
		}
		rec := &record{reply: r}
		if version == snapshotVersion {
			rec.key = d.bytes()
			if rec.parts, err = parseKeys(d.bytes()); err != nil {
				return fmt.Errorf("txn: snapshot: record: %w", err)
			}
			rec.at = d.varint()
		}
		q.records[id] = rec
	}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		e := expiring{id: d.id(), at: d.varint(), record: d.byte() == 1}
		if !e.record {
			q.resolved[e.id] = Status(d.byte())
		}
		q.expiry = append(q.expiry, e)
	}
	if d.err != nil || len(d.b) != 0 {
		return errors.New("txn: malformed snapshot")
	}
	*p = *q
	return nil
}
