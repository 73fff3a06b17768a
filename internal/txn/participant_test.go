package txn

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

// t0ns is t0 in Unix ns: the transactions of these tests start around then.
var t0ns = t0.UnixNano()

func prep(p *Participant, kv KV, now time.Time, id ID, ops []Op) Reply {
	return p.Apply(kv, now, Command{Verb: Prepare, Route: ops[0].Key, ID: id, Record: ops[0].Key, Ops: ops})
}

// A leader that proposed a holder's COMMIT or ABORT passes over its locks: what it
// proposes next is applied after them. Only the holders it names are passed over.
func TestSettledHoldersPassedOver(t *testing.T) {
	p, kv := NewParticipant(testOptions), memKV{}
	writer, reader, other := ID{TS: t0ns + 1, Node: 1, Seq: 1}, ID{TS: t0ns + 2, Node: 1, Seq: 2}, ID{TS: t0ns + 3, Node: 2, Seq: 1}
	prep(p, kv, t0, writer, puts("g0a", "1"))
	prep(p, kv, t0, reader, reads("g0b"))
	only := func(ids ...ID) func(ID) bool {
		return func(id ID) bool { return slices.Contains(ids, id) }
	}
	for _, tc := range []struct {
		key     string
		write   bool
		settled func(ID) bool
		want    bool
	}{
		{"g0a", false, nil, true},
		{"g0a", false, only(writer), false},
		{"g0a", true, only(reader), true},
		{"g0b", false, nil, false},
		{"g0b", true, nil, true},
		{"g0b", true, only(reader), false},
		{"g0b", true, only(writer), true},
		{"g0c", true, nil, false},
	} {
		if got := p.Blocks([]byte(tc.key), tc.write, tc.settled); got != tc.want {
			t.Errorf("Blocks(%s, write %v) = %v, want %v", tc.key, tc.write, got, tc.want)
		}
	}
	cmd := Command{Verb: Prepare, Route: []byte("g0a"), ID: other, Record: []byte("g0a"), Ops: puts("g0a", "2", "g0b", "2")}
	if r, ok := p.Conflict(t0, cmd, nil); !ok || r.Vote != VoteDie {
		t.Errorf("Conflict with both holders = %+v, %v; want die", r, ok)
	}
	if r, ok := p.Conflict(t0, cmd, only(writer)); !ok || r.Holder != reader {
		t.Errorf("Conflict with the writer settled = %+v, %v; want the reader", r, ok)
	}
	if r, ok := p.Conflict(t0, cmd, only(writer, reader)); ok {
		t.Errorf("Conflict with both settled = %+v", r)
	}
	// The log still refuses what the leader passed over until the holders resolve.
	if r := p.Apply(kv, t0, cmd); r.Vote != VoteDie {
		t.Errorf("prepare applied before the holders resolved: %+v, want die", r)
	}
	p.Apply(kv, t0, Command{Verb: Commit, ID: writer})
	p.Apply(kv, t0, Command{Verb: Abort, ID: reader})
	if r := p.Apply(kv, t0, cmd); r.Vote != VoteYes {
		t.Errorf("prepare applied after the holders resolved: %+v, want yes", r)
	}
}

