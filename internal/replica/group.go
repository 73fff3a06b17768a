package replica

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// bootstrapIndex is the log index every replica of a new group starts at: an empty
// snapshot carrying the group's voters.
const bootstrapIndex = 1

// LogStore holds one group's Raft log, hard state and latest snapshot: what Raft
// reads (raft.Storage) and what the driver writes to it. raft.MemoryStorage is one,
// kept in memory; a durable one writes to disk before its methods return.
type LogStore interface {
	raft.Storage
	// Append adds entries to the log, replacing any it already has from the first
	// one's index on.
	Append(entries []raftpb.Entry) error
	// SetHardState records the term, vote and commit index.
	SetHardState(st raftpb.HardState) error
	// ApplySnapshot replaces the log with a snapshot received from the leader.
	ApplySnapshot(snap raftpb.Snapshot) error
	// CreateSnapshot records a snapshot of the state at index i.
	CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (raftpb.Snapshot, error)
	// Compact drops the log before index i.
	Compact(i uint64) error
}

// GroupSpec describes one group a node is a member of.
type GroupSpec struct {
	// ID is the group's number (the slot range it replicates).
	ID int
	// Voters are the Raft ids of the group's members, this node among them.
	Voters []uint64
	// Preferred is the member that should lead the group whenever it is caught up.
	Preferred uint64
	// SM is the state the group replicates.
	SM StateMachine
	// Log holds the group's Raft log; nil means a new one in memory.
	Log LogStore
}

// Tuning are the knobs of a group's consensus.
type Tuning struct {
	// ElectionTicks is the election timeout in ticks (randomized up to twice that by
	// Raft); a leader heartbeats every tick.
	ElectionTicks int
	// SnapshotEntries is how many applied entries make a new snapshot, after which
	// the log before it (less KeepEntries) is dropped.
	SnapshotEntries uint64
	// SnapshotBytes, if not 0, also makes a snapshot once the entries applied since
	// the last one hold that many bytes, which bounds the log on disk.
	SnapshotBytes int
	// KeepEntries is how many entries before a snapshot stay in the log, so that a
	// follower a little behind catches up from the log rather than a snapshot.
	KeepEntries uint64
	// TransferTicks is how often, in ticks, a leader that is not the group's preferred
	// leader checks whether it can hand the lead back.
	TransferTicks int
}

// DefaultTuning is the tuning of a node: with a 100 ms tick, an election timeout of
// 1 to 2 s.
func DefaultTuning() Tuning {
	return Tuning{ElectionTicks: 10, SnapshotEntries: 10000, SnapshotBytes: 64 << 20, KeepEntries: 2000, TransferTicks: 10}
}

// campaignRetryTicks is how often, in ticks, the preferred leader of a new group
// that has no leader yet stands again (see standFirst).
const campaignRetryTicks = 2

// readRetryTicks is how many ticks a read request may go unanswered before it is sent
// again.
const readRetryTicks = 3

// group is the consensus driver of one Raft group on one node. It is deterministic:
// it never reads a clock (the caller passes the time), starts no goroutine and does
// no I/O; what it has to send comes back from process. It is not safe for concurrent
// use.
type group struct {
	id        int
	self      uint64
	preferred uint64
	tuning    Tuning
	rn        *raft.RawNode
	storage   LogStore
	sm        StateMachine
	cs        raftpb.ConfState
	log       *slog.Logger

	seq     uint64
	pending map[uint64]*Proposal // proposed and not yet applied, by seq
	// logTime is the log clock: the time of the last applied entry; proposeTime the
	// time stamped on the last proposal.
	logTime, proposeTime int64
	appliedTerm          uint64
	applied, snapIndex   uint64
	// sinceSnap is the bytes of the entries applied since the last snapshot.
	sinceSnap int

	readSeq  uint64             // read-index requests made: the last one's number
	issued   map[uint64][]*Read // read requests sent to Raft, by request context
	issuedAt int                // the tick the request in flight was sent at
	queued   []*Read            // reads waiting for the read request in flight to finish
	indexed  []*Read            // confirmed, waiting for the apply to reach their index

	lead  uint64
	state raft.StateType
	// term and vote are those of the hard state last handed to the log store.
	term, vote uint64
	// ackTerm is the term in which this replica answers read rounds' pings (see
	// readRounds), 0 when it answers none; read by other goroutines. It follows term
	// before any message of a newer term leaves (see store and publishAckTerm).
	ackTerm atomic.Uint64
	ticks   int
	// synced holds the appends the log store made durable, with the messages that
	// waited for them; process takes them.
	synced syncedQueue

	// held is set while this replica may have forgotten what it acknowledged (a
	// restarted node whose log was in memory): it neither votes nor campaigns until
	// it has caught up with the leader's commit index at the time it first heard
	// from it (catchup), or until every member is known to be empty (a new cluster).
	held    bool
	catchup uint64
	hasLead bool // some leader was ever known
	// campaignedAt is the tick standFirst last stood at.
	campaignedAt int
	released     bool // held was cleared
	// kept is set for a replica recovered from disk holding more than a new one.
	kept bool
	// broken is set once the log store failed: the replica takes no further part.
	broken error
	// extra are messages of the driver's own, sent with Raft's.
	extra []raftpb.Message
	// resendThrough is set when the lead moved: the proposals sent to the old
	// leader are sent to the new one (see sendThroughAgain).
	resendThrough bool
	// amnesiac holds, on a leader, the voters found to have lost their log: each is
	// replaced (see replaceAmnesiacs).
	amnesiac map[uint64]bool
	// confSince is the tick a membership change was proposed at, 0 once it is
	// applied: Raft takes one at a time. (Raft turns one proposed while another is
	// under way into an empty entry, silently, so the mark also lapses after a
	// while, or when the lead moves.)
	confSince int
	// learner is set while this replica is a learner of its group (it came back
	// without its log and was added afresh): it votes once it is a voter again.
	learner bool
	// confChanges counts the membership changes this replica applied.
	confChanges int
	// learnedAt holds the index at which each learner was added, as applied here.
	learnedAt map[uint64]uint64
}

