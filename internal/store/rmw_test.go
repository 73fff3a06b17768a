package store

import (
	"errors"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/redisnum"
)

func TestIncrBy(t *testing.T) {
	s, clock := newTestStore(16)
	steps := []struct {
		key, set string // set: the value to store first, if any
		delta    int64
		want     int64
		err      error
	}{
		{"n", "", 1, 1, nil},
		{"n", "", -5, -4, nil},
		{"n", "41", 1, 42, nil},
		{"n", "9223372036854775806", 1, math.MaxInt64, nil},
		{"n", "", 1, 0, ErrOverflow},
		{"n", "-9223372036854775807", -1, math.MinInt64, nil},
		{"n", "", -1, 0, ErrOverflow},
		{"n", "1.5", 1, 0, ErrNotInteger},
		{"n", " 1", 1, 0, ErrNotInteger},
		{"n", "01", 1, 0, ErrNotInteger},
		{"n", "", 0, 0, ErrNotInteger},
		{"n", "-0", 1, 0, ErrNotInteger},
		{"n", "", math.MaxInt64, 0, ErrNotInteger},
	}
	for _, st := range steps {
		if st.set != "" {
			s.Set(bs(st.key), bs(st.set), SetArgs{})
		}
		before, _ := s.Get(bs(st.key))
		got, err := s.IncrBy(bs(st.key), st.delta)
		if got != st.want || !errors.Is(err, st.err) {
			t.Fatalf("IncrBy(%q=%q, %d) = %d, %v; want %d, %v", st.key, before, st.delta, got, err, st.want, st.err)
		}
		after, _ := s.Get(bs(st.key))
		if err != nil && string(after) != string(before) {
			t.Fatalf("failed IncrBy changed %q to %q", before, after)
		}
		if err == nil && string(after) != strconv.FormatInt(st.want, 10) {
			t.Fatalf("after IncrBy the value is %q, want %d", after, st.want)
		}
	}
	// The expiry stays; an expired key counts as missing.
	s.Set(bs("t"), bs("10"), SetArgs{TTL: time.Minute})
	if n, _ := s.IncrBy(bs("t"), 5); n != 15 {
		t.Fatalf("IncrBy = %d, want 15", n)
	}
	if _, _, hasExpiry := s.TTL(bs("t")); !hasExpiry {
		t.Fatal("IncrBy dropped the expiry")
	}
	clock.Advance(2 * time.Minute)
	if n, _ := s.IncrBy(bs("t"), 5); n != 5 {
		t.Fatalf("IncrBy of an expired key = %d, want 5", n)
	}
	if _, _, hasExpiry := s.TTL(bs("t")); hasExpiry {
		t.Fatal("the new key has an expiry")
	}
	checkInvariants(t, s)
}

// TestIncrByConcurrent: increments from many goroutines are all counted.
func TestIncrByConcurrent(t *testing.T) {
	s, _ := newTestStore(4)
	const goroutines, each = 16, 500
	var wg sync.WaitGroup
	var maxSeen atomic.Int64
	for g := range goroutines {
		wg.Go(func() {
			for range each {
				delta := int64(1)
				if g%2 == 1 {
					delta = 3
				}
				n, err := s.IncrBy(bs("counter"), delta)
				if err != nil {
					t.Error(err)
					return
				}
				for cur := maxSeen.Load(); n > cur && !maxSeen.CompareAndSwap(cur, n); cur = maxSeen.Load() {
				}
			}
		})
	}
	wg.Wait()
	want := int64(goroutines / 2 * each * (1 + 3))
	v, _ := s.Get(bs("counter"))
	if string(v) != strconv.FormatInt(want, 10) || maxSeen.Load() != want {
		t.Fatalf("counter = %s (largest reply %d), want %d", v, maxSeen.Load(), want)
	}
}

func TestIncrByFloat(t *testing.T) {
	s, _ := newTestStore(16)
	incr := func(key, by string) (string, error) {
		x, ok := redisnum.ParseLongDouble(bs(by))
		if !ok {
			t.Fatalf("%q does not parse", by)
		}
		v, err := s.IncrByFloat(bs(key), x)
		return string(v), err
	}
	if v, err := incr("f", "10.5"); v != "10.5" || err != nil {
		t.Fatalf("IncrByFloat = %q, %v", v, err)
	}
	if v, err := incr("f", "0.1"); v != "10.6" || err != nil {
		t.Fatalf("IncrByFloat = %q, %v", v, err)
	}
	if v, _ := s.Get(bs("f")); string(v) != "10.6" {
		t.Fatalf("stored %q", v)
	}
	if _, err := incr("f", "inf"); !errors.Is(err, ErrNaNOrInfinity) {
		t.Fatalf("+inf: %v", err)
	}
	s.Set(bs("f"), bs("abc"), SetArgs{})
	if _, err := incr("f", "1"); !errors.Is(err, ErrNotFloat) {
		t.Fatalf("on abc: %v", err)
	}
	s.Set(bs("f"), bs("5.0e3"), SetArgs{TTL: time.Hour})
	if v, _ := incr("f", "2.0e2"); v != "5200" {
		t.Fatalf("IncrByFloat = %q", v)
	}
	if _, _, hasExpiry := s.TTL(bs("f")); !hasExpiry {
		t.Fatal("IncrByFloat dropped the expiry")
	}
}