func TestWaitDieVotes(t *testing.T) {
	p, kv := NewParticipant(testOptions), memKV{}
	older, mid, younger := ID{TS: t0ns + 1, Node: 1, Seq: 1}, ID{TS: t0ns + 2, Node: 1, Seq: 2}, ID{TS: t0ns + 3, Node: 1, Seq: 3}
	if r := prep(p, kv, t0, mid, puts("g0a", "1")); r.Vote != VoteYes {
		t.Fatalf("first prepare: %+v", r)
	}
	if r := prep(p, kv, t0, younger, puts("g0a", "2")); r.Vote != VoteDie || r.Holder != mid {
		t.Errorf("younger meets older: %+v, want die", r)
	}
	if r, ok := p.Conflict(t0, Command{Verb: Prepare, ID: younger, Ops: puts("g0a", "2")}, nil); !ok || r.Vote != VoteDie {
		t.Errorf("Conflict = %+v, %v; want die", r, ok)
	}
	if _, ok := p.Conflict(t0, Command{Verb: Prepare, ID: younger, Ops: puts("g0b", "2")}, nil); ok {
		t.Error("Conflict over a free key")
	}
	if r := prep(p, kv, t0, older, reads("g0a")); r.Vote != VoteWait || r.Holder != mid || r.HolderStuck {
		t.Errorf("older meets younger: %+v, want wait", r)
	}
	if r := prep(p, kv, t0.Add(testOptions.Timeout+1), older, reads("g0a")); !r.HolderStuck {
		t.Errorf("after the timeout the holder is not stuck: %+v", r)
	}
	if !p.Blocks([]byte("g0a"), false, nil) || p.Blocks([]byte("g0b"), true, nil) {
		t.Error("Blocks disagrees with the locks")
	}
	// A repeated prepare gets the same vote and locks nothing more.
	if r := prep(p, kv, t0, mid, puts("g0a", "1")); r.Vote != VoteYes || p.Prepared() != 1 {
		t.Errorf("repeated prepare: %+v, %d prepared", r, p.Prepared())
	}
	p.Apply(kv, t0, Command{Verb: Commit, ID: mid})
	if string(kv["g0a"]) != "1" || p.Blocks([]byte("g0a"), true, nil) {
		t.Errorf("after commit: g0a=%q, locked %v", kv["g0a"], p.Blocks([]byte("g0a"), true, nil))
	}
	// A prepare arriving after its transaction resolved locks nothing.
	if r := prep(p, kv, t0, mid, puts("g0a", "1")); r.Vote != VoteResolved || r.Status != StatusCommitted || p.Prepared() != 0 {
		t.Errorf("late prepare: %+v", r)
	}
	// ... and an abort that overtook its prepare keeps that prepare from locking.
	p.Apply(kv, t0, Command{Verb: Abort, ID: younger})
	if r := prep(p, kv, t0, younger, puts("g0a", "2")); r.Vote != VoteResolved || r.Status != StatusAborted {
		t.Errorf("prepare after its abort: %+v", r)
	}
	// Once Retain has passed, it is forgotten, and refused as too old.
	if r := prep(p, kv, t0.Add(testOptions.Retain+time.Second), younger, puts("g0a", "2")); r.Vote != VoteResolved || len(p.resolved) != 0 {
		t.Errorf("prepare after Retain: %+v, %d remembered", r, len(p.resolved))
	}
}

func TestReadersShare(t *testing.T) {
	p, kv := NewParticipant(testOptions), memKV{"g0a": []byte("v")}
	r1, r2, w := ID{TS: t0ns + 5, Seq: 1}, ID{TS: t0ns + 6, Seq: 2}, ID{TS: t0ns + 7, Seq: 3}
	for _, id := range []ID{r1, r2} {
		if r := prep(p, kv, t0, id, reads("g0a", "g0b")); r.Vote != VoteYes || string(r.Values[0]) != "v" || r.Found[1] {
			t.Fatalf("read %s: %+v", id, r)
		}
	}
	if p.Blocks([]byte("g0a"), false, nil) || !p.Blocks([]byte("g0a"), true, nil) {
		t.Error("a read lock is not a write lock, but is a lock")
	}
	if r := prep(p, kv, t0, w, puts("g0a", "x")); r.Vote != VoteDie {
		t.Errorf("a younger write meets older readers: %+v", r)
	}
	p.Apply(kv, t0, Command{Verb: Abort, ID: r1})
	p.Apply(kv, t0, Command{Verb: Commit, ID: r2})
	if p.Blocks([]byte("g0a"), true, nil) || string(kv["g0a"]) != "v" {
		t.Error("released reads left a lock or wrote")
	}
}