func newGroup(spec GroupSpec, self uint64, tuning Tuning, log *slog.Logger) (*group, error) {
	if !slices.Contains(spec.Voters, self) {
		return nil, fmt.Errorf("replica: group %d: node %d is not among voters %v", spec.ID, self, spec.Voters)
	}
	storage := spec.Log
	if storage == nil {
		storage = raft.NewMemoryStorage()
	}
	g := &group{
		id: spec.ID, self: self, preferred: spec.Preferred, tuning: tuning,
		storage: storage, sm: spec.SM, cs: raftpb.ConfState{Voters: slices.Clone(spec.Voters)},
		log:     log.With("group", spec.ID),
		pending: map[uint64]*Proposal{}, issued: map[uint64][]*Read{},
		applied: bootstrapIndex, snapIndex: bootstrapIndex, appliedTerm: 1, term: 1,
		held: true,
	}
	snap, err := storage.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("replica: group %d: %w", spec.ID, err)
	}
	if snap.Metadata.Index < bootstrapIndex {
		if err := g.bootstrap(); err != nil {
			return nil, err
		}
	} else if err := g.recover(snap); err != nil {
		return nil, err
	}
	g.rn, err = raft.NewRawNode(&raft.Config{
		ID:                        self,
		ElectionTick:              tuning.ElectionTicks,
		HeartbeatTick:             1,
		Storage:                   storage,
		Applied:                   g.applied,
		MaxSizePerMsg:             maxEntryBytes,
		MaxCommittedSizePerReady:  64 << 20,
		MaxUncommittedEntriesSize: 256 << 20,
		MaxInflightMsgs:           2,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		DisableProposalForwarding: true,
		AsyncStorageWrites:        true,
		Logger:                    raftLogger{g.log},
	})
	if err != nil {
		return nil, fmt.Errorf("replica: group %d: %w", spec.ID, err)
	}
	g.publishAckTerm()
	return g, nil
}

// publishAckTerm sets the term in which this replica answers read rounds' pings: its
// own, unless it is held (it may have forgotten what it acknowledged, votes among
// it) or its log store failed.
func (g *group) publishAckTerm() {
	t := g.term
	if g.held || g.broken != nil {
		t = 0
	}
	g.ackTerm.Store(t)
}

// bootstrap starts a new replica: an empty snapshot holding the voters.
func (g *group) bootstrap() error {
	if err := g.storage.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{
		Index: bootstrapIndex, Term: 1, ConfState: g.cs,
	}, Data: encodeSnapshot(0, nil)}); err != nil {
		return fmt.Errorf("replica: group %d: bootstrap: %w", g.id, err)
	}
	if err := g.storage.SetHardState(raftpb.HardState{Term: 1, Commit: bootstrapIndex}); err != nil {
		return fmt.Errorf("replica: group %d: bootstrap: %w", g.id, err)
	}
	return nil
}

// recover starts a replica from what its durable log store kept: the state machine
// from the snapshot, and Raft goes on from its hard state and log (it hands the
// committed entries past the snapshot back to be applied again). A replica that kept
// what it acknowledged need not be held.
func (g *group) recover(snap raftpb.Snapshot) error {
	hs, _, err := g.storage.InitialState()
	if err != nil {
		return fmt.Errorf("replica: group %d: %w", g.id, err)
	}
	if raft.IsEmptyHardState(hs) {
		// The crash came between the bootstrap snapshot and the first hard state.
		hs = raftpb.HardState{Term: 1, Commit: snap.Metadata.Index}
		if err := g.storage.SetHardState(hs); err != nil {
			return fmt.Errorf("replica: group %d: %w", g.id, err)
		}
	}
	now, state, err := decodeSnapshot(snap.Data)
	if err != nil {
		return fmt.Errorf("replica: group %d: %w", g.id, err)
	}
	if snap.Metadata.Index > bootstrapIndex {
		if err := g.sm.Restore(state); err != nil {
			return fmt.Errorf("replica: group %d: restoring the snapshot at %d: %w", g.id, snap.Metadata.Index, err)
		}
	}
	last, err := g.storage.LastIndex()
	if err != nil {
		return fmt.Errorf("replica: group %d: %w", g.id, err)
	}
	g.applied, g.snapIndex = snap.Metadata.Index, snap.Metadata.Index
	g.appliedTerm, g.term, g.vote, g.logTime = snap.Metadata.Term, hs.Term, hs.Vote, now
	g.setConf(snap.Metadata.ConfState)
	g.kept = hs.Term > 1 || last > bootstrapIndex
	g.held = !g.kept
	if g.kept {
		g.released = true
		g.log.Info("replica recovered from disk; it takes part in elections at once",
			"snapshot", snap.Metadata.Index, "last", last, "commit", hs.Commit, "term", hs.Term)
	}
	return nil
}

