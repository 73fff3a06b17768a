package store

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/dhtkv/dht/internal/keyspace"
)

// fakeClock is a manually advanced clock, safe for concurrent use.
type fakeClock struct {
	ns atomic.Int64
}

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestStore(stripes int) (*Store, *fakeClock) {
	c := newFakeClock()
	return New(Options{Stripes: stripes, Now: c.Now}), c
}

// checkInvariants verifies that every stripe holds only keys of its slots and
// that its volatile set lists exactly the keys that have an expiry.
func checkInvariants(t *testing.T, s *Store) {
	t.Helper()
	for i := range s.stripes {
		st := &s.stripes[i].stripe
		st.mu.RLock()
		nVolatile := 0
		for k, e := range st.m {
			if got := keyspace.SlotOf(k) % len(s.stripes); got != i {
				t.Errorf("key %q is in stripe %d, want %d", k, i, got)
			}
			if _, ok := st.volatile[k]; ok != (e.exp != 0) {
				t.Errorf("key %q: exp=%d but in volatile set = %v", k, e.exp, ok)
			}
			if len(e.v) < valueHeader || uintptr(unsafe.Pointer(unsafe.SliceData(e.v)))%8 != 0 {
				t.Errorf("key %q has a value without an aligned header: %d bytes at %p", k, len(e.v), unsafe.SliceData(e.v))
			}
			if e.exp != 0 {
				nVolatile++
			}
		}
		if len(st.volatile) != nVolatile {
			t.Errorf("stripe %d: volatile set has %d keys, %d keys have an expiry", i, len(st.volatile), nVolatile)
		}
		st.mu.RUnlock()
	}
}

// rawLen returns the number of stored entries, expired or not.
func rawLen(s *Store) int {
	n := 0
	for i := range s.stripes {
		s.stripes[i].mu.RLock()
		n += len(s.stripes[i].m)
		s.stripes[i].mu.RUnlock()
	}
	return n
}

func bs(s string) []byte { return []byte(s) }

func TestNewOptions(t *testing.T) {
	tests := []struct {
		stripes, want int
	}{
		{0, DefaultStripes},
		{-5, DefaultStripes},
		{1, 1},
		{7, 7},
		{keyspace.Slots, keyspace.Slots},
		{1 << 20, keyspace.Slots},
	}
	for _, tt := range tests {
		if got := New(Options{Stripes: tt.stripes}).Stripes(); got != tt.want {
			t.Errorf("New(Stripes: %d).Stripes() = %d, want %d", tt.stripes, got, tt.want)
		}
	}
	s := New(Options{})
	s.Set(bs("k"), bs("v"), SetArgs{TTL: time.Hour})
	if ttl, ok, has := s.TTL(bs("k")); !ok || !has || ttl <= 0 || ttl > time.Hour {
		t.Errorf("with the real clock, TTL = %v, %v, %v; want about 1h", ttl, ok, has)
	}
}

func TestGetSet(t *testing.T) {
	s, _ := newTestStore(8)
	if v, ok := s.Get(bs("missing")); ok || v != nil {
		t.Errorf("Get(missing) = %q, %v; want nil, false", v, ok)
	}
	if r := s.Set(bs("k"), bs("v1"), SetArgs{}); !r.Written || r.HadOld || r.Old != nil {
		t.Errorf("first Set = %+v", r)
	}
	if r := s.Set(bs("k"), bs("v2"), SetArgs{}); !r.Written || !r.HadOld || r.Old != nil {
		t.Errorf("overwriting Set without Get = %+v", r)
	}
	if v, ok := s.Get(bs("k")); !ok || string(v) != "v2" {
		t.Errorf("Get(k) = %q, %v; want v2", v, ok)
	}
	s.Set(bs("empty"), nil, SetArgs{})
	if v, ok := s.Get(bs("empty")); !ok || v == nil || len(v) != 0 {
		t.Errorf("Get(empty) = %#v, %v; want a non-nil empty value", v, ok)
	}
	s.Set(nil, bs("empty key"), SetArgs{})
	if v, ok := s.Get([]byte{}); !ok || string(v) != "empty key" {
		t.Errorf("Get(\"\") = %q, %v", v, ok)
	}
	checkInvariants(t, s)
}

// keyState is the state of key "k" before a Set in TestSetModes.
type keyState int