func TestRecords(t *testing.T) {
	p, kv := NewParticipant(testOptions), memKV{}
	a, b := ID{TS: t0ns + 1, Seq: 1}, ID{TS: t0ns + 1, Seq: 2}
	if r := p.Apply(kv, t0, Command{Verb: Decide, ID: a, Commit: true}); r.Status != StatusCommitted {
		t.Errorf("decide commit: %+v", r)
	}
	if r := p.Apply(kv, t0, Command{Verb: Decide, ID: a, Commit: false}); r.Status != StatusCommitted {
		t.Errorf("a committed record was changed: %+v", r)
	}
	if r := p.Apply(kv, t0, Command{Verb: Decide, ID: b, Commit: false}); r.Status != StatusAborted {
		t.Errorf("decide abort: %+v", r)
	}
	// Aborted records go after Retain; committed ones stay until forgotten.
	p.Apply(kv, t0.Add(testOptions.Retain+time.Second), Command{Verb: Forget, ID: ID{TS: t0ns + 9}})
	if _, ok := p.records[b]; ok {
		t.Error("the aborted record outlived Retain")
	}
	if _, ok := p.records[a]; !ok {
		t.Error("the committed record was pruned")
	}
	p.Apply(kv, t0, Command{Verb: Forget, ID: a})
	if len(p.records) != 0 {
		t.Error("Forget left the record")
	}
	// A commit carrying the group's own keys: prepared and committed with the record;
	// asked again, the same answer.
	c := ID{TS: t0ns + 2, Seq: 3}
	kv["g0a"] = []byte("v")
	decide := Command{Verb: Decide, ID: c, Commit: true, Record: []byte("g0a"), Ops: reads("g0a", "g0b")}
	for range 2 {
		if r := p.Apply(kv, t0, decide); r.Status != StatusCommitted || r.Vote != VoteYes || string(r.Values[0]) != "v" || r.Found[1] || p.Blocks([]byte("g0a"), true, nil) {
			t.Errorf("decide with operations: %+v", r)
		}
	}
	// After an abort the answer says so, and nothing else.
	d := ID{TS: t0ns + 2, Seq: 4}
	p.Apply(kv, t0, Command{Verb: Decide, ID: d})
	if r := p.Apply(kv, t0, Command{Verb: Decide, ID: d, Commit: true, Record: []byte("g0a"), Ops: reads("g0a")}); r.Status != StatusAborted || r.Vote != 0 || r.Values != nil {
		t.Errorf("decide after an abort: %+v", r)
	}
	// A transaction started more than Retain ago can neither commit nor lock: what
	// was known of it may be forgotten.
	late := t0.Add(testOptions.Retain + time.Second)
	if r := p.Apply(kv, late, Command{Verb: Decide, ID: ID{TS: t0ns, Seq: 5}, Commit: true}); r.Status != StatusAborted {
		t.Errorf("decide of an old transaction: %+v", r)
	}
	if r := prep(p, kv, late, ID{TS: t0ns, Seq: 6}, puts("g0a", "x")); r.Vote != VoteResolved || p.Blocks([]byte("g0a"), true, nil) {
		t.Errorf("prepare of an old transaction: %+v", r)
	}
}

func TestSnapshotRestore(t *testing.T) {
	p, kv := NewParticipant(testOptions), memKV{"g0c": []byte("c")}
	w, r, done := ID{TS: t0ns + 1, Seq: 1}, ID{TS: t0ns + 2, Seq: 2}, ID{TS: t0ns + 3, Seq: 3}
	prep(p, kv, t0, w, append(puts("g0a", "1"), Op{Kind: OpDel, Key: []byte("g0c")}))
	prep(p, kv, t0, r, reads("g0b"))
	p.Apply(kv, t0, Command{Verb: Abort, ID: done})
	p.Apply(kv, t0, Command{Verb: Decide, ID: done, Commit: false})
	p.Apply(kv, t0, Command{Verb: Decide, Route: []byte("g0r"), ID: w, Commit: true, Parts: [][]byte{[]byte("g1x"), []byte("g2y")}})
	snap := p.AppendSnapshot(nil)

	q := NewParticipant(testOptions)
	if err := q.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q.AppendSnapshot(nil)[:1], snap[:1]) || q.Prepared() != 2 || !q.Blocks([]byte("g0a"), false, nil) || !q.Blocks([]byte("g0b"), true, nil) {
		t.Fatalf("restored: %d prepared, locks %v", q.Prepared(), q.locks)
	}
	if s := q.Stuck(t0.Add(time.Hour)); len(s) != 2 || s[0].ID != w || s[1].ID != r {
		t.Errorf("stuck after restore: %+v", s)
	}
	if u := q.Unfinished(t0.Add(time.Hour)); len(u) != 1 || u[0].ID != w || string(u[0].Record) != "g0r" || fmt.Sprintf("%s", u[0].Parts) != "[g1x g2y]" {
		t.Errorf("unfinished after restore: %+v", u)
	}
	if u := q.Unfinished(t0); len(u) != 0 {
		t.Errorf("unfinished before the timeout: %+v", u)
	}
	if r := prep(q, kv, t0, done, puts("g0z", "1")); r.Vote != VoteResolved {
		t.Errorf("the restored participant forgot an abort: %+v", r)
	}
	if r := q.Apply(kv, t0, Command{Verb: Decide, ID: w, Commit: false}); r.Status != StatusCommitted {
		t.Errorf("the restored record: %+v", r)
	}
	q.Apply(kv, t0, Command{Verb: Commit, ID: w})
	if string(kv["g0a"]) != "1" || kv["g0c"] != nil {
		t.Errorf("commit after restore: %q", kv)
	}
	// A version 2 snapshot: its records know no participants.
	v2 := NewParticipant(testOptions)
	v2.Apply(kv, t0, Command{Verb: Decide, ID: w, Commit: true})
	old := []byte{2, 0, 1}
	old = appendID(old, w)
	old = appendBytes(old, AppendReply(nil, Reply{Status: StatusCommitted}))
	old = append(old, 0)
	if err := v2.Restore(old); err != nil || v2.Apply(kv, t0, Command{Verb: Decide, ID: w}).Status != StatusCommitted {
		t.Errorf("a version 2 snapshot: %v", err)
	}
	if u := v2.Unfinished(t0.Add(time.Hour)); len(u) != 0 {
		t.Errorf("a version 2 record listed as unfinished: %+v", u)
	}
	for _, bad := range [][]byte{nil, {9}, snap[:len(snap)-1], append(snap[:len(snap):len(snap)], 0)} {
		if err := NewParticipant(testOptions).Restore(bad); err == nil {
			t.Errorf("Restore(%q) accepted", bad)
		}
	}
}