// tick advances the group's clock by one tick.
func (g *group) tick() {
	if g.broken != nil {
		return
	}
	g.ticks++
	if g.tuning.ElectionTicks > 0 && g.ticks%g.tuning.ElectionTicks == 0 {
		g.expireThrough()
	}
	if len(g.issued) > 0 && g.ticks-g.issuedAt > readRetryTicks {
		// A read request forwarded to the leader, or its answer, was lost: Raft does
		// not send it again, so ask again for the same reads.
		for seq, reads := range g.issued {
			g.queued = append(reads, g.queued...)
			delete(g.issued, seq)
		}
	}
	if g.held {
		// A held replica must not start an election.
		return
	}
	g.rn.Tick()
	if g.ticks-g.campaignedAt >= campaignRetryTicks {
		g.standFirst()
	}
	if g.state == raft.StateLeader && g.preferred != g.self && g.tuning.TransferTicks > 0 &&
		g.ticks%g.tuning.TransferTicks == 0 {
		g.transferToPreferred()
	}
}

// transferToPreferred hands the lead to the preferred leader once it has the whole
// log and is being replicated to (a member that stopped answering drops out of the
// replicate state, so the lead is not handed to a dead node: proposals pause while a
// transfer is under way).
func (g *group) transferToPreferred() {
	st := g.rn.Status()
	if st.LeadTransferee != 0 {
		return
	}
	if g.amnesiac[g.preferred] || slices.Contains(g.cs.Learners, g.preferred) {
		return
	}
	last, _ := g.storage.LastIndex()
	if pr, ok := st.Progress[g.preferred]; ok && pr.State == tracker.StateReplicate && pr.Match == last {
		g.log.Info("handing the lead back to the preferred leader", "to", g.preferred, "term", g.term)
		g.rn.TransferLeader(g.preferred)
	}
}

// step takes a message from another member; now is the time it arrived (the clock
// a leader stamps a follower's proposals with, as its own).
func (g *group) step(m raftpb.Message, now int64) {
	if g.broken != nil {
		return
	}
	if m.Type == raftpb.MsgProp && g.state == raft.StateLeader {
		g.proposeTime = max(now, g.proposeTime, g.logTime)
		for _, e := range m.Entries {
			restamp(e.Data, g.proposeTime)
		}
	}
	if g.held {
		switch m.Type {
		case raftpb.MsgVote, raftpb.MsgPreVote, raftpb.MsgTimeoutNow:
			return
		case raftpb.MsgHeartbeat:
			// The leader may believe this replica holds what it acknowledged before it
			// lost its log: tell it, with the rejection a follower missing entries
			// sends, marked so that the leader replaces this replica.
			if last, _ := g.storage.LastIndex(); m.Commit > last {
				if g.catchup == 0 {
					g.catchup = m.Commit
				}
				lastTerm, _ := g.storage.Term(last)
				g.extra = append(g.extra, raftpb.Message{Type: raftpb.MsgAppResp, To: m.From, From: g.self,
					Term: m.Term, Index: m.Commit, Reject: true, RejectHint: last, LogTerm: lastTerm,
					Context: []byte(lostLog)})
			}
		case raftpb.MsgApp:
			if g.catchup == 0 {
				g.catchup = max(m.Commit, bootstrapIndex)
			}
		case raftpb.MsgSnap:
			if g.catchup == 0 {
				g.catchup = max(m.Snapshot.Metadata.Index, bootstrapIndex)
			}
		}
	}
	switch m.Type {
	case raftpb.MsgHeartbeat:
		// The leader may believe this replica holds more than it does (it restarted
		// with an empty log); never commit past what is here.
		if last, _ := g.storage.LastIndex(); m.Commit > last {
			m.Commit = last
		}
	case raftpb.MsgAppResp:
		if m.Reject && g.state == raft.StateLeader {
			g.checkAmnesia(m)
		}
	}
	if err := g.rn.Step(m); err != nil {
		g.log.Debug("raft message not taken", "type", m.Type.String(), "from", m.From, "err", err)
		return
	}
	if w, ok := g.sm.(ThroughWatcher); ok && m.Type == raftpb.MsgProp {
		// Taken, so appended: only a leader takes a proposal.
		g.watchThrough(w, m.Entries)
	}
}

// watchThrough tells w of the commands of ents, entries a follower sent.
func (g *group) watchThrough(w ThroughWatcher, ents []raftpb.Entry) {
	for _, e := range ents {
		r, err := readEntry(e.Data)
		if err != nil {
			continue
		}
		for {
			_, _, cmd, ok, err := r.next()
			if err != nil || !ok {
				break
			}
			w.AppendedThrough(cmd)
		}
	}
}

// lostLog marks the rejection a held replica (one that restarted without its log)
// answers a leader's heartbeat with.
const lostLog = "dht:lost-log"

// checkAmnesia looks at a follower's rejection of entries: a voter that says it lost
// its log (it restarted without it, see step) while the leader counts it as holding
// entries is replaced (see replaceAmnesiacs): Raft's safety assumes no voter forgets
// what it acknowledged, and Raft never sends a follower entries it acknowledged.
func (g *group) checkAmnesia(m raftpb.Message) {
	if string(m.Context) != lostLog {
		return
	}
	st := g.rn.Status()
	pr, ok := st.Progress[m.From]
	if !ok || pr.IsLearner || m.RejectHint >= pr.Match {
		return
	}
	if g.amnesiac == nil {
		g.amnesiac = map[uint64]bool{}
	}
	if !g.amnesiac[m.From] {
		g.log.Warn("a member lost its log (it restarted without it); replacing it: removed from the group and added afresh, as a learner, then as a voter once caught up",
			"member", m.From, "acknowledged", pr.Match, "has", m.RejectHint)
	}
	if st.LeadTransferee == m.From {
		// It cannot take the lead it is being handed, and proposals wait while a
		// transfer is under way: call it off (a transfer to this node does).
		g.rn.TransferLeader(g.self)
	}
	g.amnesiac[m.From] = true
}