const (
	absent     keyState = iota
	persistent          // "old", no expiry
	volatile            // "old", expires in 100s
	expired             // "old", expired 1s ago
)

func TestSetModes(t *testing.T) {
	const (
		noTTL        = time.Duration(-1) // wantTTL: the key has no expiry
		saturatedTTL = time.Duration(-2) // wantTTL: the expiry saturated
	)
	tests := []struct {
		name    string
		before  keyState
		args    SetArgs
		want    SetResult
		wantVal string // "" means the key must not exist afterwards
		wantTTL time.Duration
	}{
		{"plain/absent", absent, SetArgs{}, SetResult{Written: true}, "new", noTTL},
		{"plain/present", persistent, SetArgs{}, SetResult{Written: true, HadOld: true}, "new", noTTL},
		{"plain clears ttl", volatile, SetArgs{}, SetResult{Written: true, HadOld: true}, "new", noTTL},
		{"plain/expired", expired, SetArgs{}, SetResult{Written: true}, "new", noTTL},

		{"NX/absent", absent, SetArgs{Mode: SetIfAbsent}, SetResult{Written: true}, "new", noTTL},
		{"NX/present", persistent, SetArgs{Mode: SetIfAbsent}, SetResult{HadOld: true}, "old", noTTL},
		{"NX/volatile keeps ttl", volatile, SetArgs{Mode: SetIfAbsent, TTL: time.Second}, SetResult{HadOld: true}, "old", 100 * time.Second},
		{"NX/expired", expired, SetArgs{Mode: SetIfAbsent}, SetResult{Written: true}, "new", noTTL},
		{"NX GET/present", persistent, SetArgs{Mode: SetIfAbsent, Get: true}, SetResult{HadOld: true, Old: bs("old")}, "old", noTTL},
		{"NX GET/absent", absent, SetArgs{Mode: SetIfAbsent, Get: true}, SetResult{Written: true}, "new", noTTL},

		{"XX/absent", absent, SetArgs{Mode: SetIfPresent}, SetResult{}, "", 0},
		{"XX/present", persistent, SetArgs{Mode: SetIfPresent}, SetResult{Written: true, HadOld: true}, "new", noTTL},
		{"XX/expired", expired, SetArgs{Mode: SetIfPresent}, SetResult{}, "", 0},
		{"XX GET/present", persistent, SetArgs{Mode: SetIfPresent, Get: true}, SetResult{Written: true, HadOld: true, Old: bs("old")}, "new", noTTL},
		{"XX GET/absent", absent, SetArgs{Mode: SetIfPresent, Get: true}, SetResult{}, "", 0},

		{"GET/absent", absent, SetArgs{Get: true}, SetResult{Written: true}, "new", noTTL},
		{"GET/present", persistent, SetArgs{Get: true}, SetResult{Written: true, HadOld: true, Old: bs("old")}, "new", noTTL},
		{"GET/expired", expired, SetArgs{Get: true}, SetResult{Written: true}, "new", noTTL},

		{"TTL/absent", absent, SetArgs{TTL: 10 * time.Second}, SetResult{Written: true}, "new", 10 * time.Second},
		{"TTL replaces ttl", volatile, SetArgs{TTL: 10 * time.Second}, SetResult{Written: true, HadOld: true}, "new", 10 * time.Second},
		{"TTL XX/present", persistent, SetArgs{Mode: SetIfPresent, TTL: time.Minute}, SetResult{Written: true, HadOld: true}, "new", time.Minute},
		{"negative TTL/absent", absent, SetArgs{TTL: -time.Second}, SetResult{Written: true}, "", 0},
		{"negative TTL/present", persistent, SetArgs{TTL: -time.Second, Get: true}, SetResult{Written: true, HadOld: true, Old: bs("old")}, "", 0},
		{"negative TTL NX/present", persistent, SetArgs{Mode: SetIfAbsent, TTL: -time.Second}, SetResult{HadOld: true}, "old", noTTL},
		{"huge TTL saturates", absent, SetArgs{TTL: math.MaxInt64}, SetResult{Written: true}, "new", saturatedTTL},

		{"KEEPTTL/volatile", volatile, SetArgs{KeepTTL: true}, SetResult{Written: true, HadOld: true}, "new", 100 * time.Second},
		{"KEEPTTL/persistent", persistent, SetArgs{KeepTTL: true}, SetResult{Written: true, HadOld: true}, "new", noTTL},
		{"KEEPTTL/absent", absent, SetArgs{KeepTTL: true}, SetResult{Written: true}, "new", noTTL},
		{"KEEPTTL/expired", expired, SetArgs{KeepTTL: true}, SetResult{Written: true}, "new", noTTL},
		{"KEEPTTL XX GET/volatile", volatile, SetArgs{Mode: SetIfPresent, KeepTTL: true, Get: true}, SetResult{Written: true, HadOld: true, Old: bs("old")}, "new", 100 * time.Second},
		{"KEEPTTL ignored with TTL", volatile, SetArgs{KeepTTL: true, TTL: 5 * time.Second}, SetResult{Written: true, HadOld: true}, "new", 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newTestStore(4)
			switch tt.before {
			case persistent:
				s.Set(bs("k"), bs("old"), SetArgs{})
			case volatile:
				s.Set(bs("k"), bs("old"), SetArgs{TTL: 100 * time.Second})
			case expired:
				s.Set(bs("k"), bs("old"), SetArgs{TTL: time.Second})
				clock.Advance(2 * time.Second)
			}
			got := s.Set(bs("k"), bs("new"), tt.args)
			if got.Written != tt.want.Written || got.HadOld != tt.want.HadOld || !bytes.Equal(got.Old, tt.want.Old) {
				t.Errorf("Set = %+v, want %+v", got, tt.want)
			}
			val, ok := s.Get(bs("k"))
			if tt.wantVal == "" {
				if ok {
					t.Errorf("Get = %q, want no key", val)
				}
			} else if !ok || string(val) != tt.wantVal {
				t.Errorf("Get = %q, %v; want %q", val, ok, tt.wantVal)
			}
			ttl, exists, hasExpiry := s.TTL(bs("k"))
			switch {
			case tt.wantVal == "":
				if exists {
					t.Errorf("TTL reports an existing key")
				}
			case tt.wantTTL == noTTL:
				if !exists || hasExpiry {
					t.Errorf("TTL = %v, %v, %v; want no expiry", ttl, exists, hasExpiry)
				}
			case tt.wantTTL == saturatedTTL:
				if !exists || !hasExpiry || ttl < 100*365*24*time.Hour {
					t.Errorf("TTL = %v, %v, %v; want a saturated expiry", ttl, exists, hasExpiry)
				}
			default:
				if !exists || !hasExpiry || ttl != tt.wantTTL {
					t.Errorf("TTL = %v, %v, %v; want %v", ttl, exists, hasExpiry, tt.wantTTL)
				}
			}
			checkInvariants(t, s)
		})
	}
}

