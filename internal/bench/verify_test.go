package bench

import (
	"strings"
	"testing"
)

func TestExpectationsAndCheck(t *testing.T) {
	a, b := newAcks(), newAcks()
	a.note(OpPutIfAbsent, true, []int64{1}, 10) // thread 0 wins key 1 with seq 10
	a.note(OpGet, true, []int64{2}, 11)         // key 2 was found
	a.note(OpGet, false, []int64{3}, 12)        // key 3 was not: no expectation
	b.note(OpPutIfAbsent, false, []int64{4}, 0) // key 4 lost: it exists
	b.note(OpMultiPut, true, []int64{5, 6}, 1)  // keys 5, 6 written
	b.note(OpPutIfAbsent, true, []int64{1}, 2)  // thread 1 wins key 1 too: a violation
	exp, res := Expectations([]*acks{a, b}, 3, "tag", 20, true)
	if res.DoubleWins != 1 || !strings.Contains(res.Problems[0], "key 1") {
		t.Errorf("double wins = %d %v, want key 1", res.DoubleWins, res.Problems)
	}
	var keys []int64
	for _, e := range exp {
		keys = append(keys, e.Key)
	}
	if want := []int64{1, 2, 4, 5, 6}; !equalInts(keys, want) {
		t.Fatalf("expected keys %v, want %v", keys, want)
	}
	winner := AppendValue(nil, "tag", Writer{Client: 3, Thread: 0, Seq: 10}, 20)
	if string(exp[0].Want) != string(winner) || !exp[0].Exact {
		t.Fatalf("key 1 expects %q (exact %v), want %q", exp[0].Want, exp[0].Exact, winner)
	}

	res = &VerifyResult{}
	Check(exp, [][]byte{winner, []byte("x"), []byte("y"), []byte("z"), []byte("w")}, "tag", 20, res)
	if !res.OK() || res.Keys != 5 || res.Won != 1 {
		t.Errorf("all present: %+v", res)
	}
	res = &VerifyResult{}
	Check(exp, [][]byte{[]byte("tag:9:9:9:..........."), nil, []byte("y"), []byte("z"), nil}, "tag", 20, res)
	if res.WrongValue != 1 || res.Missing != 2 || len(res.Problems) != 3 {
		t.Errorf("one wrong, two missing: %+v", res)
	}

	// When the mix overwrites, a won key may hold any value of the run.
	exp[0].Exact = false
	res = &VerifyResult{}
	Check(exp[:1], [][]byte{[]byte("tag:9:9:9:...........")}, "tag", 20, res)
	if !res.OK() {
		t.Errorf("an overwritten won key failed: %+v", res)
	}
	Check(exp[:1], [][]byte{[]byte("other:1:1:1:........")}, "tag", 20, res)
	if res.WrongValue != 1 {
		t.Errorf("a foreign value passed: %+v", res)
	}
}

func TestAcksDoubleWinInOneThread(t *testing.T) {
	a := newAcks()
	a.note(OpPutIfAbsent, true, []int64{7}, 1)
	a.note(OpPutIfAbsent, true, []int64{7}, 2)
	_, res := Expectations([]*acks{a}, 0, "t", 10, true)
	if res.DoubleWins != 1 {
		t.Errorf("double wins = %d, want 1", res.DoubleWins)
	}
}

func TestVerifyResultMerge(t *testing.T) {
	v := &VerifyResult{}
	for range 3 {
		o := &VerifyResult{Keys: 2, Won: 1, Missing: 1}
		for range 5 {
			o.problem("p")
		}
		v.Merge(o)
	}
	if v.Keys != 6 || v.Won != 3 || v.Missing != 3 || len(v.Problems) != maxProblems {
		t.Errorf("merged = %+v", v)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCheckMultiPuts: a multi-put whose value one key holds while another key holds
// what its thread wrote before it landed partly; a later write over a key does not
// count against it, and neither does a write of the multi-put's own batch.
func TestCheckMultiPuts(t *testing.T) {
	const tag, size = "run", 30
	val := func(thread int, seq int64) []byte {
		return AppendValue(nil, tag, Writer{Client: 2, Thread: thread, Seq: seq}, size)
	}
	a := newAcks()
	a.note(OpPut, true, []int64{2}, 3)
	a.note(OpMultiPut, true, []int64{1, 2, 3}, 5)
	a.noteMultiPut([]int64{1, 2, 3}, 5, 4)
	a.note(OpPut, true, []int64{3}, 4) // in the multi-put's batch: its order is unknown
	if w, ok := ParseWriter(val(0, 5), tag); !ok || w != (Writer{Client: 2, Thread: 0, Seq: 5}) {
		t.Fatalf("ParseWriter = %+v, %v", w, ok)
	}
	for _, bad := range []string{"", "run:", "run:1:2", "other:2:0:5:", "run:x:0:5:"} {
		if w, ok := ParseWriter([]byte(bad), tag); ok {
			t.Errorf("ParseWriter(%q) = %+v", bad, w)
		}
	}
	for _, tc := range []struct {
		name    string
		values  map[int64][]byte
		partial int
	}{
		{"whole", map[int64][]byte{1: val(0, 5), 2: val(0, 5), 3: val(0, 5)}, 0},
		{"overwritten later", map[int64][]byte{1: val(0, 5), 2: val(1, 1), 3: val(0, 9)}, 0},
		{"same batch", map[int64][]byte{1: val(0, 5), 2: val(0, 5), 3: val(0, 4)}, 0},
		{"partly", map[int64][]byte{1: val(0, 5), 2: val(0, 3), 3: val(0, 5)}, 1},
	} {
		res := &VerifyResult{}
		CheckMultiPuts([]*acks{a}, tc.values, 2, tag, res)
		if res.PartialMultiPuts != tc.partial || res.OK() != (tc.partial == 0) {
			t.Errorf("%s: %+v, want %d partial", tc.name, res, tc.partial)
		}
	}
}