// replaceAmnesiacs proposes, one at a time, the membership changes that replace a
// voter that lost its log: it is removed from the group, then added back as a
// learner, which gives it a fresh place in the leader's books (nothing acknowledged),
// so that it is caught up from the start (with a snapshot where the log was
// compacted) and counts towards no commit and no election until promoteLearners
// makes it a voter again. (One change of each kind at a time, so that no change
// needs Raft's joint consensus.)
func (g *group) replaceAmnesiacs() {
	for id := range g.amnesiac {
		switch {
		case g.state != raft.StateLeader || slices.Contains(g.cs.Learners, id):
			delete(g.amnesiac, id)
		case g.confUnderWay():
			return
		case slices.Contains(g.cs.Voters, id):
			g.proposeConf(raftpb.ConfChangeSingle{Type: raftpb.ConfChangeRemoveNode, NodeID: id},
				"replacing a member that lost its log: removing it", id)
			return
		default:
			g.proposeConf(raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddLearnerNode, NodeID: id},
				"replacing a member that lost its log: adding it back as a learner", id)
			return
		}
	}
}

// promoteLearners makes a learner a voter again once it holds the log up to where it
// was added (everything committed, where that is not known) and takes appends as they
// come, so that the group's quorum never waits for a member that has a snapshot to
// fetch first, even under a steady load.
func (g *group) promoteLearners() {
	if g.state != raft.StateLeader || g.confUnderWay() || len(g.cs.Learners) == 0 {
		return
	}
	st := g.rn.Status()
	for _, id := range g.cs.Learners {
		need, known := g.learnedAt[id]
		if !known {
			need = st.Commit
		}
		if pr, ok := st.Progress[id]; ok && pr.Match >= need && (pr.State == tracker.StateReplicate || pr.Match >= st.Commit) {
			g.proposeConf(raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddNode, NodeID: id},
				"a replaced member caught up: making it a voter again", id)
			return
		}
	}
}

// proposeConf proposes a membership change of one member.
func (g *group) proposeConf(cc raftpb.ConfChangeSingle, why string, member uint64) {
	if err := g.rn.ProposeConfChange(raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{cc}}); err != nil {
		g.log.Warn("proposing a membership change", "member", member, "err", err)
		return
	}
	g.confSince = max(g.ticks, 1)
	g.log.Info(why, "member", member, "term", g.term)
}

// confUnderWay reports whether a membership change this leader proposed may still be
// under way.
func (g *group) confUnderWay() bool {
	return g.confSince != 0 && g.ticks-g.confSince <= 2*g.tuning.ElectionTicks
}

// applyConf applies a committed membership change.
func (g *group) applyConf(e raftpb.Entry) {
	var cc raftpb.ConfChangeI
	if e.Type == raftpb.EntryConfChange {
		var c1 raftpb.ConfChange
		if err := c1.Unmarshal(e.Data); err != nil {
			g.log.Error("skipping a malformed membership change", "index", e.Index, "err", err)
			return
		}
		cc = c1
	} else {
		var c2 raftpb.ConfChangeV2
		if err := c2.Unmarshal(e.Data); err != nil {
			g.log.Error("skipping a malformed membership change", "index", e.Index, "err", err)
			return
		}
		cc = c2
	}
	g.confSince = 0
	g.confChanges++
	for _, c := range cc.AsV2().Changes {
		switch {
		case c.Type != raftpb.ConfChangeAddLearnerNode:
			delete(g.learnedAt, c.NodeID)
		case g.learnedAt == nil:
			g.learnedAt = map[uint64]uint64{c.NodeID: e.Index}
		default:
			g.learnedAt[c.NodeID] = e.Index
		}
	}
	cs := g.rn.ApplyConfChange(cc)
	g.setConf(*cs)
	g.log.Info("membership changed", "index", e.Index, "voters", cs.Voters, "learners", cs.Learners)
}

// setConf takes the group's membership as of the applied index, and follows this
// replica's own part in it.
func (g *group) setConf(cs raftpb.ConfState) {
	g.cs = cs
	learner := slices.Contains(cs.Learners, g.self)
	switch {
	case learner && !g.learner:
		g.log.Info("this replica lost its log and was added back to its group afresh, as a learner: it catches up, then votes again")
	case !learner && g.learner:
		g.log.Info("this replica caught up and is a voter of its group again")
	}
	g.learner = learner
}

// release lets a held replica vote and campaign.
func (g *group) release(why string) {
	if !g.held {
		return
	}
	g.held, g.released = false, true
	g.publishAckTerm()
	g.log.Info("replica takes part in elections", "why", why, "applied", g.applied)
	g.standFirst()
}

// standFirst has the preferred leader of a new group stand for election, at once
// and then every campaignRetryTicks until the group has a leader: its members are
// released one by one as the nodes come up, and a held one ignores the vote, so a
// first campaign may find no majority. Standing again soon, long before any other
// member's election timeout, spares the group an election won elsewhere and the
// hand-over back that would follow.
func (g *group) standFirst() {
	if g.preferred != g.self || g.held || !g.empty() || g.state == raft.StateLeader {
		return
	}
	g.campaignedAt = g.ticks
	if err := g.rn.Campaign(); err != nil {
		g.log.Debug("campaign", "err", err)
	}
}

