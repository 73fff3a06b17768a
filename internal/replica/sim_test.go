package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// logSM is a state machine that records every command it applied, in order; its
// snapshot is that record.
type logSM struct{ applied []string }

func (s *logSM) Apply(_ time.Time, _ uint64, cmd []byte) []byte {
	s.applied = append(s.applied, string(cmd))
	return []byte(fmt.Sprintf("applied #%d", len(s.applied)))
}

func (s *logSM) Snapshot() ([]byte, error) { return json.Marshal(s.applied) }

func (s *logSM) Restore(data []byte) error {
	s.applied = nil
	return json.Unmarshal(data, &s.applied)
}

// simMsg is a message in flight in the simulated network.
type simMsg struct {
	due int
	m   raftpb.Message
}

// sim runs the cores of one group on n nodes in lockstep over a simulated network
// that delays, reorders, drops and partitions, all decided by one seeded random
// source. (Raft's own election jitter comes from the library's random source, so a
// seed replays the network's schedule, not every election.)
type sim struct {
	t      *testing.T
	rng    *rand.Rand
	step   int
	voters []uint64
	tuning Tuning
	nodes  map[uint64]*group
	sms    map[uint64]*logSM
	down   map[uint64]bool
	cut    map[[2]uint64]bool
	flight []simMsg
	drop   float64
}

func newSim(t *testing.T, seed uint64, n int) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		nodes: map[uint64]*group{}, sms: map[uint64]*logSM{}, down: map[uint64]bool{}, cut: map[[2]uint64]bool{},
		tuning: Tuning{ElectionTicks: 10, SnapshotEntries: 50, KeepEntries: 10, TransferTicks: 10}}
	for i := 1; i <= n; i++ {
		s.voters = append(s.voters, uint64(i))
	}
	for _, id := range s.voters {
		s.boot(id)
	}
	for _, g := range s.nodes {
		g.release("new cluster")
	}
	return s
}

// boot starts (or restarts, with its memory gone) node id.
func (s *sim) boot(id uint64) {
	sm := &logSM{}
	g, err := newGroup(GroupSpec{ID: 0, Voters: s.voters, Preferred: 1, SM: sm}, id, s.tuning, slog.New(slog.DiscardHandler))
	if err != nil {
		s.t.Fatal(err)
	}
	// As a host does, start the sequence numbers where no earlier run's reach.
	g.seq = uint64(s.step) << 32
	s.nodes[id], s.sms[id] = g, sm
	delete(s.down, id)
}

// run advances the simulation by steps; every fifth step is a tick.
func (s *sim) run(steps int) {
	for range steps {
		s.step++
		if s.step%5 == 0 {
			for _, id := range s.voters {
				if !s.down[id] {
					s.nodes[id].tick()
				}
			}
		}
		// Deliver what is due, in a random order.
		var due, later []simMsg
		for _, fm := range s.flight {
			if fm.due <= s.step {
				due = append(due, fm)
			} else {
				later = append(later, fm)
			}
		}
		s.flight = later
		s.rng.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
		for _, fm := range due {
			ok := !s.down[fm.m.To] && !s.cut[[2]uint64{fm.m.From, fm.m.To}]
			if ok {
				s.nodes[fm.m.To].step(fm.m, int64(s.step))
			}
			if fm.m.Type == raftpb.MsgSnap {
				s.reportSnapshot(fm.m, ok)
			}
		}
		for _, id := range s.voters {
			if s.down[id] {
				continue
			}
			for _, m := range s.nodes[id].process() {
				if s.rng.Float64() < s.drop {
					if m.Type == raftpb.MsgSnap {
						s.reportSnapshot(m, false)
					}
					continue
				}
				s.flight = append(s.flight, simMsg{due: s.step + 1 + s.rng.IntN(3), m: m})
			}
		}
	}
}

// reportSnapshot tells the sender of a snapshot whether it arrived, as a transport
// must.
func (s *sim) reportSnapshot(m raftpb.Message, ok bool) {
	if s.down[m.From] {
		return
	}
	status := raft.SnapshotFinish
	if !ok {
		status = raft.SnapshotFailure
	}
	s.nodes[m.From].rn.ReportSnapshot(m.To, status)
}