func TestCommandRoundTrip(t *testing.T) {
	cmds := []Command{
		{Verb: Prepare, Route: []byte("k"), ID: ID{TS: t0ns + -5, Node: 3, Seq: 9}, Record: []byte("r"),
			Ops: []Op{{Kind: OpPut, Key: []byte("a"), Value: []byte("")}, {Kind: OpDel, Key: []byte("b")}, {Kind: OpPutNX, Key: []byte("c"), Value: []byte("x")}}},
		{Verb: Prepare, Route: []byte("k"), ID: ID{TS: t0ns + 1}, Record: []byte("r"), Ops: reads("a", "b")},
		{Verb: Decide, Route: []byte("k"), ID: ID{TS: t0ns + 1}, Commit: true},
		{Verb: Decide, Route: []byte("k"), ID: ID{TS: t0ns + 1}, Commit: true, Record: []byte("k"), Ops: puts("k", "v"),
			Parts: [][]byte{[]byte("p1"), []byte("p2")}},
		{Verb: Commit, Route: []byte("k"), ID: ID{TS: t0ns + 1}},
		{Verb: Abort, Route: []byte("k"), ID: ID{TS: t0ns + 1}},
		{Verb: Forget, Route: []byte("k"), ID: ID{TS: t0ns + 1}},
	}
	// A DECIDE written before commits named their participants reads as one that
	// names none.
	if c, err := ParseCommand([][]byte{[]byte("DECIDE"), []byte("k"), []byte("1.1.1"), []byte("true"), []byte("k"), []byte("2"), []byte("k"), []byte("v")}); err != nil || c.Parts != nil || len(c.Ops) != 1 {
		t.Errorf("a DECIDE without participants: %+v, %v", c, err)
	}
	for _, c := range cmds {
		got, err := ParseCommand(c.AppendArgs(nil))
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c) {
			t.Errorf("round trip of %+v: %+v, %v", c, got, err)
		}
	}
	for _, bad := range [][]string{
		{}, {"PREPARE", "k"}, {"NOPE", "k", "1.1.1"}, {"COMMIT", "k", "1.1"}, {"COMMIT", "k", "1.1.1", "x"},
		{"PREPARE", "k", "1.1.1", "r"}, {"PREPARE", "k", "1.1.1", "r", "2", "a"}, {"PREPARE", "k", "1.1.1", "r", "9", "a"},
		{"PREPARE", "k", "1.1.1", "r", "1", "a", "4", "b"}, {"DECIDE", "k", "1.1.1", "maybe"},
		{"DECIDE", "k", "1.1.1", "true", "k", "PARTS", "\x05p", "2", "k", "v"}, {"DECIDE", "k", "1.1.1", "true", "k", "PARTS", "", "2", "k", "v"},
		{"DECIDE", "k", "1.1.1", "false", "k", "2", "k", "v"},
	} {
		args := make([][]byte, len(bad))
		for i, a := range bad {
			args[i] = []byte(a)
		}
		if c, err := ParseCommand(args); err == nil {
			t.Errorf("ParseCommand(%q) = %+v, want an error", bad, c)
		}
	}
	r := Reply{Vote: VoteWait, Holder: ID{TS: t0ns + 4, Node: 2, Seq: 7}, HolderRecord: []byte("h"), HolderStuck: true, Status: StatusAborted,
		Existed: 3, Values: [][]byte{[]byte("v"), nil}, Found: []bool{true, false}}
	if got, err := ParseReply(AppendReply(nil, r)); err != nil || fmt.Sprint(got) != fmt.Sprint(r) {
		t.Errorf("reply round trip: %+v, %v", got, err)
	}
}

func FuzzParseCommand(f *testing.F) {
	f.Add([]byte("PREPARE\x00k\x001.1.1\x00r\x002\x00a\x00v"))
	f.Add([]byte("DECIDE\x00k\x001.2.3\x00true"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCommand(bytes.Split(data, []byte{0}))
		if err != nil {
			return
		}
		if _, err := ParseCommand(c.AppendArgs(nil)); err != nil {
			t.Errorf("a parsed command does not parse again: %v", err)
		}
		_, _ = ParseReply(data)
	})
}