// empty reports whether the replica holds nothing a leader ever committed: a new
// replica that has not heard from any leader.
func (g *group) empty() bool { return !g.hasLead && !g.kept && g.applied <= bootstrapIndex }

// readsNow reports whether reads of the group's state here are linearizable as they
// are, with no read index: this replica leads, is the group's only member, and has
// applied an entry of its own term (and so everything committed before it). No
// other replica can commit anything, and every write acknowledged is applied.
func (g *group) readsNow() bool {
	return g.state == raft.StateLeader && g.broken == nil && !g.held && g.appliedTerm == g.term &&
		len(g.cs.Voters) == 1 && g.cs.Voters[0] == g.self && len(g.cs.Learners) == 0 &&
		len(g.cs.VotersOutgoing) == 0 && len(g.cs.LearnersNext) == 0
}

// roundTerm returns the term in which this replica may confirm reads with read
// rounds (see readRounds), 0 when it may not: it leads, has applied an entry of its
// term (and so everything committed before it), is not held, its log store works, and
// it is one of several voters, with no joint membership change under way.
func (g *group) roundTerm() uint64 {
	if g.state != raft.StateLeader || g.broken != nil || g.held || g.appliedTerm != g.term ||
		len(g.cs.Voters) < 2 || !slices.Contains(g.cs.Voters, g.self) || len(g.cs.VotersOutgoing) > 0 {
		return 0
	}
	return g.term
}

// propose puts props into the log, as few entries as fit, stamped with now. A
// replica that does not lead fails them at once.
func (g *group) propose(props []*Proposal, now int64) {
	if len(props) == 0 {
		return
	}
	if g.broken != nil {
		for _, p := range props {
			p.finish(nil, 0, fmt.Errorf("replica: group %d: log store: %w", g.id, g.broken))
		}
		return
	}
	if g.state != raft.StateLeader {
		through := props[:0:0]
		for _, p := range props {
			if p.through {
				through = append(through, p)
				continue
			}
			p.finish(nil, 0, &NotLeaderError{Group: g.id, Leader: g.lead})
		}
		g.proposeThrough(through, now)
		return
	}
	g.proposeTime = max(now, g.proposeTime, g.logTime)
	for len(props) > 0 {
		n, size := 0, 0
		for n < len(props) && (n == 0 || size+len(props[n].cmd) <= maxEntryBytes) {
			size += len(props[n].cmd)
			n++
		}
		batch := props[:n]
		props = props[n:]
		for _, p := range batch {
			g.seq++
			p.seq, p.term = g.seq, g.term
		}
		data := encodeEntry(make([]byte, 0, size+16+12*len(batch)), g.self, g.proposeTime, batch)
		if err := g.rn.Propose(data); err != nil {
			if errors.Is(err, raft.ErrProposalDropped) {
				err = ErrDropped
			}
			for _, p := range batch {
				p.finish(nil, 0, fmt.Errorf("replica: group %d: %w", g.id, err))
			}
			continue
		}
		for _, p := range batch {
			g.pending[p.seq] = p
		}
	}
}

// throughTimeouts is how long, in election timeouts, a follower waits to see applied
// a proposal it sent to the leader.
const throughTimeouts = 10

// proposeThrough sends props, on a follower, to the leader as Raft forwards a
// proposal (a MsgProp, which the leader appends as its own), as few entries as fit.
// They complete when this replica applies them; ErrUnconfirmed fails them once
// they expire.
func (g *group) proposeThrough(props []*Proposal, now int64) {
	if len(props) == 0 {
		return
	}
	if g.lead == 0 || g.lead == g.self || g.held || g.learner {
		for _, p := range props {
			p.finish(nil, 0, &NotLeaderError{Group: g.id})
		}
		return
	}
	g.proposeTime = max(now, g.proposeTime, g.logTime)
	for _, p := range props {
		g.seq++
		p.seq, p.term = g.seq, g.term
		g.pending[p.seq] = p
	}
	g.sendThrough(props)
}

// sendThrough sends props to the leader, as few entries as fit, each a MsgProp, and
// sets when they expire.
func (g *group) sendThrough(props []*Proposal) {
	for _, p := range props {
		p.expires = g.ticks + throughTimeouts*g.tuning.ElectionTicks
	}
	for _, data := range throughEntries(g.self, g.proposeTime, props) {
		g.extra = append(g.extra, raftpb.Message{Type: raftpb.MsgProp, From: g.self, To: g.lead,
			Entries: []raftpb.Entry{{Data: data}}})
	}
}

// sendThroughAgain sends the proposals sent to a leader that lost the lead, and not
// yet applied here, to the new one, or proposes them where this replica now leads:
// the old leader may have dropped them (Raft drops proposals while it hands the
// lead over), and waiting for them to expire would hold their callers for as long.
// A proposal may then be applied twice; the first completes it, the second is a
// repeat that its command must bear (Host.ProposeThrough). It reports whether it
// proposed anything here (which makes Raft ready again).
func (g *group) sendThroughAgain() (proposed bool) {
	if g.lead == 0 || g.held || g.learner {
		return false
	}
	var again []*Proposal
	for _, p := range g.pending {
		if p.expires != 0 {
			again = append(again, p)
		}
	}
	if len(again) == 0 {
		return false
	}
	slices.SortFunc(again, func(a, b *Proposal) int { return cmp.Compare(a.seq, b.seq) })
	g.log.Debug("sending proposals to the new leader", "leader", g.lead, "proposals", len(again))
	if g.lead != g.self {
		g.sendThrough(again)
		return false
	}
	for _, data := range throughEntries(g.self, g.proposeTime, again) {
		if err := g.rn.Propose(data); err != nil {
			// Left to expire, as they would have at the old leader.
			g.log.Debug("proposing again as the new leader", "err", err)
		}
	}
	return true
}

