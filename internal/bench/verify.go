package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
)

// acks is what one thread saw acknowledged: the keys it won with put-if-absent
// (and the sequence number of the winning write) and the keys it otherwise
// knows exist (written, found by a get, or lost a put-if-absent to another write).
type acks struct {
	wins   map[int64]int64
	exists map[int64]struct{}
	// doubleWins are keys the thread won twice.
	doubleWins []int64
	// multi are the acknowledged multi-puts, by sequence number.
	multi map[int64]multiPut
}

// multiPut is an acknowledged multi-put: its keys, and the sequence number of the
// first request of its batch (every request before that one was acknowledged
// before the multi-put was sent).
type multiPut struct {
	keys  []int64
	batch int64
}

func newAcks() *acks {
	return &acks{wins: map[int64]int64{}, exists: map[int64]struct{}{}, multi: map[int64]multiPut{}}
}

// noteMultiPut records an acknowledged multi-put of keys, write seq, sent in the
// batch that starts with write batch.
func (a *acks) noteMultiPut(keys []int64, seq, batch int64) {
	a.multi[seq] = multiPut{keys: slices.Clone(keys), batch: batch}
}

// note records a successful request of type op on keys, issued as write seq.
func (a *acks) note(op Op, hit bool, keys []int64, seq int64) {
	if op == OpPutIfAbsent && hit {
		if _, dup := a.wins[keys[0]]; dup {
			a.doubleWins = append(a.doubleWins, keys[0])
		}
		a.wins[keys[0]] = seq
		return
	}
	if op == OpGet && !hit {
		return
	}
	for _, k := range keys {
		a.exists[k] = struct{}{}
	}
}

// Expectation is what the check expects of one key.
type Expectation struct {
	// Key is the key number.
	Key int64
	// Want is the value the key must hold; nil means any value written by the run.
	Want []byte
	// Exact is true when the key must hold exactly Want (no later write may have replaced it).
	Exact bool
}

// VerifyResult is the outcome of the correctness check of one client (or,
// merged, of the run).
type VerifyResult struct {
	// Keys is the number of keys checked.
	Keys int `json:"keys"`
	// Won is the number of them the client won with put-if-absent.
	Won int `json:"won"`
	// Missing counts acknowledged keys that do not exist.
	Missing int `json:"missing"`
	// WrongValue counts won keys holding another value than the winning one
	// (or, when the mix overwrites keys, a value not written by this run).
	WrongValue int `json:"wrong_value"`
	// DoubleWins counts keys that were won by put-if-absent more than once.
	DoubleWins int `json:"double_wins"`
	// PartialMultiPuts counts multi-puts found partly applied: one key holds the
	// multi-put's value while another holds a value its thread wrote before it.
	PartialMultiPuts int `json:"partial_multi_puts"`
	// Problems describes the first few violations.
	Problems []string `json:"problems,omitempty"`
}

// maxProblems bounds the violations a VerifyResult describes.
const maxProblems = 10

// OK reports whether the check found no violation.
func (v *VerifyResult) OK() bool {
	return v.Missing == 0 && v.WrongValue == 0 && v.DoubleWins == 0 && v.PartialMultiPuts == 0
}

