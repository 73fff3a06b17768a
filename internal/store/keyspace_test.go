package store

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/keyspace"
)

// scanAll walks s with Scan, count keys at a time, calling between each call, and
// returns the keys in the order returned.
func scanAll(s *Store, count int, between func()) []string {
	var got []string
	var pos uint64
	every := func(int) bool { return true }
	for slot := 0; slot < keyspace.Slots; {
		got, slot, pos = s.Scan(got, slot, pos, count, every)
		between()
	}
	return got
}

func TestScanReturnsEveryKeyOnce(t *testing.T) {
	s, clock := newTestStore(8)
	want := map[string]bool{}
	for i := range 3000 {
		k := fmt.Sprintf("k%d", i)
		if i%100 == 0 {
			k = fmt.Sprintf("{hot}%d", i) // many keys in one slot
		}
		s.Set(bs(k), bs("v"), SetArgs{})
		want[k] = true
	}
	s.Set(bs("expired"), bs("v"), SetArgs{TTL: time.Second})
	clock.Advance(2 * time.Second)
	got := scanAll(s, 3, func() {})
	seen := map[string]bool{}
	for _, k := range got {
		if seen[k] {
			t.Fatalf("key %q returned twice", k)
		}
		seen[k] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("scan returned %d keys, want %d", len(seen), len(want))
	}
	for k := range want {
		if !seen[k] {
			t.Fatalf("key %q not returned", k)
		}
	}
}

// TestScanWhileKeysComeAndGo: a key present for the whole scan is returned,
// however many keys of its slot are written and removed between the calls.
func TestScanWhileKeysComeAndGo(t *testing.T) {
	s, _ := newTestStore(4)
	var stay []string
	for i := range 500 {
		k := fmt.Sprintf("{t%d}stay%d", i%7, i)
		s.Set(bs(k), bs("v"), SetArgs{})
		stay = append(stay, k)
	}
	n := 0
	got := scanAll(s, 2, func() {
		n++
		s.Set(bs(fmt.Sprintf("{t%d}new%d", n%7, n)), bs("v"), SetArgs{})
		s.Del(bs(fmt.Sprintf("{t%d}new%d", (n-3)%7, n-3)))
	})
	for _, k := range stay {
		if !slices.Contains(got, k) {
			t.Fatalf("key %q, present all along, was not returned", k)
		}
	}
}

func TestScanOrderAndFilter(t *testing.T) {
	s, _ := newTestStore(1)
	a, b := keyspace.Slot(bs("{a}")), keyspace.Slot(bs("{b}"))
	for i := range 20 {
		s.Set(bs(fmt.Sprintf("{a}%d", i)), bs("v"), SetArgs{})
		s.Set(bs(fmt.Sprintf("{b}%d", i)), bs("v"), SetArgs{})
	}
	first := min(a, b)
	onlyFirst := func(sl int) bool { return sl == first }
	keys, slot, pos := s.Scan(nil, 0, 0, 5, onlyFirst)
	if len(keys) != 5 || slot != first || pos == 0 {
		t.Fatalf("first call: %d keys, next %d/%d", len(keys), slot, pos)
	}
	rest, slot, _ := s.Scan(nil, slot, pos, 100, onlyFirst)
	if len(rest) != 15 || slot != keyspace.Slots {
		t.Fatalf("second call: %d keys, next slot %d; want the other 15 and the end", len(rest), slot)
	}
	for _, k := range append(keys, rest...) {
		if keyspace.SlotOf(k) != first {
			t.Fatalf("key %q of a slot the filter refuses", k)
		}
	}
	if k, n, _ := s.Scan(nil, -1, 0, 10, onlyFirst); k != nil || n != keyspace.Slots {
		t.Fatal("Scan from slot -1 returned something")
	}
}

func TestKeysStatsRandomFlush(t *testing.T) {
	s, clock := newTestStore(16)
	r := keyspace.Range{Start: 0, End: 8191}
	in, expiring := 0, 0
	for i := range 1000 {
		k := bs(fmt.Sprintf("key:%d", i))
		a := SetArgs{}
		if i%4 == 0 {
			a.TTL = 10 * time.Second
		}
		s.Set(k, bs("v"), a)
		if r.Contains(keyspace.Slot(k)) {
			in++
			if i%4 == 0 {
				expiring++
			}
		}
	}
	s.Set(bs("gone"), bs("v"), SetArgs{TTL: time.Millisecond})
	clock.Advance(time.Second)
	keys := s.Keys(nil, r, nil)
	if len(keys) != in {
		t.Fatalf("Keys: %d, want %d", len(keys), in)
	}
	if odd := s.Keys(nil, r, func(k string) bool { return k[len(k)-1] == '7' }); len(odd) == 0 || len(odd) >= in {
		t.Fatalf("Keys with a match: %d of %d", len(odd), in)
	}
	st := s.Stats(r)
	if st.Keys != in || st.Expires != expiring || st.TTLSum != time.Duration(expiring)*9*time.Second {
		t.Fatalf("Stats = %+v, want %d keys, %d expiring, 9s each", st, in, expiring)
	}
	for range 50 {
		k, ok := s.RandomKey(r)
		if !ok || !r.Contains(keyspace.SlotOf(k)) {
			t.Fatalf("RandomKey = %q, %v", k, ok)
		}
	}
	if n := s.FlushRange(r); n != in {
		t.Fatalf("FlushRange removed %d, want %d", n, in)
	}
	if _, ok := s.RandomKey(r); ok {
		t.Fatal("RandomKey found a key in a flushed range")
	}
	if got := s.Len(); got != 1000-in {
		t.Fatalf("after the flush: %d keys, want %d outside the range", got, 1000-in)
	}
}