func TestLazyExpiry(t *testing.T) {
	s, clock := newTestStore(4)
	s.Set(bs("k"), bs("v"), SetArgs{TTL: 10 * time.Second})
	s.Set(bs("p"), bs("v"), SetArgs{})

	clock.Advance(4 * time.Second)
	if ttl, ok, has := s.TTL(bs("k")); !ok || !has || ttl != 6*time.Second {
		t.Errorf("TTL after 4s = %v, %v, %v; want 6s", ttl, ok, has)
	}
	if ttl, ok, has := s.TTL(bs("p")); !ok || has || ttl != 0 {
		t.Errorf("TTL(persistent) = %v, %v, %v; want 0, true, false", ttl, ok, has)
	}
	if ttl, ok, has := s.TTL(bs("missing")); ok || has || ttl != 0 {
		t.Errorf("TTL(missing) = %v, %v, %v; want 0, false, false", ttl, ok, has)
	}

	// Like Redis, the key is still live at the exact instant of expiry.
	clock.Advance(6 * time.Second)
	if _, ok := s.Get(bs("k")); !ok {
		t.Error("key gone at its expiry instant")
	}
	if got := s.Len(); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}

	clock.Advance(time.Nanosecond)
	if got := s.Len(); got != 1 {
		t.Errorf("Len after expiry = %d, want 1", got)
	}
	if got := rawLen(s); got != 2 {
		t.Errorf("stored entries before any access = %d, want 2", got)
	}
	if v, ok := s.Get(bs("k")); ok {
		t.Errorf("Get(expired) = %q, true", v)
	}
	if got := rawLen(s); got != 1 {
		t.Errorf("stored entries after Get = %d, want 1 (Get removes expired keys)", got)
	}
	checkInvariants(t, s)

	// Every kind of access removes an expired key.
	accesses := map[string]func(k []byte){
		"Exists": func(k []byte) {
			if n := s.Exists(k, k); n != 0 {
				t.Errorf("Exists(expired) = %d", n)
			}
		},
		"TTL": func(k []byte) {
			if _, ok, _ := s.TTL(k); ok {
				t.Error("TTL reports an expired key")
			}
		},
		"Set XX": func(k []byte) {
			if r := s.Set(k, bs("x"), SetArgs{Mode: SetIfPresent}); r.Written || r.HadOld {
				t.Errorf("Set XX on an expired key = %+v", r)
			}
		},
		"Del": func(k []byte) {
			if n := s.Del(k); n != 0 {
				t.Errorf("Del(expired) = %d", n)
			}
		},
	}
	for name, access := range accesses {
		s.Set(bs("e"), bs("v"), SetArgs{TTL: time.Second})
		clock.Advance(2 * time.Second)
		access(bs("e"))
		if got := rawLen(s); got != 1 {
			t.Errorf("%s left %d entries, want 1", name, got)
		}
		checkInvariants(t, s)
	}
}

