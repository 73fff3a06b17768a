package replica

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Options configure a Host.
type Options struct {
	// Self is this node's Raft id (never 0).
	Self uint64
	// Groups are the groups this node is a member of.
	Groups []GroupSpec
	// Transport carries messages to the other members.
	Transport Transport
	// Tick is the length of a Raft tick; 0 means 100 ms.
	Tick time.Duration
	// Tuning tunes the groups; the zero value means DefaultTuning.
	Tuning Tuning
	// Logger receives the groups' logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock that stamps proposals; nil means time.Now.
	Now func() time.Time
	// OnLeaderChange, if set, is called from a group's goroutine whenever the group's
	// leader as this node sees it changes (leader 0: none known).
	OnLeaderChange func(group int, leader, term uint64)
}

// inboxLen bounds the message batches waiting for a group; past it, batches are
// dropped, as a lossy network would (Raft retransmits).
const inboxLen = 1024

// Host runs the groups of one node, each on its own goroutine.
type Host struct {
	self      uint64
	transport Transport
	tick      time.Duration
	now       func() time.Time
	log       *slog.Logger
	groups    map[int]*runner
	onChange  func(group int, leader, term uint64)
	// election is the groups' election timeout (the shortest: Raft randomizes it
	// up to twice that).
	election time.Duration
}

// runner is the goroutine side of one group.
type runner struct {
	h     *Host
	g     *group
	inbox chan []raftpb.Message
	kick  chan struct{}

	mu      sync.Mutex
	props   []*Proposal
	reads   []*Read
	reports []report
	release string
	stopped bool

	// rounds confirms this replica's reads while it leads (see readRounds), with
	// commit and applied, the group's indexes as of its last messages sent, and
	// ticks, its clock; confirmed holds the reads it confirmed that wait for their
	// index to be applied.
	rounds          readRounds
	commit, applied atomic.Uint64
	ticks           atomic.Int64
	confirmed       []*Read

	lead, term atomic.Uint64
	empty      atomic.Bool
	readsNow   atomic.Bool
	status     atomic.Pointer[Status]
	changeMu   sync.Mutex
	changed    chan struct{}
}

// report is a transport's word on a message it could not deliver (or a snapshot it
// did).
type report struct {
	to       uint64
	snapshot bool
	ok       bool
}

// New creates the groups of a node. They run once Run is called.
func New(opts Options) (*Host, error) {
	if opts.Self == 0 {
		return nil, fmt.Errorf("replica: node id 0 is reserved")
	}
	tuning := opts.Tuning
	if tuning == (Tuning{}) {
		tuning = DefaultTuning()
	}
	h := &Host{
		self: opts.Self, transport: opts.Transport, tick: opts.Tick, now: opts.Now,
		log: opts.Logger, groups: map[int]*runner{}, onChange: opts.OnLeaderChange,
	}
	if h.tick <= 0 {
		h.tick = 100 * time.Millisecond
	}
	h.election = time.Duration(tuning.ElectionTicks) * h.tick
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, spec := range opts.Groups {
		if _, dup := h.groups[spec.ID]; dup {
			return nil, fmt.Errorf("replica: group %d given twice", spec.ID)
		}
		g, err := newGroup(spec, opts.Self, tuning, h.log)
		if err != nil {
			return nil, err
		}
		// Sequence numbers from the clock are new with each run of the node, so
		// that no proposal of this run is taken for one of an earlier run still in
		// the log (proposals sent to the leader cannot be told apart by term).
		g.seq = uint64(h.now().UnixNano())
		r := &runner{h: h, g: g, inbox: make(chan []raftpb.Message, inboxLen),
			kick: make(chan struct{}, 1), changed: make(chan struct{}), rounds: readRounds{self: opts.Self}}
		g.synced.wake = r.wake
		if h.transport != nil {
			g.synced.send = func(msgs []raftpb.Message) { h.transport.Send(g.id, msgs) }
		}
		r.empty.Store(true)
		r.publishStatus()
		h.groups[spec.ID] = r
	}
	return h, nil
}

// Run drives every group until ctx ends; then it fails what is still waiting with
// ErrStopped.
func (h *Host) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range h.groups {
		wg.Go(func() { r.run(ctx) })
	}
	wg.Wait()
}