func (s *sim) leader() *group {
	for _, id := range s.voters {
		if g := s.nodes[id]; !s.down[id] && g.state == raft.StateLeader {
			return g
		}
	}
	return nil
}

// leaderBesides runs the simulation until old, cut off, no longer passes for the
// leader, and returns the one that does (nil when none does).
func (s *sim) leaderBesides(old *group) *group {
	nl := s.leader()
	for nl == old {
		s.run(50)
		nl = s.leader()
	}
	return nl
}

func (s *sim) partition(id uint64) {
	for _, o := range s.voters {
		if o != id {
			s.cut[[2]uint64{id, o}], s.cut[[2]uint64{o, id}] = true, true
		}
	}
}

func (s *sim) heal() { clear(s.cut) }

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// simSeeds is how many seeds each simulation runs: 20, 4 with -short, or
// $DHT_SIM_SEEDS for a longer hunt (DHT_SIM_SEEDS=500 go test -run TestSim
// ./internal/replica).
func simSeeds() uint64 {
	if n, err := strconv.Atoi(os.Getenv("DHT_SIM_SEEDS")); err == nil && n > 0 {
		return uint64(n)
	}
	if testing.Short() {
		return 4
	}
	return 20
}

// faults is the simulations' schedule of faults over their rounds: in every 15, the
// leader crashes (and comes back with nothing) in the fifth, and is cut off from the
// others (then healed) in the tenth.
func (s *sim) faults(round int) {
	switch round % 15 {
	case 5:
		if g := s.leader(); g != nil {
			s.down[g.self] = true
			s.run(60)
			s.boot(g.self)
		}
	case 10:
		if g := s.leader(); g != nil {
			s.partition(g.self)
			s.run(80)
			s.heal()
		}
	}
}

// TestSimNoAcknowledgedWriteLost runs seeded schedules of proposals while leaders
// crash (losing their memory), are cut off, and messages are dropped and reordered.
// Every replica must end with the same applied commands, every acknowledged command
// must be among them exactly once, and no command may be applied that was not
// proposed.
func TestSimNoAcknowledgedWriteLost(t *testing.T) {
	for seed := range simSeeds() {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			s := newSim(t, seed, 3)
			s.drop = 0.05
			var acked, proposed []string
			var inflight []*Proposal
			var cmds []string
			n := 0
			for round := range 60 {
				s.run(20)
				if g := s.leader(); g != nil {
					var batch []*Proposal
					for range 1 + s.rng.IntN(4) {
						n++
						cmd := fmt.Sprintf("cmd-%d", n)
						p := newProposal([]byte(cmd), nil)
						batch = append(batch, p)
						inflight, cmds = append(inflight, p), append(cmds, cmd)
						proposed = append(proposed, cmd)
					}
					g.propose(batch, int64(s.step))
				}
				s.faults(round)
			}
			s.drop = 0
			s.heal()
			s.run(400)
			for i, p := range inflight {
				if closed(p.done) && p.err == nil {
					acked = append(acked, cmds[i])
				}
			}
			ref := s.sms[s.voters[0]].applied
			for _, id := range s.voters[1:] {
				if got := s.sms[id].applied; !slices.Equal(got, ref) {
					for _, id := range s.voters {
						g := s.nodes[id]
						t.Logf("node %d: state %v lead %d term %d applied %d held %v catchup %d conf %v status %v", id, g.state, g.lead, g.term, g.applied, g.held, g.catchup, g.cs.String(), g.rn.Status())
					}
					t.Fatalf("node %d applied %d commands, node 1 applied %d; they differ:\n%v\n%v", id, len(got), len(ref), got, ref)
				}
			}
			seen := map[string]int{}
			for _, c := range ref {
				seen[c]++
			}
			for c, k := range seen {
				if k > 1 {
					t.Errorf("%s applied %d times", c, k)
				}
				if !slices.Contains(proposed, c) {
					t.Errorf("%s applied but never proposed", c)
				}
			}
			for _, c := range acked {
				if seen[c] != 1 {
					t.Errorf("acknowledged %s is not in the applied log", c)
				}
			}
			if len(acked) == 0 {
				t.Fatalf("no proposal was acknowledged in 60 rounds")
			}
			t.Logf("seed %d: %d proposed, %d acknowledged, %d applied", seed, len(proposed), len(acked), len(ref))
		})
	}
}