func TestSweepExpired(t *testing.T) {
	for _, stripes := range []int{1, 7, 64} {
		t.Run(strconv.Itoa(stripes), func(t *testing.T) {
			s, clock := newTestStore(stripes)
			for i := range 1000 {
				s.Set(fmt.Appendf(nil, "short:%d", i), bs("v"), SetArgs{TTL: time.Second})
				s.Set(fmt.Appendf(nil, "long:%d", i), bs("v"), SetArgs{TTL: time.Hour})
				s.Set(fmt.Appendf(nil, "persistent:%d", i), bs("v"), SetArgs{})
			}
			if got := s.SweepExpired(0); got != 0 {
				t.Errorf("SweepExpired before expiry removed %d", got)
			}
			clock.Advance(2 * time.Second)
			if got := s.Len(); got != 2000 {
				t.Errorf("Len = %d, want 2000", got)
			}

			// A bounded sweep removes at most maxPerStripe per stripe, and
			// repeated sweeps remove everything.
			const maxPerStripe = 5
			total := 0
			for round := 0; ; round++ {
				n := s.SweepExpired(maxPerStripe)
				if n > maxPerStripe*stripes {
					t.Fatalf("SweepExpired(%d) removed %d from %d stripes", maxPerStripe, n, stripes)
				}
				if n == 0 && total == 1000 {
					break
				}
				if round > 10000 {
					t.Fatalf("sweeping stalled at %d of 1000 removed", total)
				}
				total += n
			}
			if got := rawLen(s); got != 2000 {
				t.Errorf("stored entries after sweeping = %d, want 2000", got)
			}
			checkInvariants(t, s)

			clock.Advance(time.Hour)
			if got := s.SweepExpired(-1); got != 1000 {
				t.Errorf("unbounded SweepExpired removed %d, want 1000", got)
			}
			if got, raw := s.Len(), rawLen(s); got != 1000 || raw != 1000 {
				t.Errorf("Len = %d, stored = %d; want 1000", got, raw)
			}
			checkInvariants(t, s)
		})
	}
}

func TestDelExists(t *testing.T) {
	s, clock := newTestStore(16)
	s.Set(bs("a"), bs("1"), SetArgs{})
	s.Set(bs("b"), bs("2"), SetArgs{})
	s.Set(bs("{a}x"), bs("3"), SetArgs{})
	s.Set(bs("gone"), bs("4"), SetArgs{TTL: time.Second})
	clock.Advance(2 * time.Second)

	if got := s.Exists(); got != 0 {
		t.Errorf("Exists() = %d, want 0", got)
	}
	if got := s.Exists(bs("a"), bs("a"), bs("b"), bs("missing"), bs("gone"), bs("{a}x")); got != 4 {
		t.Errorf("Exists(a, a, b, missing, gone, {a}x) = %d, want 4", got)
	}
	if got := s.Del(bs("a"), bs("a"), bs("missing"), bs("gone")); got != 1 {
		t.Errorf("Del(a, a, missing, gone) = %d, want 1", got)
	}
	if got := s.Exists(bs("a"), bs("b")); got != 1 {
		t.Errorf("Exists(a, b) after Del = %d, want 1", got)
	}
	if got := s.Del(); got != 0 {
		t.Errorf("Del() = %d, want 0", got)
	}

	// More keys than the stack buffers hold.
	var keys [][]byte
	for i := range 100 {
		k := fmt.Appendf(nil, "many:%d", i)
		keys = append(keys, k)
		if i%2 == 0 {
			s.Set(k, bs("v"), SetArgs{})
		}
	}
	if got := s.Exists(append(keys, keys...)...); got != 100 {
		t.Errorf("Exists(100 keys twice, 50 set) = %d, want 100", got)
	}
	if got := s.Del(keys...); got != 50 {
		t.Errorf("Del(100 keys, 50 set) = %d, want 50", got)
	}
	if got := s.Len(); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}
	checkInvariants(t, s)
}