func TestVersionChangesOnEveryWrite(t *testing.T) {
	s, clock := newTestStore(4)
	k, other := bs("{s}k"), bs("{s}other")
	changed := func(name string, before uint64, want bool) uint64 {
		t.Helper()
		after := s.Version(k)
		if (after != before) != want {
			t.Fatalf("%s: version %x -> %x, want changed=%v", name, before, after, want)
		}
		return after
	}
	v := s.Version(k)
	v = changed("a read", v, false)
	s.Set(k, bs("1"), SetArgs{})
	v = changed("SET", v, true)
	s.Get(k)
	v = changed("GET", v, false)
	s.Set(k, bs("1"), SetArgs{})
	v = changed("SET of the same value", v, true)
	s.Set(other, bs("x"), SetArgs{})
	v = changed("SET of another key", v, false)
	s.Set(k, bs("2"), SetArgs{Mode: SetIfAbsent})
	v = changed("SET NX that did not write", v, false)
	s.Expire(k, clock.Now().Add(time.Second).UnixMilli(), 0)
	v = changed("EXPIRE", v, true)
	clock.Advance(2 * time.Second)
	v = changed("expiry", v, true)
	s.Get(k) // removes it
	v = changed("removing the expired key", v, false)
	s.Set(k, bs("3"), SetArgs{})
	s.Del(k)
	v = changed("SET then DEL", v, true)
	s.Set(k, bs("4"), SetArgs{})
	v = changed("SET", v, true)
	s.FlushRange(keyspace.Range{Start: 0, End: keyspace.Slots - 1})
	changed("FLUSHALL", v, true)
}

func TestStampedVersionsSurviveARange(t *testing.T) {
	s, _ := newTestStore(4)
	r := keyspace.Range{Start: 0, End: keyspace.Slots - 1}
	s.Stamped(7).Set(bs("a"), bs("1"), SetArgs{})
	s.Stamped(9).Set(bs("b"), bs("1"), SetArgs{})
	s.Stamped(11).Del(bs("b"))
	dst, _ := newTestStore(8)
	if err := dst.LoadRange(r, s.AppendRange(nil, r)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if a, b := s.Version(bs(k)), dst.Version(bs(k)); a != b {
			t.Errorf("Version(%q): %x here, %x after a snapshot", k, a, b)
		}
	}
	if v := s.Version(bs("a")); v != 7 {
		t.Errorf("Version(a) = %d, want the stamp 7", v)
	}
}

func TestScanConcurrentWrites(t *testing.T) {
	s, _ := newTestStore(4)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			s.Set(bs(fmt.Sprintf("{c}%d", i%200)), bs("v"), SetArgs{})
			s.Del(bs(fmt.Sprintf("{c}%d", (i+100)%200)))
		}
	})
	for range 20 {
		scanAll(s, 7, func() {})
	}
	close(done)
	wg.Wait()
}

func BenchmarkScan(b *testing.B) {
	s, _ := newTestStore(DefaultStripes)
	const n = 100_000
	for i := range n {
		s.Set(bs(fmt.Sprintf("key:%d", i)), bs("v"), SetArgs{})
	}
	b.ResetTimer()
	for b.Loop() {
		scanAll(s, 10, func() {})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
}

func BenchmarkKeys(b *testing.B) {
	s, _ := newTestStore(DefaultStripes)
	const n = 100_000
	for i := range n {
		s.Set(bs(fmt.Sprintf("key:%d", i)), bs("v"), SetArgs{})
	}
	all := keyspace.Range{Start: 0, End: keyspace.Slots - 1}
	var keys []string
	b.ResetTimer()
	for b.Loop() {
		keys = s.Keys(keys[:0], all, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
}

// TestLoadUnstampedRange: a range written before the table kept stamps (per key:
// lengths, key, value, expiry) loads, every key with the stamp 0.
func TestLoadUnstampedRange(t *testing.T) {
	var data []byte
	for _, kv := range [][2]string{{"a", "1"}, {"b", "22"}} {
		data = binary.AppendUvarint(data, uint64(len(kv[0])))
		data = binary.AppendUvarint(data, uint64(len(kv[1])))
		data = append(data, kv[0]...)
		data = append(data, kv[1]...)
		data = binary.AppendVarint(data, 0)
	}
	s, _ := newTestStore(4)
	r := keyspace.Range{Start: 0, End: keyspace.Slots - 1}
	if err := s.LoadUnstampedRange(r, data); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Get(bs("b")); !ok || string(v) != "22" {
		t.Fatalf("b = %q, %v", v, ok)
	}
	if v := s.Version(bs("a")); v != 0 {
		t.Fatalf("Version(a) = %d, want 0", v)
	}
	if err := s.LoadRange(r, data); err == nil {
		t.Fatal("LoadRange read data without stamps")
	}
}