// BenchmarkPrepareCommit measures what one group's replica does for its share of a
// cross-group MSET of three keys: apply its prepare, then its commit.
func BenchmarkPrepareCommit(b *testing.B) {
	p, kv := NewParticipant(testOptions), memKV{}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("g0key:%d", i)
		kv[keys[i]] = []byte("old")
	}
	value := []byte("a value of thirty bytes, more.")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := ID{TS: t0ns + int64(i), Node: 1, Seq: uint64(i)}
		ops := []Op{{Kind: OpPut, Key: []byte(keys[i%1024]), Value: value}, {Kind: OpPut, Key: []byte(keys[(i+7)%1024]), Value: value}}
		if r := p.Apply(kv, t0, Command{Verb: Prepare, Route: ops[0].Key, ID: id, Record: ops[0].Key, Ops: ops}); r.Vote != VoteYes {
			b.Fatalf("prepare: %+v", r)
		}
		p.Apply(kv, t0, Command{Verb: Commit, Route: ops[0].Key, ID: id})
	}
}

// A DECIDE that votes no or die writes its transaction's record aborted: a copy of it
// applied later (sent again when its answer was lost) finds the record and cannot
// commit, whatever became of the locks meanwhile; the coordinator has aborted the
// attempt in the other groups. A wait writes nothing.
func TestDecideThatGivesUpIsRecorded(t *testing.T) {
	p, kv := NewParticipant(testOptions), memKV{}
	older, younger := ID{TS: t0ns + 1, Node: 1, Seq: 1}, ID{TS: t0ns + 2, Node: 2, Seq: 1}
	prep(p, kv, t0, older, puts("g0a", "old"))
	decide := Command{Verb: Decide, Route: []byte("g0a"), ID: younger, Commit: true, Record: []byte("g0a"), Ops: puts("g0a", "young")}
	if r := p.Apply(kv, t0, decide); r.Vote != VoteDie || r.Status != 0 {
		t.Fatalf("decide meeting an older holder: %+v, want die", r)
	}
	p.Apply(kv, t0, Command{Verb: Commit, ID: older})
	if r := p.Apply(kv, t0, decide); r.Status != StatusAborted || r.Vote != VoteDie {
		t.Errorf("the same decide applied again after the holder left: %+v, want the record aborted", r)
	}
	if string(kv["g0a"]) != "old" {
		t.Errorf("g0a = %q after a decide that died", kv["g0a"])
	}
	if r := p.Apply(kv, t0, Command{Verb: Decide, Route: []byte("g0a"), ID: younger}); r.Status != StatusAborted {
		t.Errorf("recovery asking to abort: %+v, want the record aborted", r)
	}

	nx := ID{TS: t0ns + 3, Node: 2, Seq: 2}
	decideNX := Command{Verb: Decide, Route: []byte("g0a"), ID: nx, Commit: true, Record: []byte("g0a"), Ops: []Op{{Kind: OpPutNX, Key: []byte("g0a"), Value: []byte("nx")}}}
	if r := p.Apply(kv, t0, decideNX); r.Vote != VoteNo {
		t.Fatalf("MSETNX decide on an existing key: %+v, want no", r)
	}
	kv.Del([]byte("g0a"))
	if r := p.Apply(kv, t0, decideNX); r.Status != StatusAborted || string(kv["g0a"]) == "nx" {
		t.Errorf("the MSETNX decide applied again once the key was gone: %+v, g0a = %q", r, kv["g0a"])
	}

	holder, waiter := ID{TS: t0ns + 5, Node: 1, Seq: 3}, ID{TS: t0ns + 4, Node: 2, Seq: 3}
	prep(p, kv, t0, holder, puts("g0b", "h"))
	decideWait := Command{Verb: Decide, Route: []byte("g0b"), ID: waiter, Commit: true, Record: []byte("g0b"), Ops: puts("g0b", "w")}
	if r := p.Apply(kv, t0, decideWait); r.Vote != VoteWait {
		t.Fatalf("decide meeting a younger holder: %+v, want wait", r)
	}
	p.Apply(kv, t0, Command{Verb: Abort, ID: holder})
	if r := p.Apply(kv, t0, decideWait); r.Status != StatusCommitted || string(kv["g0b"]) != "w" {
		t.Errorf("decide asked again after a wait: %+v, g0b = %q; want committed", r, kv["g0b"])
	}
}