func TestAppendSetRange(t *testing.T) {
	s, _ := newTestStore(16)
	if n, err := s.Append(bs("a"), bs("hello"), 10); n != 5 || err != nil {
		t.Fatalf("Append = %d, %v", n, err)
	}
	if n, err := s.Append(bs("a"), bs(" you"), 10); n != 9 || err != nil {
		t.Fatalf("Append = %d, %v", n, err)
	}
	if _, err := s.Append(bs("a"), bs("xx"), 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append past the limit: %v", err)
	}
	if v, _ := s.Get(bs("a")); string(v) != "hello you" {
		t.Fatalf("value %q", v)
	}
	if n, err := s.SetRange(bs("a"), 6, bs("YOU!"), 10); n != 10 || err != nil {
		t.Fatalf("SetRange = %d, %v", n, err)
	}
	if n, err := s.SetRange(bs("a"), 0, bs("J"), 10); n != 10 || err != nil {
		t.Fatalf("SetRange = %d, %v", n, err)
	}
	if v, _ := s.Get(bs("a")); string(v) != "Jello YOU!" {
		t.Fatalf("value %q", v)
	}
	if _, err := s.SetRange(bs("a"), 10, bs("x"), 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SetRange past the limit: %v", err)
	}
	if _, err := s.SetRange(bs("a"), math.MaxInt64, bs("x"), 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SetRange at MaxInt64: %v", err)
	}
	if n, err := s.SetRange(bs("b"), 3, bs("x"), 10); n != 4 || err != nil {
		t.Fatalf("SetRange = %d, %v", n, err)
	}
	if v, _ := s.Get(bs("b")); string(v) != "\x00\x00\x00x" {
		t.Fatalf("padded value %q", v)
	}
	if n, _ := s.SetRange(bs("c"), 3, nil, 10); n != 0 || s.Exists(bs("c")) != 0 {
		t.Fatal("an empty SetRange created a key")
	}
	checkInvariants(t, s)
}

func TestGetDelGetEx(t *testing.T) {
	s, clock := newTestStore(16)
	s.Set(bs("k"), bs("v"), SetArgs{})
	if v, ok := s.GetDel(bs("k")); string(v) != "v" || !ok || s.Exists(bs("k")) != 0 {
		t.Fatalf("GetDel = %q, %v", v, ok)
	}
	if _, ok := s.GetDel(bs("k")); ok {
		t.Fatal("GetDel of a missing key")
	}
	s.Set(bs("k"), bs("v"), SetArgs{})
	at := clock.Now().Add(time.Minute).UnixMilli()
	if v, ok := s.GetEx(bs("k"), ExpiryChange{At: at}); string(v) != "v" || !ok {
		t.Fatalf("GetEx = %q, %v", v, ok)
	}
	if got, _, _ := s.ExpireTime(bs("k")); got != at {
		t.Fatalf("expiry %d, want %d", got, at)
	}
	s.GetEx(bs("k"), ExpiryChange{Persist: true})
	if _, _, hasExpiry := s.ExpireTime(bs("k")); hasExpiry {
		t.Fatal("GetEx PERSIST left the expiry")
	}
	if v, ok := s.GetEx(bs("k"), ExpiryChange{At: 1}); string(v) != "v" || !ok || s.Exists(bs("k")) != 0 {
		t.Fatalf("GetEx with a past time = %q, %v, and the key is still there", v, ok)
	}
	checkInvariants(t, s)
}