// ElectionTimeout is how long a follower waits for its leader before it stands
// for election, at the least (Raft randomizes it up to twice that).
func (h *Host) ElectionTimeout() time.Duration { return h.election }

// Member reports whether this node holds a replica of group.
func (h *Host) Member(group int) bool { _, ok := h.groups[group]; return ok }

// Propose submits cmd to group. It never blocks; the Proposal completes when cmd is
// applied here, or fails (NotLeaderError when this node does not lead the group).
func (h *Host) Propose(group int, cmd []byte) *Proposal { return h.ProposeThen(group, cmd, nil) }

// ProposeThen is Propose, and calls then once the proposal completes, on whichever
// goroutine completes it (then must not block; it may be called before ProposeThen
// returns), unless then is nil.
func (h *Host) ProposeThen(group int, cmd []byte, then func()) *Proposal {
	return h.propose(group, newProposal(cmd, then))
}

// ProposeThrough is ProposeThen, except that a follower does not refuse cmd: it
// sends it to its leader through Raft, with the group's other messages, and the
// proposal completes when this replica applies it, with this replica's result
// (the same as every other's). It fails with NotLeaderError only when no leader is
// known, and the command was not sent. When the lead moves, the proposals not yet
// applied are sent to the new leader too (the old one may have dropped them), so a
// command may be applied twice: it must be one that bears being repeated. A
// proposal never seen applied fails after a while with ErrUnconfirmed, which does
// not mean that it will not be applied.
func (h *Host) ProposeThrough(group int, cmd []byte, then func()) *Proposal {
	p := newProposal(cmd, then)
	p.through = true
	return h.propose(group, p)
}

func (h *Host) propose(group int, p *Proposal) *Proposal {
	r, ok := h.groups[group]
	if !ok {
		p.finish(nil, 0, ErrNotMember)
		return p
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		p.finish(nil, 0, ErrStopped)
		return p
	}
	r.props = append(r.props, p)
	r.mu.Unlock()
	r.wake()
	return p
}

// ReadIndex asks to read group's state linearizably; see Read.
func (h *Host) ReadIndex(group int) *Read { return h.ReadIndexThen(group, nil) }

// ReadIndexThen is ReadIndex, and calls then once the read completes, on whichever
// goroutine completes it (then must not block; it may be called before
// ReadIndexThen returns), unless then is nil.
func (h *Host) ReadIndexThen(group int, then func()) *Read {
	rd := newRead(then)
	r, ok := h.groups[group]
	if !ok {
		rd.finish(ErrNotMember)
		return rd
	}
	if r.readsNow.Load() {
		rd.finish(nil)
		return rd
	}
	if pings, ok := r.rounds.add(rd, r.commit.Load(), int(r.ticks.Load())); ok {
		if len(pings) > 0 {
			h.transport.Send(group, pings)
		}
		return rd
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		rd.finish(ErrStopped)
		return rd
	}
	r.reads = append(r.reads, rd)
	r.mu.Unlock()
	r.wake()
	return rd
}

// Deliver hands messages from another node to a group. It never blocks: when the
// group is too far behind, the messages are dropped. Read rounds' messages are
// handled at once, on the caller's goroutine.
func (h *Host) Deliver(group int, msgs []raftpb.Message) {
	r, ok := h.groups[group]
	if !ok {
		return
	}
	if slices.ContainsFunc(msgs, isRoundMsg) {
		for _, m := range msgs {
			if isRoundMsg(m) {
				r.round(m)
			}
		}
		msgs = slices.DeleteFunc(slices.Clone(msgs), isRoundMsg)
		if len(msgs) == 0 {
			return
		}
	}
	select {
	case r.inbox <- msgs:
	default:
	}
}

// ReportUnreachable tells group that a message to member to was not delivered.
func (h *Host) ReportUnreachable(group int, to uint64) { h.report(group, report{to: to}) }

// ReportSnapshot tells group whether a snapshot sent to member to was delivered.
func (h *Host) ReportSnapshot(group int, to uint64, ok bool) {
	h.report(group, report{to: to, snapshot: true, ok: ok})
}

func (h *Host) report(group int, rep report) {
	if r, ok := h.groups[group]; ok {
		r.mu.Lock()
		r.reports = append(r.reports, rep)
		r.mu.Unlock()
		r.wake()
	}
}