func TestMSet(t *testing.T) {
	s, clock := newTestStore(16)
	s.Set(bs("a"), bs("old"), SetArgs{TTL: time.Second})
	s.MSet([][2][]byte{{bs("a"), bs("1")}, {bs("b"), bs("2")}, {bs("a"), bs("3")}})
	clock.Advance(time.Hour)
	for k, want := range map[string]string{"a": "3", "b": "2"} {
		if v, ok := s.Get(bs(k)); !ok || string(v) != want {
			t.Errorf("Get(%s) = %q, %v; want %q", k, v, ok, want)
		}
	}
	if _, _, has := s.TTL(bs("a")); has {
		t.Error("MSet kept the old expiry")
	}
	s.MSet(nil)
	if got := s.Len(); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}
	checkInvariants(t, s)
}

func TestMSetNX(t *testing.T) {
	s, clock := newTestStore(16)
	if s.MSetNX(nil) {
		t.Error("MSetNX(nil) = true")
	}
	if !s.MSetNX([][2][]byte{{bs("a"), bs("1")}, {bs("b"), bs("2")}, {bs("a"), bs("3")}}) {
		t.Fatal("MSetNX on absent keys = false")
	}
	if v, _ := s.Get(bs("a")); string(v) != "3" {
		t.Errorf("duplicate key: Get(a) = %q, want the last value 3", v)
	}
	if s.MSetNX([][2][]byte{{bs("c"), bs("x")}, {bs("b"), bs("x")}}) {
		t.Error("MSetNX with one existing key = true")
	}
	if _, ok := s.Get(bs("c")); ok {
		t.Error("failed MSetNX wrote c")
	}
	s.Set(bs("t"), bs("old"), SetArgs{TTL: time.Second})
	clock.Advance(2 * time.Second)
	if !s.MSetNX([][2][]byte{{bs("t"), bs("new")}, {bs("c"), bs("new")}}) {
		t.Error("MSetNX over an expired key = false")
	}
	if v, ok := s.Get(bs("t")); !ok || string(v) != "new" {
		t.Errorf("Get(t) = %q, %v; want new", v, ok)
	}
	if _, _, has := s.TTL(bs("t")); has {
		t.Error("MSetNX kept the expired key's expiry")
	}
	checkInvariants(t, s)
}

func TestBinarySafety(t *testing.T) {
	s, _ := newTestStore(8)
	keys := [][]byte{bs("\x00"), bs("\x00\x00"), bs("a\r\nb"), bs("\r\n"), bs("{\x00}\xff"), bs("\xff\xfe")}
	for i, k := range keys {
		s.Set(k, append(bs("\x00\r\n"), byte(i)), SetArgs{})
	}
	if got := s.Len(); got != len(keys) {
		t.Errorf("Len = %d, want %d (binary keys must stay distinct)", got, len(keys))
	}
	for i, k := range keys {
		if v, ok := s.Get(k); !ok || !bytes.Equal(v, append(bs("\x00\r\n"), byte(i))) {
			t.Errorf("Get(%q) = %q, %v", k, v, ok)
		}
	}
	if got := s.SlotLen(keyspace.Slot(bs("\x00"))); got < 1 {
		t.Errorf("SlotLen of the \\x00 key's slot = %d", got)
	}
	checkInvariants(t, s)
}

