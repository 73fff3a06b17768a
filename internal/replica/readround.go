package replica

import (
	"slices"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

// Read rounds confirm a leader's reads without Raft's goroutine: the read index of
// the Raft thesis (section 6.4), carried out where the reads arrive. A leader that has
// applied an entry of its own term takes its commit index as the reads' index, asks
// the other voters whether they are still in its term, and lets the reads go ahead
// once a majority (itself among them) said yes and it has applied that index.
//
// It is safe because a voter answers a ping only while its own term is the ping's,
// and it takes a newer term before it votes in it (see group.ackTerm): a majority
// still in the leader's term after the reads arrived means no other leader had been
// elected by then, so nothing was committed that this leader does not know of.
//
// It costs one message to each other voter and one back, handled by the nodes' event
// loops on arrival; Raft's own read index (MsgReadIndex) takes a round of heartbeats
// through each member's Raft goroutine, and stays for what read rounds do not cover:
// a follower's reads, and a leader's until it has applied an entry of its term.
const (
	// msgReadPing asks a voter whether it is in the sender's term (Term), for read
	// round Index.
	msgReadPing raftpb.MessageType = 1000 + iota
	// msgReadAck answers a msgReadPing: the sender is in that term.
	msgReadAck
)

// widenTicks is how long, in ticks, a read round waits for the voters it asked first
// before it asks the others too.
const widenTicks = 2

// askAllEvery is how often a read round asks every other voter, not only the quickest.
const askAllEvery = 8

// isRoundMsg reports whether m belongs to read rounds (and never goes to Raft).
func isRoundMsg(m raftpb.Message) bool { return m.Type == msgReadPing || m.Type == msgReadAck }

// readRounds holds one group's read rounds on this replica. One round is in flight at
// a time; reads that arrive meanwhile wait for the next, so that under load one round
// confirms many reads. It does no I/O: its methods return the pings to send. Safe for
// concurrent use.
type readRounds struct {
	self uint64

	mu sync.Mutex
	// term is the term in which this replica leads and may confirm reads (0: none),
	// voters the group's voters in it.
	term   uint64
	voters []uint64
	// peers are the other voters, those that answered the last round first.
	peers []uint64
	// seq numbers the rounds: the last one started.
	seq    uint64
	flight *readRound
	queued []*Read
}

// readRound is one round in flight.
type readRound struct {
	seq, term uint64
	// index is the leader's commit index when the round started: its reads go ahead
	// once it is applied.
	index uint64
	// tick is when the round started, on the group's clock.
	tick  int
	acked []uint64
	reads []*Read
	// widened is set once every other voter was asked, not only the quickest.
	widened bool
}

// lead sets the term in which this replica leads and may confirm reads (0 when it
// may not), and the group's voters, of whom there must be more than one (a voter
// alone has none to ask; see Host.ReadsNow). When they change, the reads waiting
// are returned, to be confirmed another way: a round started in another term or
// membership cannot confirm them.
func (rr *readRounds) lead(term uint64, voters []uint64) (orphans []*Read) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if term == rr.term && slices.Equal(voters, rr.voters) {
		return nil
	}
	rr.term = term
	rr.voters = slices.Clone(voters)
	rr.peers = slices.DeleteFunc(slices.Clone(voters), func(v uint64) bool { return v == rr.self })
	if rr.flight != nil {
		orphans = rr.flight.reads
		rr.flight = nil
	}
	orphans = append(orphans, rr.queued...)
	rr.queued = nil
	return orphans
}

// add takes a read that has just arrived, if this replica may confirm it (ok); commit
// is the leader's commit index now, tick the group's clock. It returns the pings to
// send when the read starts a round.
func (rr *readRounds) add(rd *Read, commit uint64, tick int) (pings []raftpb.Message, ok bool) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.term == 0 {
		return nil, false
	}
	if rr.flight != nil {
		rr.queued = append(rr.queued, rd)
		return nil, true
	}
	return rr.start([]*Read{rd}, commit, tick), true
}

// start starts a round for reads: it asks as few voters as make a majority with this
// replica, those that answered the last round first (the others are asked too if
// they do not answer in time; see expire). Every askAllEvery'th round asks them all,
// so that a voter that became the quicker one is found. The caller holds mu.
func (rr *readRounds) start(reads []*Read, commit uint64, tick int) []raftpb.Message {
	rr.seq++
	rr.flight = &readRound{seq: rr.seq, term: rr.term, index: commit, tick: tick, reads: reads,
		acked: make([]uint64, 0, len(rr.voters))}
	if rr.seq%askAllEvery == 0 {
		rr.flight.widened = true
		return rr.ping(rr.peers)
	}
	return rr.ping(rr.peers[:min(rr.needed(), len(rr.peers))])
}

// needed is how many other voters make a majority with this replica.
func (rr *readRounds) needed() int {
	n := len(rr.voters)/2 + 1
	if slices.Contains(rr.voters, rr.self) {
		n--
	}
	return n
}

// ping returns pings of the round in flight to voters. The caller holds mu.
func (rr *readRounds) ping(voters []uint64) []raftpb.Message {
	pings := make([]raftpb.Message, 0, len(voters))
	for _, v := range voters {
		pings = append(pings, raftpb.Message{Type: msgReadPing, From: rr.self, To: v, Term: rr.flight.term, Index: rr.flight.seq})
	}
	return pings
}

// quorate reports whether the round in flight has a majority of the voters, this
// replica among them. The caller holds mu.
func (rr *readRounds) quorate() bool {
	n := len(rr.flight.acked)
	if slices.Contains(rr.voters, rr.self) {
		n++
	}
	return n > len(rr.voters)/2
}

// ack takes a voter's answer to a ping. When it completes the round in flight, the
// round's reads are returned with the index they may be served at once it is
// applied, and the round for the reads queued meanwhile starts (commit is the
// leader's commit index now, tick the group's clock): its pings are returned too.
func (rr *readRounds) ack(m raftpb.Message, commit uint64, tick int) (done []*Read, index uint64, pings []raftpb.Message) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	f := rr.flight
	if f == nil || m.Index != f.seq || m.Term != f.term || m.From == rr.self ||
		!slices.Contains(rr.voters, m.From) || slices.Contains(f.acked, m.From) {
		return nil, 0, nil
	}
	f.acked = append(f.acked, m.From)
	if !rr.quorate() {
		return nil, 0, nil
	}
	rr.flight = nil
	// Ask the quickest first next time.
	rr.peers = append(f.acked, slices.DeleteFunc(rr.peers, func(v uint64) bool { return slices.Contains(f.acked, v) })...)
	if len(rr.queued) > 0 {
		reads := rr.queued
		rr.queued = nil
		pings = rr.start(reads, commit, tick)
	}
	return f.reads, f.index, pings
}

// expire asks every other voter, for the round in flight, once it has waited two
// ticks for the quickest; and it starts the round again, with the reads queued since,
// once it has waited retryTicks without a majority (a ping or an answer was lost;
// Raft resends nothing of read rounds). It returns the pings to send.
func (rr *readRounds) expire(tick, retryTicks int, commit uint64) []raftpb.Message {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	f := rr.flight
	if f == nil || tick-f.tick < widenTicks {
		return nil
	}
	if tick-f.tick <= retryTicks {
		if f.widened {
			return nil
		}
		f.widened = true
		return rr.ping(rr.peers[min(rr.needed(), len(rr.peers)):])
	}
	reads := append(f.reads, rr.queued...)
	rr.queued = nil
	return rr.start(reads, commit, tick)
}

// rounds returns how many rounds were started.
func (rr *readRounds) rounds() uint64 {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.seq
}
