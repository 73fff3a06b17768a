package store

import (
	"math/big"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/keyspace"
)

// TestIdleTime checks which operations touch a key (set its access clock) and which
// leave it, as Redis's lookups do: reads and writes touch it; Peek (OBJECT, MEMORY
// USAGE, CLIENT NO-TOUCH), EXISTS, TTL, WATCH's version and the walks over the keys
// do not; the clock moves only with Tick.
func TestIdleTime(t *testing.T) {
	s, clock := newTestStore(16)
	k := bs("k")
	idle := func(t *testing.T) time.Duration {
		t.Helper()
		d, ok := s.IdleTime(k)
		if !ok {
			t.Fatal("IdleTime: no key")
		}
		return d
	}
	wait := func(d time.Duration) {
		clock.Advance(d)
		s.Tick()
	}
	if _, ok := s.IdleTime(k); ok {
		t.Fatal("IdleTime of a missing key reports it")
	}
	s.Set(k, bs("1"), SetArgs{})
	if d := idle(t); d != 0 {
		t.Fatalf("idle time of a key just written = %v, want 0", d)
	}
	clock.Advance(10 * time.Second)
	if d := idle(t); d != 0 {
		t.Fatalf("idle time before the clock ticked = %v, want 0", d)
	}
	s.Tick()
	if d := idle(t); d != 10*time.Second {
		t.Fatalf("idle time 10 s after the write = %v", d)
	}
	clock.Advance(999 * time.Millisecond)
	s.Tick()
	if d := idle(t); d != 10*time.Second {
		t.Fatalf("idle time 10.999 s after the write = %v, want whole seconds", d)
	}

	r := keyspace.Range{Start: 0, End: keyspace.Slots - 1}
	leave := []struct {
		name string
		op   func()
	}{
		{"Peek", func() { s.Peek(k) }},
		{"PeekMany", func() { s.PeekMany([][]byte{k}) }},
		{"Exists", func() { s.Exists(k) }},
		{"TTL", func() { s.TTL(k) }},
		{"ExpireTime", func() { s.ExpireTime(k) }},
		{"Version", func() { s.Version(k) }},
		{"IdleTime", func() { s.IdleTime(k) }},
		{"Keys", func() { s.Keys(nil, r, func(string) bool { return true }) }},
		{"Scan", func() { s.Scan(nil, 0, 0, 100, func(int) bool { return true }) }},
		{"RandomKey", func() { s.RandomKey(r) }},
		{"Stats", func() { s.Stats(r) }},
		{"AppendRange", func() { s.AppendRange(nil, r) }},
		{"a view's Peek", func() { s.Keeping().Peek(k) }},
	}
	for _, tc := range leave {
		wait(time.Second)
		before := idle(t)
		tc.op()
		if d := idle(t); d != before || d == 0 {
			t.Errorf("%s: idle time %v, then %v; want it left alone", tc.name, before, d)
		}
	}

	touch := []struct {
		name string
		op   func()
	}{
		{"Get", func() { s.Get(k) }},
		{"GetMany", func() { s.GetMany([][]byte{bs("other"), k}) }},
		{"Touch", func() { s.Touch(k) }},
		{"GetEx", func() { s.GetEx(k, ExpiryChange{}) }},
		{"Set", func() { s.Set(k, bs("2"), SetArgs{}) }},
		{"Set NX that does not write", func() { s.Set(k, bs("3"), SetArgs{Mode: SetIfAbsent}) }},
		{"IncrBy", func() { s.IncrBy(k, 1) }},
		{"IncrByFloat", func() { s.IncrByFloat(k, big.NewFloat(1)) }},
		{"Append", func() { s.Append(k, bs("0"), 1<<20) }},
		{"SetRange", func() { s.SetRange(k, 0, bs("7"), 1<<20) }},
		{"Expire", func() { s.Expire(k, clock.Now().Add(time.Hour).UnixMilli(), 0) }},
		{"Persist", func() { s.Persist(k) }},
		{"MSet", func() { s.MSet([][2][]byte{{k, bs("4")}}) }},
		{"Expire NX that does not set", func() { s.Expire(k, clock.Now().Add(time.Hour).UnixMilli(), ExpireNX) }},
		{"Persist without an expiry", func() { s.Persist(k) }},
		{"MSetNX that does not write", func() { s.MSetNX([][2][]byte{{k, bs("5")}}) }},
		{"Copy from", func() { s.Copy(k, bs("copy"), true) }},
		{"a view's Get", func() { s.Keeping().Get(k) }},
		{"a timed view's Get", func() { s.At(clock.Now()).Get(k) }},
	}
	for _, tc := range touch {
		wait(3 * time.Second)
		before := idle(t)
		tc.op()
		if d := idle(t); before == 0 || d != 0 {
			t.Errorf("%s: idle time %v, then %v; want 0", tc.name, before, d)
		}
	}
	if v, _ := s.Get(k); string(v) != "4" {
		t.Fatalf("value %q after the operations, want 4", v)
	}

	// The copy's clock is its own: touching one key leaves the other.
	wait(5 * time.Second)
	before, _ := s.IdleTime(bs("copy"))
	s.Get(k)
	if d, _ := s.IdleTime(bs("copy")); d != before || d < 5*time.Second {
		t.Errorf("the copy's idle time: %v, then %v after reading the source; want it left alone", before, d)
	}
	// Rename moves the key and touches it.
	wait(2 * time.Second)
	if ok, err := s.Rename(bs("copy"), bs("renamed"), false); !ok || err != nil {
		t.Fatalf("Rename: %v, %v", ok, err)
	}
	if d, ok := s.IdleTime(bs("renamed")); !ok || d != 0 {
		t.Errorf("idle time of a key renamed = %v, %v; want 0", d, ok)
	}
	// An expired key has no idle time.
	s.Set(bs("brief"), bs("x"), SetArgs{TTL: time.Second})
	clock.Advance(2 * time.Second)
	if _, ok := s.IdleTime(bs("brief")); ok {
		t.Error("IdleTime reports an expired key")
	}
	// A snapshot loaded is written now.
	wait(4 * time.Second)
	data := s.AppendRange(nil, r)
	t2, _ := newTestStore(16)
	clock.Advance(time.Hour)
	if err := t2.LoadRange(r, data); err != nil {
		t.Fatal(err)
	}
	if d, ok := t2.IdleTime(k); !ok || d != 0 {
		t.Errorf("idle time of a key loaded from a snapshot = %v, %v; want 0", d, ok)
	}
	checkInvariants(t, s)
	checkInvariants(t, t2)
}

// TestTouchCounts: Touch counts as Exists does, each naming of a key that exists.
func TestTouchCounts(t *testing.T) {
	s, _ := newTestStore(16)
	s.Set(bs("a"), bs("1"), SetArgs{})
	if n := s.Touch(bs("a"), bs("a"), bs("missing")); n != 2 {
		t.Fatalf("Touch = %d, want 2", n)
	}
}

// TestValueAlignment: whatever their length, values keep their clock where atomic
// operations may reach it, and their bytes as given.
func TestValueAlignment(t *testing.T) {
	s, _ := newTestStore(1)
	for n := range 80 {
		k := []byte{byte(n)}
		val := make([]byte, n)
		for i := range val {
			val[i] = byte(i + 1)
		}
		s.Set(k, val, SetArgs{})
		if got, ok := s.Get(k); !ok || string(got) != string(val) || cap(got) != len(got) {
			t.Fatalf("value of %d bytes: got %v (cap %d), %v", n, got, cap(got), ok)
		}
	}
	checkInvariants(t, s)
}