func TestCallerBufferReuse(t *testing.T) {
	s, _ := newTestStore(8)
	key, val := bs("key"), bs("value")
	s.Set(key, val, SetArgs{})
	copy(key, "xxx")
	copy(val, "XXXXX")
	if v, ok := s.Get(bs("key")); !ok || string(v) != "value" {
		t.Errorf("after reusing Set's buffers, Get(key) = %q, %v", v, ok)
	}
	if _, ok := s.Get(bs("xxx")); ok {
		t.Error("the key changed with the caller's buffer")
	}

	pairs := [][2][]byte{{bs("k1"), bs("v1")}, {bs("k2"), bs("v2")}}
	s.MSet(pairs)
	nx := [][2][]byte{{bs("k3"), bs("v3")}}
	s.MSetNX(nx)
	for _, p := range append(pairs, nx...) {
		copy(p[0], "zz")
		copy(p[1], "ZZ")
	}
	for _, k := range []string{"k1", "k2", "k3"} {
		if v, ok := s.Get(bs(k)); !ok || string(v) != "v"+k[1:] {
			t.Errorf("after reusing MSet's buffers, Get(%s) = %q, %v", k, v, ok)
		}
	}

	// Returned values are not disturbed by later writes to the same key.
	got, _ := s.Get(bs("key"))
	old := s.Set(bs("key"), bs("other"), SetArgs{Get: true}).Old
	s.Set(bs("key"), bs("third"), SetArgs{})
	if string(got) != "value" || string(old) != "value" {
		t.Errorf("earlier results changed to %q and %q", got, old)
	}
}

func TestStripeBySlot(t *testing.T) {
	for _, stripes := range []int{1, 3, 1024, keyspace.Slots} {
		s := New(Options{Stripes: stripes})
		for i := range 200 {
			k := fmt.Appendf(nil, "{user%d}.following", i%20)
			if got, want := s.stripeIndex(k), keyspace.Slot(k)%stripes; got != want {
				t.Fatalf("stripeIndex(%q) = %d, want %d", k, got, want)
			}
			s.Set(k, bs("v"), SetArgs{})
			s.Set(fmt.Appendf(nil, "plain%d", i), bs("v"), SetArgs{})
		}
		checkInvariants(t, s)
	}
}

func TestSlotLen(t *testing.T) {
	for _, stripes := range []int{1, 5, 1024, keyspace.Slots} {
		t.Run(strconv.Itoa(stripes), func(t *testing.T) {
			s, clock := newTestStore(stripes)
			want := make(map[int]int)
			for i := range 2000 {
				k := fmt.Appendf(nil, "{tag%d}:%d", i%37, i)
				s.Set(k, bs("v"), SetArgs{})
				want[keyspace.Slot(k)]++
			}
			for i := range 100 {
				s.Set(fmt.Appendf(nil, "{tag0}:exp%d", i), bs("v"), SetArgs{TTL: time.Second})
			}
			clock.Advance(2 * time.Second)
			slots := make([]int, 0, len(want)+keyspace.Slots/97)
			for slot := range want {
				slots = append(slots, slot)
			}
			for slot := 0; slot < keyspace.Slots; slot += 97 {
				slots = append(slots, slot) // mostly empty slots
			}
			for _, slot := range slots {
				if got := s.SlotLen(slot); got != want[slot] {
					t.Fatalf("SlotLen(%d) = %d, want %d", slot, got, want[slot])
				}
			}
			for _, slot := range []int{-1, keyspace.Slots} {
				if got := s.SlotLen(slot); got != 0 {
					t.Errorf("SlotLen(%d) = %d, want 0", slot, got)
				}
			}
		})
	}
}

func TestAllocations(t *testing.T) {
	s, _ := newTestStore(64)
	key, val := bs("user:1000"), bs("some value")
	s.Set(key, val, SetArgs{TTL: time.Hour})
	tests := []struct {
		name string
		max  float64
		f    func()
	}{
		{"Get", 0, func() { s.Get(key) }},
		{"Get miss", 0, func() { s.Get(bs("nope")) }},
		{"TTL", 0, func() { s.TTL(key) }},
		{"Exists", 0, func() { s.Exists(key, key, bs("nope")) }},
		{"Del miss", 0, func() { s.Del(bs("nope"), bs("nope2")) }},
		{"Set overwrite", 2, func() { s.Set(key, val, SetArgs{KeepTTL: true}) }},
		{"Set NX miss", 2, func() { s.Set(key, val, SetArgs{Mode: SetIfAbsent}) }},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got > tt.max {
			t.Errorf("%s: %v allocations, want at most %v", tt.name, got, tt.max)
		}
	}
}