// throughEntries encodes props as few entries as fit.
func throughEntries(self uint64, now int64, props []*Proposal) [][]byte {
	var ents [][]byte
	for len(props) > 0 {
		n, size := 0, 0
		for n < len(props) && (n == 0 || size+len(props[n].cmd) <= maxEntryBytes) {
			size += len(props[n].cmd)
			n++
		}
		ents = append(ents, encodeEntry(make([]byte, 0, size+16+12*n), self, now, props[:n]))
		props = props[n:]
	}
	return ents
}

// expireThrough fails the proposals sent to the leader that were not applied in
// time.
func (g *group) expireThrough() {
	for seq, p := range g.pending {
		if p.expires != 0 && g.ticks >= p.expires {
			delete(g.pending, seq)
			p.finish(nil, 0, ErrUnconfirmed)
		}
	}
}

// read asks Raft for one read index that serves every read in reads. While one
// request is in flight, reads queue for the next, so that under load one round of
// heartbeats confirms many reads.
func (g *group) read(reads []*Read) {
	if len(reads) == 0 {
		return
	}
	if g.broken != nil {
		for _, r := range reads {
			r.finish(fmt.Errorf("replica: group %d: log store: %w", g.id, g.broken))
		}
		return
	}
	if g.lead == 0 || g.held {
		for _, r := range reads {
			r.finish(&NotLeaderError{Group: g.id, Leader: g.lead})
		}
		return
	}
	if len(g.issued) > 0 {
		g.queued = append(g.queued, reads...)
		return
	}
	g.readSeq++
	g.issued[g.readSeq] = reads
	g.issuedAt = g.ticks
	// The leader tells requests apart by their context, followers' among them: it
	// names this node too.
	rctx := binary.LittleEndian.AppendUint64(make([]byte, 0, 16), g.readSeq)
	g.rn.ReadIndex(binary.LittleEndian.AppendUint64(rctx, g.self))
}

// process handles everything Raft has ready: it hands new entries and hard state to
// the log store, applies what is committed, completes proposals and reads, and
// returns the messages to send. Raft's storage writes are asynchronous: the group
// goes on while the store makes its appends durable, and the messages that say
// what they hold (a follower's acknowledgement, a vote, a leader counting its own
// entries) wait for that (see takeSynced). A leader's appends go to the followers at
// once, so that they write them while it does (Raft thesis 10.2.1).
func (g *group) process() []raftpb.Message {
	out := g.takeSynced()
	for g.broken == nil && g.rn.HasReady() {
		rd := g.rn.Ready()
		if rd.SoftState != nil {
			g.softState(*rd.SoftState)
		}
		for _, m := range rd.Messages {
			switch m.To {
			case raft.LocalAppendThread:
				out = g.store(m, out)
			case raft.LocalApplyThread:
				// Raft hands over only entries on this replica's disk already.
				g.apply(m.Entries)
				out = g.deliver(m.Responses, out)
			default:
				out = append(out, m)
			}
		}
		for _, rs := range rd.ReadStates {
			if len(rs.RequestCtx) != 16 {
				continue
			}
			seq := binary.LittleEndian.Uint64(rs.RequestCtx)
			for _, r := range g.issued[seq] {
				r.index = rs.Index
				g.indexed = append(g.indexed, r)
			}
			delete(g.issued, seq)
		}
	}
	if len(g.issued) == 0 && len(g.queued) > 0 {
		reads := g.queued
		g.queued = nil
		g.read(reads)
		out = append(out, g.process()...)
		return out
	}
	if g.resendThrough {
		g.resendThrough = false
		if g.sendThroughAgain() {
			out = append(out, g.process()...)
			return out
		}
	}
	if len(g.extra) > 0 {
		out = append(out, g.extra...)
		g.extra = nil
	}
	g.releaseReads()
	if g.held && g.catchup != 0 && g.applied >= g.catchup {
		g.release(fmt.Sprintf("caught up with the leader's commit index %d", g.catchup))
	}
	if len(g.amnesiac) > 0 {
		g.replaceAmnesiacs()
	}
	g.promoteLearners()
	g.maybeSnapshot()
	return out
}

// store writes what a MsgStorageAppend carries to the log store: a snapshot from
// the leader (restoring the state machine from it), entries, then the hard state.
// Its responses go out once the store has made all that durable; a store that keeps
// nothing on disk delivers them at once. It returns out with what is to be sent now.
func (g *group) store(m raftpb.Message, out []raftpb.Message) []raftpb.Message {
	if m.Snapshot != nil {
		g.restore(*m.Snapshot)
	}
	if err := g.storage.Append(m.Entries); err != nil {
		g.log.Error("appending to the raft log", "err", err)
	}
	// Only new entries and a new term or vote need an fsync before the messages that
	// say so go out; a commit index alone need not (a replica that forgets one
	// learns it again from the leader).
	lazy := len(m.Entries) == 0 && m.Snapshot == nil
	if hs := (raftpb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}); !raft.IsEmptyHardState(hs) {
		lazy = lazy && hs.Term == g.term && hs.Vote == g.vote
		g.term, g.vote = hs.Term, hs.Vote
		// Before the vote or acknowledgement of the new term goes out (with the
		// responses below), so that no ping of an older term is answered after it.
		g.publishAckTerm()
		if err := g.storage.SetHardState(hs); err != nil {
			g.log.Error("storing raft state", "err", err)
		}
	}
	sy, durable := g.storage.(syncer)
	if !durable {
		return g.deliver(m.Responses, out)
	}
	resps := m.Responses
	sy.StartSync(lazy, func(err error) { g.synced.done(g.self, resps, err) })
	return out
}