// Release lets group's replica here vote and campaign at once: the caller has learned
// that every member of the group is empty (a new cluster), so there is nothing this
// replica could have forgotten.
func (h *Host) Release(group int, why string) {
	if r, ok := h.groups[group]; ok {
		r.mu.Lock()
		r.release = why
		r.mu.Unlock()
		r.wake()
	}
}

// Empty reports whether group's replica here holds nothing a leader committed and has
// never heard of a leader (false when this node is not a member).
func (h *Host) Empty(group int) bool {
	r, ok := h.groups[group]
	return ok && r.empty.Load()
}

// ReadsNow reports whether group's state here may be read as it is, linearizably,
// with no read index: this node leads the group and is its only member (a group of
// one), and has applied everything committed before its term. ReadIndex then
// completes at once.
func (h *Host) ReadsNow(group int) bool {
	r, ok := h.groups[group]
	return ok && r.readsNow.Load()
}

// Leader returns group's leader as this node knows it (0 when none) and the term.
func (h *Host) Leader(group int) (leader, term uint64) {
	r, ok := h.groups[group]
	if !ok {
		return 0, 0
	}
	return r.lead.Load(), r.term.Load()
}

// LeaderChange returns a channel that is closed at group's next change of leader.
func (h *Host) LeaderChange(group int) <-chan struct{} {
	r, ok := h.groups[group]
	if !ok {
		return nil
	}
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	return r.changed
}

// Status is a snapshot of a group's replica on this node, refreshed every tick.
type Status struct {
	Group   int
	Role    string // leader, follower, candidate, pre-candidate
	Term    uint64
	Leader  uint64
	Commit  uint64
	Applied uint64
	// Held is set while the replica waits to catch up before it may vote.
	Held bool
	// Learner is set while the replica is a learner of the group: it came back
	// without its log and was added afresh, and votes once it caught up.
	Learner bool
	// MembershipChanges counts the changes of the group's members this replica
	// applied since it started (three for each member replaced after it lost its
	// log: removed, added back as a learner, made a voter).
	MembershipChanges int
	// ReadRounds counts the rounds this replica started to confirm reads since it
	// started, its own read rounds and the read indexes it asked Raft for (each
	// confirms every read queued for it); a group of one needs none.
	ReadRounds uint64
	// Followers is filled in on the leader.
	Followers []FollowerStatus
}

// FollowerStatus is the leader's view of one follower.
type FollowerStatus struct {
	ID      uint64
	Match   uint64
	Active  bool
	Learner bool
}

// Status returns group's status here.
func (h *Host) Status(group int) (Status, bool) {
	r, ok := h.groups[group]
	if !ok {
		return Status{}, false
	}
	return *r.status.Load(), true
}