func (v *VerifyResult) problem(format string, args ...any) {
	if len(v.Problems) < maxProblems {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// Merge adds other's counts to v.
func (v *VerifyResult) Merge(other *VerifyResult) {
	v.Keys += other.Keys
	v.Won += other.Won
	v.Missing += other.Missing
	v.WrongValue += other.WrongValue
	v.DoubleWins += other.DoubleWins
	v.PartialMultiPuts += other.PartialMultiPuts
	for _, p := range other.Problems {
		v.problem("%s", p)
	}
}

// Expectations merges what a client's threads saw into what each key must
// hold, sorted by key, and the number of keys won more than once. Values are
// those written by client with tag and size; exact says whether a won key must
// still hold its winning value.
func Expectations(threads []*acks, client int, tag string, size int, exact bool) ([]Expectation, *VerifyResult) {
	res := &VerifyResult{}
	type win struct {
		thread int
		seq    int64
	}
	wins := map[int64]win{}
	exists := map[int64]struct{}{}
	for t, a := range threads {
		for _, k := range a.doubleWins {
			res.DoubleWins++
			res.problem("key %d: put-if-absent won twice by client %d thread %d", k, client, t)
		}
		for k, seq := range a.wins {
			if w, dup := wins[k]; dup {
				res.DoubleWins++
				res.problem("key %d: put-if-absent won by client %d threads %d (seq %d) and %d (seq %d)", k, client, w.thread, w.seq, t, seq)
				continue
			}
			wins[k] = win{t, seq}
		}
		for k := range a.exists {
			exists[k] = struct{}{}
		}
	}
	exp := make([]Expectation, 0, len(wins)+len(exists))
	for k, w := range wins {
		v := AppendValue(nil, tag, Writer{Client: client, Thread: w.thread, Seq: w.seq}, size)
		exp = append(exp, Expectation{Key: k, Want: v, Exact: exact})
		delete(exists, k)
	}
	for k := range exists {
		exp = append(exp, Expectation{Key: k})
	}
	slices.SortFunc(exp, func(a, b Expectation) int { return cmp.Compare(a.Key, b.Key) })
	return exp, res
}

// Check compares the values read for the expected keys (got[i] is exp[i]'s
// value, nil if missing) and adds the result to res.
func Check(exp []Expectation, got [][]byte, tag string, size int, res *VerifyResult) {
	for i, e := range exp {
		res.Keys++
		if e.Want != nil {
			res.Won++
		}
		v := got[i]
		switch {
		case v == nil:
			res.Missing++
			res.problem("key %d: acknowledged but missing", e.Key)
		case e.Want != nil && e.Exact && !bytes.Equal(v, e.Want):
			res.WrongValue++
			res.problem("key %d: holds %q, but put-if-absent %q won", e.Key, v, e.Want)
		case e.Want != nil && !e.Exact && !HasTag(v, tag, size):
			res.WrongValue++
			res.problem("key %d: put-if-absent won, but it holds %q, which this run did not write", e.Key, v)
		}
	}
}

// verifyBatch is the number of keys read per round trip by the check.
const verifyBatch = 512

// verify reads back every key the client's threads saw acknowledged.
func (c *Client) verify(ctx context.Context, threads []threadResult) (*VerifyResult, error) {
	p := c.plan
	all := make([]*acks, len(threads))
	for i, t := range threads {
		all[i] = t.acks
	}
	exp, res := Expectations(all, p.ID, p.Tag, p.Workload.ValueSize, !Overwrites(p.Workload.Mix))
	values := make(map[int64][]byte, len(exp))
	keys := make([]string, 0, verifyBatch)
	for lo := 0; lo < len(exp); lo += verifyBatch {
		part := exp[lo:min(lo+verifyBatch, len(exp))]
		keys = keys[:0]
		for _, e := range part {
			keys = append(keys, p.Keys.Key(e.Key))
		}
		got, err := c.store.Get(ctx, keys)
		if err != nil {
			return nil, fmt.Errorf("reading back %d keys: %w", len(keys), err)
		}
		Check(part, got, p.Tag, p.Workload.ValueSize, res)
		for i, e := range part {
			values[e.Key] = got[i]
		}
	}
	CheckMultiPuts(all, values, p.ID, p.Tag, res)
	return res, nil
}

// CheckMultiPuts checks that the acknowledged multi-puts of client's threads landed
// whole, from the values read back (by key): where a key holds a multi-put's value,
// none of the multi-put's other keys may hold a value its thread wrote before
// sending it. (A later write, by anyone, may have replaced any of them.)
func CheckMultiPuts(threads []*acks, values map[int64][]byte, client int, tag string, res *VerifyResult) {
	partial := map[Writer]bool{}
	for k, v := range values {
		w, ok := ParseWriter(v, tag)
		if !ok || w.Client != client || w.Thread < 0 || w.Thread >= len(threads) || partial[w] {
			continue
		}
		m, ok := threads[w.Thread].multi[w.Seq]
		if !ok {
			continue
		}
		for _, k2 := range m.keys {
			w2, ok := ParseWriter(values[k2], tag)
			if k2 != k && ok && w2.Client == client && w2.Thread == w.Thread && w2.Seq < m.batch {
				partial[w] = true
				res.PartialMultiPuts++
				res.problem("multi-put %d of client %d thread %d landed partly: key %d holds it, key %d an earlier write (%d)",
					w.Seq, client, w.Thread, k, k2, w2.Seq)
				break
			}
		}
	}
}