// TestMultiKeyAtomicity races MSet against Del and Exists on two keys in
// different stripes: since all three are atomic, Del and Exists can only
// ever see both keys or neither.
func TestMultiKeyAtomicity(t *testing.T) {
	s, _ := newTestStore(16)
	a, c := bs("a"), bs("c")
	if s.stripeIndex(a) == s.stripeIndex(c) {
		t.Fatal("test keys share a stripe")
	}
	const rounds = 5000
	var wg sync.WaitGroup
	var stop atomic.Bool
	wg.Go(func() {
		for i := range rounds {
			v := strconv.AppendInt(nil, int64(i), 10)
			s.MSet([][2][]byte{{c, v}, {a, v}})
		}
		stop.Store(true)
	})
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				if n := s.Exists(a, c); n == 1 {
					t.Errorf("Exists(a, c) = 1: saw half of an MSet")
					return
				}
				if n := s.Del(c, a); n == 1 {
					t.Errorf("Del(c, a) = 1: saw half of an MSet")
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestMSetNXRace has goroutines race MSetNX on overlapping key sets that span
// several stripes. Every key must end up written by exactly one winner, each
// winner's keys must all hold its value, and no loser's value may appear.
func TestMSetNXRace(t *testing.T) {
	const (
		workers = 32
		keys    = 40
		span    = 5
	)
	for round := range 20 {
		s, _ := newTestStore(8)
		won := make([]bool, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				var pairs [][2][]byte
				for j := range span {
					k := fmt.Appendf(nil, "key%d", (w*3+j*7+round)%keys)
					pairs = append(pairs, [2][]byte{k, strconv.AppendInt(nil, int64(w), 10)})
				}
				won[w] = s.MSetNX(pairs)
			})
		}
		wg.Wait()

		owner := make(map[string]int)
		for w := range workers {
			for j := range span {
				k := fmt.Sprintf("key%d", (w*3+j*7+round)%keys)
				v, ok := s.Get(bs(k))
				if !ok {
					continue
				}
				o, err := strconv.Atoi(string(v))
				if err != nil {
					t.Fatalf("Get(%s) = %q", k, v)
				}
				owner[k] = o
				if won[w] && o != w {
					t.Errorf("round %d: winner %d's key %s holds %d", round, w, k, o)
				}
			}
		}
		winners := 0
		for w := range workers {
			if won[w] {
				winners++
			}
		}
		if winners == 0 {
			t.Errorf("round %d: no MSetNX won", round)
		}
		for k, o := range owner {
			if !won[o] {
				t.Errorf("round %d: key %s holds loser %d's value", round, k, o)
			}
		}
		checkInvariants(t, s)
	}
}

// TestConcurrentMixed runs every operation from many goroutines at once, for
// the race detector, then checks the table's internal invariants.
func TestConcurrentMixed(t *testing.T) {
	s, clock := newTestStore(7)
	const (
		workers = 16
		ops     = 3000
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			key, val := make([]byte, 0, 32), make([]byte, 0, 32)
			for i := range ops {
				key = fmt.Appendf(key[:0], "k%d", (i*31+w)%97)
				val = fmt.Appendf(val[:0], "v%d-%d", w, i)
				switch i % 10 {
				case 0:
					s.Set(key, val, SetArgs{TTL: time.Duration(i%5) * time.Millisecond})
				case 1:
					s.Set(key, val, SetArgs{Mode: SetIfAbsent, Get: true})
				case 2:
					s.Set(key, val, SetArgs{Mode: SetIfPresent, KeepTTL: true})
				case 3:
					s.Del(key, bs("k1"))
				case 4:
					s.Exists(key, bs("k2"), key)
				case 5:
					s.MSet([][2][]byte{{key, val}, {bs("k3"), val}})
				case 6:
					s.MSetNX([][2][]byte{{key, val}, {bs("k4"), val}})
				case 7:
					s.TTL(key)
					clock.Advance(time.Millisecond)
				case 8:
					s.SweepExpired(2)
					s.Len()
				default:
					if v, ok := s.Get(key); ok && len(v) == 0 {
						t.Errorf("Get(%q) returned an empty value", key)
					}
					s.SlotLen(keyspace.Slot(key))
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, s)
	clock.Advance(time.Second)
	s.SweepExpired(0)
	if got, raw := s.Len(), rawLen(s); got != raw {
		t.Errorf("after a full sweep Len = %d but %d entries are stored", got, raw)
	}
}

// benchKeys returns n distinct keys and a value of size valSize.
func benchKeys(n, valSize int) ([][]byte, []byte) {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key:%08d", i)
	}
	return keys, bytes.Repeat([]byte("x"), valSize)
}

const (
	benchKeyCount = 1 << 16
	benchValSize  = 64
)

func BenchmarkGet(b *testing.B) {
	s := New(Options{})
	keys, val := benchKeys(benchKeyCount, benchValSize)
	for _, k := range keys {
		s.Set(k, val, SetArgs{})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Get(keys[i&(benchKeyCount-1)])
		i++
	}
}

// BenchmarkGetReply is BenchmarkGet with each value copied out, as the server's
// reply to GET copies it: the read of the value's bytes is part of a GET.
func BenchmarkGetReply(b *testing.B) {
	s := New(Options{})
	keys, val := benchKeys(benchKeyCount, benchValSize)
	for _, k := range keys {
		s.Set(k, val, SetArgs{})
	}
	reply := make([]byte, 0, 2*benchValSize)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		v, _ := s.Get(keys[i&(benchKeyCount-1)])
		reply = append(reply[:0], v...)
		i++
	}
}