// takeSynced delivers the responses of the appends the log store made durable since
// it was last called, in the order the appends were made. A store that failed takes
// the replica out of its group.
func (g *group) takeSynced() []raftpb.Message {
	var out []raftpb.Message
	for _, s := range g.synced.take() {
		if g.broken != nil {
			return nil
		}
		if s.err != nil {
			g.fail(s.err)
			return nil
		}
		out = g.deliver(s.resps, out)
	}
	return out
}

// deliver steps the responses addressed to this replica into Raft and returns out
// with the others, to be sent.
func (g *group) deliver(resps []raftpb.Message, out []raftpb.Message) []raftpb.Message {
	for _, m := range resps {
		if m.To != g.self {
			out = append(out, m)
			continue
		}
		if err := g.rn.Step(m); err != nil {
			g.log.Debug("local raft message not taken", "type", m.Type.String(), "err", err)
		}
	}
	return out
}

// syncedQueue passes the appends the log store made durable from its writer to the
// group. done never blocks: it sends the responses addressed to other members at once
// (a follower's acknowledgement need not wait for the group's goroutine), and leaves
// the others to the group's goroutine, which it wakes.
type syncedQueue struct {
	mu    sync.Mutex
	items []syncedAppend
	// failed is set once the store failed: nothing it acknowledges after that goes
	// out, since what it failed to write would be counted in.
	failed bool
	// wake, if set, is called after every done; send, if set, sends messages to
	// other members (else the group's goroutine sends them).
	wake func()
	send func([]raftpb.Message)
}

// syncedAppend is one append the log store finished: the messages to this replica
// (and to the others, without send) that waited for it, or the store's error.
type syncedAppend struct {
	resps []raftpb.Message
	err   error
}

func (q *syncedQueue) done(self uint64, resps []raftpb.Message, err error) {
	q.mu.Lock()
	if err != nil {
		q.failed = true
	}
	if q.send != nil && !q.failed && slices.ContainsFunc(resps, func(m raftpb.Message) bool { return m.To != self }) {
		var remote, local []raftpb.Message
		for _, m := range resps {
			if m.To == self {
				local = append(local, m)
			} else {
				remote = append(remote, m)
			}
		}
		q.send(remote)
		resps = local
	}
	q.items = append(q.items, syncedAppend{resps: resps, err: err})
	q.mu.Unlock()
	if q.wake != nil {
		q.wake()
	}
}