func TestExpire(t *testing.T) {
	s, clock := newTestStore(16)
	now := clock.Now().UnixMilli()
	k := bs("k")
	if s.Expire(k, now+1000, 0) {
		t.Fatal("Expire of a missing key")
	}
	s.Set(k, bs("v"), SetArgs{})
	steps := []struct {
		at   int64
		cond ExpireCond
		ok   bool
		want int64 // the expiry after, 0 for none
	}{
		{now + 5000, ExpireXX, false, 0},
		{now + 5000, ExpireGT, false, 0},
		{now + 5000, ExpireXX | ExpireLT, false, 0},
		{now + 5000, ExpireLT, true, now + 5000},
		{now + 9000, ExpireNX, false, now + 5000},
		{now + 4000, ExpireGT, false, now + 5000},
		{now + 5000, ExpireGT, false, now + 5000},
		{now + 6000, ExpireXX | ExpireGT, true, now + 6000},
		{now + 6000, ExpireLT, false, now + 6000},
		{now + 3000, ExpireLT, true, now + 3000},
		{math.MaxInt64, 0, true, math.MaxInt64 / int64(time.Millisecond)},
	}
	for i, st := range steps {
		if ok := s.Expire(k, st.at, st.cond); ok != st.ok {
			t.Fatalf("step %d: Expire = %v, want %v", i, ok, st.ok)
		}
		at, _, has := s.ExpireTime(k)
		if has != (st.want != 0) || at != st.want {
			t.Fatalf("step %d: expiry %d (%v), want %d", i, at, has, st.want)
		}
	}
	if !s.Persist(k) || s.Persist(k) {
		t.Fatal("Persist should report the expiry once")
	}
	if !s.Expire(k, now, 0) || s.Exists(k) != 0 {
		t.Fatal("an expiry of now should remove the key")
	}
	checkInvariants(t, s)
}

func TestCopyRename(t *testing.T) {
	s, clock := newTestStore(16)
	a, b := bs("{x}a"), bs("{x}b")
	if s.Copy(a, b, false) {
		t.Fatal("Copy of a missing key")
	}
	if _, err := s.Rename(a, b, false); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("Rename of a missing key: %v", err)
	}
	s.Set(a, bs("1"), SetArgs{TTL: time.Minute})
	if !s.Copy(a, b, false) {
		t.Fatal("Copy failed")
	}
	s.Set(a, bs("2"), SetArgs{KeepTTL: true})
	if s.Copy(a, b, false) {
		t.Fatal("Copy over an existing key without replace")
	}
	if v, _ := s.Get(b); string(v) != "1" {
		t.Fatalf("copy holds %q", v)
	}
	if !s.Copy(a, b, true) {
		t.Fatal("Copy with replace failed")
	}
	if v, _ := s.Get(b); string(v) != "2" {
		t.Fatalf("copy holds %q", v)
	}
	wantAt := clock.Now().Add(time.Minute).UnixMilli()
	if at, _, _ := s.ExpireTime(b); at != wantAt {
		t.Fatalf("copy expires at %d, want %d", at, wantAt)
	}
	if ok, err := s.Rename(a, b, true); ok || err != nil {
		t.Fatalf("RenameNX onto an existing key = %v, %v", ok, err)
	}
	if ok, err := s.Rename(a, a, true); ok || err != nil {
		t.Fatalf("RenameNX onto itself = %v, %v", ok, err)
	}
	if ok, err := s.Rename(a, a, false); !ok || err != nil {
		t.Fatalf("Rename onto itself = %v, %v", ok, err)
	}
	s.Del(b)
	if ok, err := s.Rename(a, b, true); !ok || err != nil {
		t.Fatalf("RenameNX = %v, %v", ok, err)
	}
	if s.Exists(a) != 0 || s.Exists(b) != 1 {
		t.Fatal("Rename left the source or lost the destination")
	}
	if at, _, _ := s.ExpireTime(b); at != wantAt {
		t.Fatalf("renamed key expires at %d, want %d", at, wantAt)
	}
	clock.Advance(2 * time.Minute)
	if _, err := s.Rename(b, a, false); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("Rename of an expired key: %v", err)
	}
	checkInvariants(t, s)
}

func TestIncrAllocations(t *testing.T) {
	s, _ := newTestStore(64)
	key := bs("counter")
	s.Set(key, bs("1"), SetArgs{})
	// The new value and the key's string for the map: as many as Set.
	if got := testing.AllocsPerRun(100, func() { _, _ = s.IncrBy(key, 1) }); got > 2 {
		t.Errorf("IncrBy: %v allocations, want at most 2", got)
	}
}

func BenchmarkIncr(b *testing.B) {
	s := New(Options{})
	keys, _ := benchKeys(benchKeyCount, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, _ = s.IncrBy(keys[i&(benchKeyCount-1)], 1)
		i++
	}
}

func BenchmarkIncrParallel(b *testing.B) {
	s := New(Options{})
	keys, _ := benchKeys(benchKeyCount, 0)
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			_, _ = s.IncrBy(keys[i&(benchKeyCount-1)], 1)
			i++
		}
	})
}