func BenchmarkSet(b *testing.B) {
	s := New(Options{})
	keys, val := benchKeys(benchKeyCount, benchValSize)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Set(keys[i&(benchKeyCount-1)], val, SetArgs{})
		i++
	}
}

func BenchmarkGetParallel(b *testing.B) {
	s := New(Options{})
	keys, val := benchKeys(benchKeyCount, benchValSize)
	for _, k := range keys {
		s.Set(k, val, SetArgs{})
	}
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			s.Get(keys[i&(benchKeyCount-1)])
			i++
		}
	})
}

func BenchmarkSetParallel(b *testing.B) {
	s := New(Options{})
	keys, val := benchKeys(benchKeyCount, benchValSize)
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			s.Set(keys[i&(benchKeyCount-1)], val, SetArgs{})
			i++
		}
	})
}

func BenchmarkMixed60Get40SetNX(b *testing.B) {
	s := New(Options{})
	keys, val := benchKeys(benchKeyCount, benchValSize)
	for _, k := range keys[:benchKeyCount/2] {
		s.Set(k, val, SetArgs{})
	}
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			k := keys[(i*2654435761)&(benchKeyCount-1)]
			if i%10 < 6 {
				s.Get(k)
			} else {
				s.Set(k, val, SetArgs{Mode: SetIfAbsent})
			}
			i++
		}
	})
}

func BenchmarkMSet(b *testing.B) {
	s := New(Options{})
	keys, val := benchKeys(benchKeyCount, benchValSize)
	pairs := make([][2][]byte, 4)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for j := range pairs {
			pairs[j] = [2][]byte{keys[(i+j*977)&(benchKeyCount-1)], val}
		}
		s.MSet(pairs)
		i++
	}
}

// TestGetManySeesMSetWhole: a GetMany running alongside MSets of the same keys
// always finds every key holding the same MSet's value.
func TestGetManySeesMSetWhole(t *testing.T) {
	s, clock := newTestStore(16)
	keys := [][]byte{bs("a"), bs("b"), bs("c"), bs("d"), bs("e")}
	s.Set(bs("gone"), bs("x"), SetArgs{TTL: time.Second})
	clock.Advance(time.Hour)
	if vals, found := s.GetMany([][]byte{bs("gone"), bs("none")}); found[0] || found[1] || vals[0] != nil {
		t.Errorf("GetMany found an expired or missing key: %q %v", vals, found)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 2000 {
			v := strconv.AppendInt(nil, int64(i), 10)
			pairs := make([][2][]byte, len(keys))
			for j, k := range keys {
				pairs[j] = [2][]byte{k, v}
			}
			s.MSet(pairs)
		}
	})
	for range 2000 {
		vals, found := s.GetMany(keys)
		for i := range keys {
			if found[i] != found[0] || string(vals[i]) != string(vals[0]) {
				t.Fatalf("GetMany saw part of an MSet: %q %v", vals, found)
			}
		}
	}
	wg.Wait()
}