// TestSimReadIndex checks that a read completes only after the leader confirmed its
// lead, and that a leader cut off from the others never completes one.
func TestSimReadIndex(t *testing.T) {
	s := newSim(t, 7, 3)
	s.run(200)
	g := s.leader()
	if g == nil {
		t.Fatal("no leader after 200 steps")
	}
	p := newProposal([]byte("x"), nil)
	g.propose([]*Proposal{p}, 1)
	s.run(20)
	if !closed(p.done) || p.err != nil {
		t.Fatalf("proposal not applied: done %v err %v", closed(p.done), p.err)
	}
	r := newRead(nil)
	g.read([]*Read{r})
	s.run(20)
	if !closed(r.done) || r.err != nil {
		t.Fatalf("read on a healthy leader did not complete: err %v", r.err)
	}
	if r.index < p.index {
		t.Fatalf("read index %d is before the applied write's %d", r.index, p.index)
	}

	// Cut the leader off: its reads must not complete, and a new leader takes over.
	old := g
	s.partition(old.self)
	stale := newRead(nil)
	old.read([]*Read{stale})
	s.run(300)
	select {
	case <-stale.done:
		if stale.err == nil {
			t.Fatal("a leader cut off from its group completed a read")
		}
	default:
	}
	nl := s.leaderBesides(old)
	if nl == nil {
		t.Fatal("no new leader on the majority side")
	}
	s.heal()
	s.run(200)
	for _, id := range s.voters {
		if !slices.Contains(s.sms[id].applied, "x") {
			t.Fatalf("node %d lacks the acknowledged write: %v", id, s.sms[id].applied)
		}
	}
}

// TestSimHeldReplicaDoesNotVote checks that a restarted replica that lost its log does
// not vote before it caught up: with the leader down and the restarted replica not yet
// caught up, the third member cannot be elected.
func TestSimHeldReplicaDoesNotVote(t *testing.T) {
	s := newSim(t, 3, 3)
	s.run(200)
	g := s.leader()
	if g == nil {
		t.Fatal("no leader")
	}
	// A follower restarts and is cut off from the leader before it catches up.
	var f uint64
	for _, id := range s.voters {
		if id != g.self {
			f = id
			break
		}
	}
	s.down[f] = true
	s.run(10)
	s.boot(f)
	s.cut[[2]uint64{g.self, f}], s.cut[[2]uint64{f, g.self}] = true, true
	s.down[g.self] = true
	s.run(600)
	if l := s.leader(); l != nil {
		t.Fatalf("node %d was elected with the votes of a replica that lost its log", l.self)
	}
	if !s.nodes[f].held {
		t.Fatal("the restarted replica is not held")
	}
}

// TestSimAckTermFollowsTheTerm checks the term in which replicas answer read rounds'
// pings: the leader's on every member; a restarted replica that lost its log answers
// none; and once a cut-off leader is replaced, the members that elected the new one
// answer only in its term, so the old leader can confirm no read.
func TestSimAckTermFollowsTheTerm(t *testing.T) {
	s := newSim(t, 5, 3)
	s.run(200)
	old := s.leader()
	if old == nil {
		t.Fatal("no leader")
	}
	for _, id := range s.voters {
		if got := s.nodes[id].ackTerm.Load(); got != old.term {
			t.Fatalf("node %d answers pings of term %d, want the leader's %d", id, got, old.term)
		}
	}
	s.partition(old.self)
	s.run(300)
	nl := s.leaderBesides(old)
	if nl == nil || nl.term <= old.term {
		t.Fatalf("no new leader on the majority side (%v)", nl)
	}
	for _, id := range s.voters {
		if id == old.self {
			continue
		}
		if got := s.nodes[id].ackTerm.Load(); got != nl.term {
			t.Fatalf("node %d answers pings of term %d, want the new leader's %d only", id, got, nl.term)
		}
	}
	s.heal()
	var f uint64
	for _, id := range s.voters {
		if id != nl.self {
			f = id
		}
	}
	s.down[f] = true
	s.boot(f)
	if got := s.nodes[f].ackTerm.Load(); got != 0 {
		t.Fatalf("a replica restarted without its log answers pings of term %d", got)
	}
}

