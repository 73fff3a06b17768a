package replica

import (
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// answer is the answer to ping.
func answer(ping raftpb.Message) raftpb.Message {
	return raftpb.Message{Type: msgReadAck, From: ping.To, To: ping.From, Term: ping.Term, Index: ping.Index}
}

// to lists the voters pings go to.
func to(pings []raftpb.Message) []uint64 {
	var ids []uint64
	for _, p := range pings {
		ids = append(ids, p.To)
	}
	return ids
}

func TestReadRoundsConfirmWithAMajority(t *testing.T) {
	rr := readRounds{self: 1}
	if _, ok := rr.add(newRead(nil), 10, 0); ok {
		t.Fatal("a replica that does not lead took a read")
	}
	rr.lead(4, []uint64{1, 2, 3, 4, 5})
	first := newRead(nil)
	pings, ok := rr.add(first, 10, 0)
	if !ok || !slices.Equal(to(pings), []uint64{2, 3}) {
		t.Fatalf("the first read: ok %v, pings %v; want pings to 2 voters, a majority with this one", ok, pings)
	}
	for _, p := range pings {
		if p.Type != msgReadPing || p.From != 1 || p.Term != 4 || p.Index != 1 {
			t.Fatalf("ping %+v", p)
		}
	}
	// Reads that arrive while a round is in flight wait for the next one: the round
	// started before they arrived, so it cannot confirm them.
	second := newRead(nil)
	if more, ok := rr.add(second, 12, 0); !ok || len(more) != 0 {
		t.Fatalf("a read during a round: ok %v, pings %v", ok, more)
	}
	if done, _, _ := rr.ack(answer(pings[1]), 12, 0); done != nil {
		t.Fatal("2 of 5 confirmed a round")
	}
	// Repeated, stale, foreign and wrong-term answers do not count.
	for _, m := range []raftpb.Message{
		answer(pings[1]),
		{Type: msgReadAck, From: 2, To: 1, Term: 4, Index: 0},
		{Type: msgReadAck, From: 9, To: 1, Term: 4, Index: 1},
		{Type: msgReadAck, From: 1, To: 1, Term: 4, Index: 1},
		{Type: msgReadAck, From: 2, To: 1, Term: 5, Index: 1},
	} {
		if done, _, _ := rr.ack(m, 12, 0); done != nil {
			t.Fatalf("answer %+v confirmed a round", m)
		}
	}
	// An answer from a voter not asked counts like any other.
	done, index, next := rr.ack(raftpb.Message{Type: msgReadAck, From: 5, To: 1, Term: 4, Index: 1}, 12, 0)
	if !slices.Equal(done, []*Read{first}) || index != 10 {
		t.Fatalf("3 of 5: done %v at %d, want the first read at 10", done, index)
	}
	// The next round asks the voters that answered first.
	if !slices.Equal(to(next), []uint64{3, 5}) || next[0].Index != 2 {
		t.Fatalf("the next round's pings: %v, want round 2 to voters 3 and 5", next)
	}
	if done, _, _ := rr.ack(answer(next[0]), 13, 0); done != nil {
		t.Fatal("confirmed with 2 of 5")
	}
	done, index, _ = rr.ack(answer(next[1]), 13, 0)
	if !slices.Equal(done, []*Read{second}) || index != 12 {
		t.Fatalf("the second round: done %v at %d, want the second read at the commit index 12 it started with", done, index)
	}
	if got := rr.rounds(); got != 2 {
		t.Fatalf("%d rounds, want 2", got)
	}
	// Now and then a round asks every voter, and whoever answers first is asked
	// first from then on.
	for round := 3; round <= askAllEvery; round++ {
		pings, _ := rr.add(newRead(nil), 14, 0)
		want := 2
		if round == askAllEvery {
			want = 4
		}
		if len(pings) != want {
			t.Fatalf("round %d asked %v, want %d voters", round, to(pings), want)
		}
		if round < askAllEvery {
			rr.ack(answer(pings[0]), 14, 0)
			rr.ack(answer(pings[1]), 14, 0)
			continue
		}
		rr.ack(raftpb.Message{Type: msgReadAck, From: 4, To: 1, Term: 4, Index: pings[0].Index}, 14, 0)
		rr.ack(raftpb.Message{Type: msgReadAck, From: 2, To: 1, Term: 4, Index: pings[0].Index}, 14, 0)
	}
	if pings, _ := rr.add(newRead(nil), 15, 0); !slices.Equal(to(pings), []uint64{4, 2}) {
		t.Fatalf("after a round that asked all, asked %v, want the two that answered first: 4 and 2", to(pings))
	}
}

func TestReadRoundsLeadChangeHandsTheReadsBack(t *testing.T) {
	rr := readRounds{self: 1}
	rr.lead(3, []uint64{1, 2, 3})
	a, b := newRead(nil), newRead(nil)
	pings, _ := rr.add(a, 5, 0)
	rr.add(b, 5, 0)
	if orphans := rr.lead(3, []uint64{1, 2, 3}); orphans != nil {
		t.Fatalf("nothing changed, yet reads were handed back: %v", orphans)
	}
	orphans := rr.lead(5, []uint64{1, 2, 3})
	if !slices.Equal(orphans, []*Read{a, b}) {
		t.Fatalf("a new term handed back %v, want both reads", orphans)
	}
	// An answer of the old term's round confirms nothing now.
	if done, _, _ := rr.ack(answer(pings[0]), 6, 0); done != nil {
		t.Fatal("an answer to a round of an earlier term confirmed reads")
	}
	c := newRead(nil)
	pings, _ = rr.add(c, 7, 0)
	if orphans := rr.lead(5, []uint64{1, 2, 4}); !slices.Equal(orphans, []*Read{c}) {
		t.Fatalf("a membership change handed back %v, want the read in flight", orphans)
	}
	if done, _, _ := rr.ack(answer(pings[0]), 7, 0); done != nil {
		t.Fatal("an answer to a round of the old membership confirmed reads")
	}
	rr.lead(0, nil)
	if _, ok := rr.add(newRead(nil), 7, 0); ok {
		t.Fatal("a replica that stopped leading took a read")
	}
}

func TestReadRoundsWidenThenStartAgain(t *testing.T) {
	rr := readRounds{self: 2}
	rr.lead(7, []uint64{1, 2, 3})
	a, b := newRead(nil), newRead(nil)
	pings, _ := rr.add(a, 20, 10)
	rr.add(b, 20, 11)
	if !slices.Equal(to(pings), []uint64{1}) {
		t.Fatalf("pings %v, want one to voter 1: with this one, a majority of 3", pings)
	}
	if more := rr.expire(11, readRetryTicks, 21); more != nil {
		t.Fatalf("asked more voters before their time: %v", more)
	}
	// Voter 1 does not answer: the round asks voter 3 too, and then it is the one
	// asked first.
	wide := rr.expire(12, readRetryTicks, 21)
	if !slices.Equal(to(wide), []uint64{3}) || wide[0].Index != pings[0].Index {
		t.Fatalf("widened with %v, want the same round's ping to voter 3", wide)
	}
	if more := rr.expire(13, readRetryTicks, 21); more != nil {
		t.Fatalf("widened twice: %v", more)
	}
	done, index, _ := rr.ack(answer(wide[0]), 21, 13)
	if !slices.Equal(done, []*Read{a}) || index != 20 {
		t.Fatalf("confirmed %v at %d, want the first read at 20", done, index)
	}
	c := newRead(nil)
	pings, _ = rr.add(c, 22, 13)
	if len(pings) != 0 {
		// b started a round when the first one ended.
		t.Fatalf("a read during a round sent %v", pings)
	}
	// No answer at all: the round starts again with a new number, and an answer to
	// the old one confirms nothing.
	again := rr.expire(13+readRetryTicks+1, readRetryTicks, 23)
	if !slices.Equal(to(again), []uint64{3}) {
		t.Fatalf("the round started again with %v, want a ping to voter 3, which answered last", again)
	}
	if done, _, _ := rr.ack(raftpb.Message{Type: msgReadAck, From: 3, To: 2, Term: 7, Index: again[0].Index - 1}, 23, 17); done != nil {
		t.Fatal("an answer to the expired round confirmed reads")
	}
	done, index, _ = rr.ack(answer(again[0]), 23, 17)
	if !slices.Equal(done, []*Read{b, c}) || index != 23 {
		t.Fatalf("the restarted round confirmed %v at %d, want b and c at 23", done, index)
	}
}