func (q *syncedQueue) take() []syncedAppend {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// softState follows a change of leader or role.
func (g *group) softState(ss raft.SoftState) {
	if ss.Lead != g.lead || ss.RaftState != g.state {
		if ss.Lead != 0 {
			g.hasLead = true
		}
		if ss.Lead != g.lead {
			// Reads sent to the old leader will not be answered.
			for seq, reads := range g.issued {
				for _, r := range reads {
					r.finish(&NotLeaderError{Group: g.id, Leader: ss.Lead})
				}
				delete(g.issued, seq)
			}
			for _, r := range g.queued {
				r.finish(&NotLeaderError{Group: g.id, Leader: ss.Lead})
			}
			g.queued = nil
			g.resendThrough = true
		}
		g.lead, g.state = ss.Lead, ss.RaftState
		g.confSince = 0
	}
}

// restore replaces the state with a snapshot received from the leader.
func (g *group) restore(snap raftpb.Snapshot) {
	if err := g.storage.ApplySnapshot(snap); err != nil {
		g.log.Error("storing a snapshot", "index", snap.Metadata.Index, "err", err)
		return
	}
	now, state, err := decodeSnapshot(snap.Data)
	if err == nil {
		err = g.sm.Restore(state)
	}
	if err != nil {
		g.log.Error("restoring a snapshot", "index", snap.Metadata.Index, "err", err)
		return
	}
	g.log.Info("restored a snapshot from the leader", "index", snap.Metadata.Index, "bytes", len(snap.Data))
	g.applied, g.snapIndex, g.sinceSnap = snap.Metadata.Index, snap.Metadata.Index, 0
	g.setConf(snap.Metadata.ConfState)
	g.logTime = max(g.logTime, now)
	g.appliedTerm = max(g.appliedTerm, snap.Metadata.Term)
	g.failLost()
	// What was sent through the leader may be in the snapshot, whose entries this
	// replica does not apply one by one: it cannot tell.
	for seq, p := range g.pending {
		if p.expires != 0 {
			delete(g.pending, seq)
			p.finish(nil, 0, ErrUnconfirmed)
		}
	}
}

// apply applies committed entries in order and completes this node's proposals.
func (g *group) apply(ents []raftpb.Entry) {
	for _, e := range ents {
		if e.Index <= g.applied {
			continue
		}
		if e.Term > g.appliedTerm {
			g.appliedTerm = e.Term
			g.failLost()
		}
		g.sinceSnap += len(e.Data)
		switch e.Type {
		case raftpb.EntryNormal:
			if len(e.Data) > 0 {
				g.applyBatch(e)
			}
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			g.applyConf(e)
		}
		g.applied = e.Index
	}
}

func (g *group) applyBatch(e raftpb.Entry) {
	r, err := readEntry(e.Data)
	if err != nil {
		g.log.Error("skipping a malformed log entry", "index", e.Index, "err", err)
		return
	}
	g.logTime = max(g.logTime, r.now)
	now := time.Unix(0, g.logTime)
	for {
		proposer, seq, cmd, ok, err := r.next()
		if err != nil {
			g.log.Error("skipping the rest of a malformed log entry", "index", e.Index, "err", err)
			return
		}
		if !ok {
			return
		}
		res := g.sm.Apply(now, e.Index, cmd)
		if proposer != g.self {
			continue
		}
		// Sequence numbers start from the clock with each run of the node, and the
		// term tells this run's proposals from an earlier run's all the same; one
		// sent through the leader (expires set) may be appended in a later term than
		// it was sent in, and is told by its number alone.
		if p, ok := g.pending[seq]; ok && (p.term == e.Term || p.expires != 0) {
			delete(g.pending, seq)
			p.finish(res, e.Index, nil)
		}
	}
}

// failLost fails the pending proposals of terms before the last applied one: the log
// moved past them without them, so they will never be applied.
func (g *group) failLost() {
	for seq, p := range g.pending {
		if p.term < g.appliedTerm && p.expires == 0 {
			delete(g.pending, seq)
			p.finish(nil, 0, ErrLost)
		}
	}
}

// releaseReads completes the reads whose index has been applied.
func (g *group) releaseReads() {
	n := 0
	for _, r := range g.indexed {
		if r.index <= g.applied {
			r.finish(nil)
			continue
		}
		g.indexed[n] = r
		n++
	}
	clear(g.indexed[n:])
	g.indexed = g.indexed[:n]
}

// maybeSnapshot takes a snapshot and compacts the log once enough entries were
// applied since the last one.
func (g *group) maybeSnapshot() {
	byCount := g.tuning.SnapshotEntries > 0 && g.applied-g.snapIndex >= g.tuning.SnapshotEntries
	byBytes := g.tuning.SnapshotBytes > 0 && g.sinceSnap >= g.tuning.SnapshotBytes
	asked := false
	if w, ok := g.storage.(interface{ snapshotWanted() bool }); ok {
		asked = w.snapshotWanted() && g.applied > g.snapIndex
	}
	if !byCount && !byBytes && !asked {
		return
	}
	if !g.snapshot() {
		return
	}
	if g.applied > g.tuning.KeepEntries {
		if first, _ := g.storage.FirstIndex(); g.applied-g.tuning.KeepEntries > first {
			if err := g.storage.Compact(g.applied - g.tuning.KeepEntries); err != nil {
				g.log.Error("compacting the log", "err", err)
			}
		}
	}
}

// snapshot stores a snapshot of the state at the applied index.
func (g *group) snapshot() bool {
	state, err := g.sm.Snapshot()
	if err != nil {
		g.log.Error("taking a snapshot", "err", err)
		return false
	}
	if _, err := g.storage.CreateSnapshot(g.applied, &g.cs, encodeSnapshot(g.logTime, state)); err != nil {
		g.log.Error("storing a snapshot", "err", err)
		return false
	}
	g.snapIndex, g.sinceSnap = g.applied, 0
	return true
}

// syncer is a LogStore that makes what was appended durable in a separate step.
type syncer interface {
	// StartSync starts making everything appended as durable as the store makes it,
	// and calls done (without blocking, maybe on another goroutine) once it is, in
	// the order of the calls. A lazy start (only the commit index moved) needs no
	// fsync of its own.
	StartSync(lazy bool, done func(error))
}

// fail takes the replica out of the group after its log store failed: what it has
// not written it cannot acknowledge, so it stops answering, and the others go on
// without it.
func (g *group) fail(err error) {
	if g.broken == nil {
		g.log.Error("the replica's log store failed; it stops taking part in its group", "err", err)
	}
	g.broken = err
	g.publishAckTerm()
	g.stop(fmt.Errorf("replica: group %d: log store: %w", g.id, err))
}

// stop fails everything still waiting.
func (g *group) stop(err error) {
	for seq, p := range g.pending {
		delete(g.pending, seq)
		p.finish(nil, 0, err)
	}
	for seq, reads := range g.issued {
		for _, r := range reads {
			r.finish(err)
		}
		delete(g.issued, seq)
	}
	for _, r := range append(g.indexed, g.queued...) {
		r.finish(err)
	}
	g.indexed, g.queued = nil, nil
}

// raftLogger passes the raft library's logs to slog: its chatter at debug level.
type raftLogger struct{ log *slog.Logger }

func (l raftLogger) Debug(v ...any)                 { l.log.Debug(fmt.Sprint(v...)) }
func (l raftLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l raftLogger) Info(v ...any)                  { l.log.Debug(fmt.Sprint(v...)) }
func (l raftLogger) Infof(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l raftLogger) Warning(v ...any)               { l.log.Warn(fmt.Sprint(v...)) }
func (l raftLogger) Warningf(format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...))
}
func (l raftLogger) Error(v ...any)                 { l.log.Error(fmt.Sprint(v...)) }
func (l raftLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l raftLogger) Fatal(v ...any)                 { l.log.Error(fmt.Sprint(v...)); panic(fmt.Sprint(v...)) }
func (l raftLogger) Fatalf(format string, v ...any) {
	l.Fatal(fmt.Sprintf(format, v...))
}
func (l raftLogger) Panic(v ...any) { l.Fatal(v...) }
func (l raftLogger) Panicf(format string, v ...any) {
	l.Fatal(fmt.Sprintf(format, v...))
}