// TestSimLostReadRequestIsSentAgain drops a follower's read request on its way to
// the leader: the follower asks again, and the read completes.
func TestSimLostReadRequestIsSentAgain(t *testing.T) {
	s := newSim(t, 11, 3)
	s.run(200)
	g := s.leader()
	if g == nil {
		t.Fatal("no leader")
	}
	var f *group
	for _, id := range s.voters {
		if id != g.self {
			f = s.nodes[id]
			break
		}
	}
	r := newRead(nil)
	f.read([]*Read{r})
	// The request is in the follower's next messages: cut it off while they go.
	s.cut[[2]uint64{f.self, g.self}] = true
	s.run(6)
	delete(s.cut, [2]uint64{f.self, g.self})
	s.run(5)
	if closed(r.done) {
		t.Fatal("the read completed although its request was dropped")
	}
	s.run(40)
	if !closed(r.done) || r.err != nil {
		t.Fatalf("the read did not complete after its request was sent again: done %v err %v", closed(r.done), r.err)
	}
}

// TestSimProposeThrough has followers send proposals through the leader while
// messages are dropped, leaders crash and are cut off. Every replica ends with the
// same commands, all of them proposed; a command may be applied twice (sent again
// to a new leader), but every proposal that completed without an error answered
// with the result of applying its own command, and none failed as lost.
func TestSimProposeThrough(t *testing.T) {
	for seed := range simSeeds() {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			s := newSim(t, seed, 3)
			s.drop = 0.05
			var inflight []*Proposal
			var cmds []string
			n := 0
			for round := range 60 {
				s.run(20)
				var followers []*group
				for _, id := range s.voters {
					if g := s.nodes[id]; !s.down[id] && g.state != raft.StateLeader && g.lead != 0 {
						followers = append(followers, g)
					}
				}
				if len(followers) > 0 {
					f := followers[s.rng.IntN(len(followers))]
					var batch []*Proposal
					for range 1 + s.rng.IntN(4) {
						n++
						cmd := fmt.Sprintf("cmd-%d", n)
						p := newProposal([]byte(cmd), nil)
						p.through = true
						batch = append(batch, p)
						inflight, cmds = append(inflight, p), append(cmds, cmd)
					}
					f.propose(batch, int64(s.step))
				}
				s.faults(round)
			}
			s.drop = 0
			s.heal()
			s.run(400)
			ref := s.sms[s.voters[0]].applied
			for _, id := range s.voters[1:] {
				if got := s.sms[id].applied; !slices.Equal(got, ref) {
					t.Fatalf("node %d applied %d commands, node 1 applied %d; they differ:\n%v\n%v", id, len(got), len(ref), got, ref)
				}
			}
			for _, c := range ref {
				if !slices.Contains(cmds, c) {
					t.Errorf("%s applied but never proposed", c)
				}
			}
			acked := 0
			for i, p := range inflight {
				if !closed(p.done) {
					continue // its proposer crashed
				}
				if p.err != nil {
					var nl *NotLeaderError
					if !errors.Is(p.err, ErrUnconfirmed) && !errors.As(p.err, &nl) {
						t.Errorf("%s failed with %v", cmds[i], p.err)
					}
					continue
				}
				acked++
				k, err := strconv.Atoi(strings.TrimPrefix(string(p.result), "applied #"))
				if err != nil || k < 1 || k > len(ref) || ref[k-1] != cmds[i] {
					t.Errorf("%s answered %q, which is not its own apply", cmds[i], p.result)
				}
			}
			if acked == 0 {
				t.Fatal("no proposal sent through the leader completed in 60 rounds")
			}
			t.Logf("seed %d: %d sent, %d acknowledged, %d applied", seed, len(cmds), acked, len(ref))
		})
	}
}