// Groups returns the ids of the groups this node is a member of, in order.
func (h *Host) Groups() []int {
	ids := make([]int, 0, len(h.groups))
	for id := range h.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// round handles a read round's message: it answers a ping in this replica's term,
// and counts an answer to its own.
func (r *runner) round(m raftpb.Message) {
	if m.Type == msgReadPing {
		if t := r.g.ackTerm.Load(); t != 0 && t == m.Term {
			r.h.transport.Send(r.g.id, []raftpb.Message{{Type: msgReadAck, From: r.h.self, To: m.From, Term: m.Term, Index: m.Index}})
		}
		return
	}
	done, index, pings := r.rounds.ack(m, r.commit.Load(), int(r.ticks.Load()))
	if len(pings) > 0 {
		r.h.transport.Send(r.g.id, pings)
	}
	for _, rd := range done {
		rd.index = index
	}
	if len(done) == 0 || index <= r.applied.Load() {
		for _, rd := range done {
			rd.finish(nil)
		}
		return
	}
	// The group's goroutine completes them once it has applied their index.
	r.mu.Lock()
	stopped := r.stopped
	if !stopped {
		r.confirmed = append(r.confirmed, done...)
	}
	r.mu.Unlock()
	if stopped {
		for _, rd := range done {
			rd.finish(ErrStopped)
		}
		return
	}
	r.wake()
}

func (r *runner) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *runner) run(ctx context.Context) {
	t := time.NewTicker(r.h.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.shutdown()
			return
		case <-t.C:
			r.g.tick()
			r.ticks.Store(int64(r.g.ticks))
			if pings := r.rounds.expire(r.g.ticks, readRetryTicks, r.commit.Load()); len(pings) > 0 {
				r.h.transport.Send(r.g.id, pings)
			}
			r.publishStatus()
		case msgs := <-r.inbox:
			r.steps(msgs)
			for more := true; more; {
				select {
				case msgs := <-r.inbox:
					r.steps(msgs)
				default:
					more = false
				}
			}
		case <-r.kick:
			// Let the connections that are about to propose too do so first, so
			// that their commands share the entry.
			runtime.Gosched()
		}
		r.mu.Lock()
		props, reads, reports, release, confirmed := r.props, r.reads, r.reports, r.release, r.confirmed
		r.props, r.reads, r.reports, r.release, r.confirmed = nil, nil, nil, "", nil
		r.mu.Unlock()
		for _, rep := range reports {
			switch {
			case !rep.snapshot:
				r.g.rn.ReportUnreachable(rep.to)
			case rep.ok:
				r.g.rn.ReportSnapshot(rep.to, raft.SnapshotFinish)
			default:
				r.g.rn.ReportSnapshot(rep.to, raft.SnapshotFailure)
			}
		}
		if release != "" {
			r.g.release(release)
		}
		r.g.propose(props, r.h.now().UnixNano())
		r.g.read(reads)
		r.g.indexed = append(r.g.indexed, confirmed...)
		msgs := r.g.process()
		if orphans := r.rounds.lead(r.g.roundTerm(), r.g.cs.Voters); len(orphans) > 0 {
			// Confirmed the way a follower's are, or failed if no leader is known.
			r.g.read(orphans)
			msgs = append(msgs, r.g.process()...)
		}
		// Before the messages go out: a follower acknowledges a write once it
		// applied it, and the commit index it learned here must then be one that
		// reads started here after that wait for.
		r.commit.Store(r.g.rn.BasicStatus().Commit)
		r.applied.Store(r.g.applied)
		if len(msgs) > 0 {
			r.h.transport.Send(r.g.id, msgs)
		}
		r.publish()
	}
}

func (r *runner) steps(msgs []raftpb.Message) {
	now := r.h.now().UnixNano()
	for _, m := range msgs {
		r.g.step(m, now)
	}
}

// publish makes the group's leader and emptiness visible to other goroutines.
func (r *runner) publish() {
	r.empty.Store(r.g.empty())
	r.readsNow.Store(r.g.readsNow())
	r.term.Store(r.g.term)
	if old := r.lead.Swap(r.g.lead); old != r.g.lead {
		r.changeMu.Lock()
		close(r.changed)
		r.changed = make(chan struct{})
		r.changeMu.Unlock()
		r.publishStatus()
		if r.h.onChange != nil {
			r.h.onChange(r.g.id, r.g.lead, r.g.term)
		}
	}
}

func (r *runner) publishStatus() {
	g := r.g
	st := g.rn.Status()
	s := &Status{Group: g.id, Role: roleName(st.RaftState), Term: st.Term, Leader: st.Lead,
		Commit: st.Commit, Applied: g.applied, Held: g.held, Learner: g.learner,
		MembershipChanges: g.confChanges, ReadRounds: g.readSeq + r.rounds.rounds()}
	for id, pr := range st.Progress {
		if id != g.self {
			s.Followers = append(s.Followers, FollowerStatus{ID: id, Match: pr.Match, Active: pr.RecentActive, Learner: pr.IsLearner})
		}
	}
	slices.SortFunc(s.Followers, func(a, b FollowerStatus) int { return int(a.ID) - int(b.ID) })
	r.status.Store(s)
}

func roleName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	default:
		return "follower"
	}
}

func (r *runner) shutdown() {
	r.mu.Lock()
	r.stopped = true
	props, reads := r.props, append(r.reads, r.confirmed...)
	r.props, r.reads, r.confirmed = nil, nil, nil
	r.mu.Unlock()
	for _, p := range props {
		p.finish(nil, 0, ErrStopped)
	}
	for _, rd := range append(reads, r.rounds.lead(0, nil)...) {
		rd.finish(ErrStopped)
	}
	r.g.stop(ErrStopped)
}
