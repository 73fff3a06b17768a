package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/keyspace"
)

func TestRangeDumpLoadCount(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	src := New(Options{Stripes: 16, Now: func() time.Time { return now }})
	r := keyspace.Range{Start: 0, End: 5460}
	inside := 0
	for i := range 2000 {
		k := []byte(fmt.Sprintf("key:%d", i))
		a := SetArgs{}
		if i%7 == 0 {
			a.TTL = time.Hour
		}
		src.Set(k, []byte(fmt.Sprint("v", i)), a)
		if r.Contains(keyspace.Slot(k)) {
			inside++
		}
	}
	src.Set([]byte("gone"), []byte("x"), SetArgs{TTL: time.Millisecond})
	now = now.Add(time.Second)
	if got := src.CountRange(r); got != inside {
		t.Fatalf("CountRange = %d, want %d", got, inside)
	}

	dst := New(Options{Stripes: 64, Now: func() time.Time { return now }})
	dst.Set([]byte("stale:in-range"), []byte("old"), SetArgs{})
	outsideKey := []byte("foo") // slot 12182
	dst.Set(outsideKey, []byte("kept"), SetArgs{})
	if err := dst.LoadRange(r, src.AppendRange(nil, r)); err != nil {
		t.Fatal(err)
	}
	if got := dst.CountRange(r); got != inside {
		t.Fatalf("after LoadRange: %d keys in range, want %d", got, inside)
	}
	if v, ok := dst.Get(outsideKey); !ok || string(v) != "kept" {
		t.Fatalf("a key outside the range was touched: %q %v", v, ok)
	}
	if r.Contains(keyspace.Slot([]byte("stale:in-range"))) {
		if _, ok := dst.Get([]byte("stale:in-range")); ok {
			t.Fatal("LoadRange kept a key of the range that the data lacks")
		}
	}
	for i := 0; i < 2000; i += 7 {
		k := []byte(fmt.Sprintf("key:%d", i))
		if !r.Contains(keyspace.Slot(k)) {
			continue
		}
		ttl, exists, has := dst.TTL(k)
		if !exists || !has || ttl <= 0 || ttl > time.Hour {
			t.Fatalf("%s: expiry not carried over: %v %v %v", k, ttl, exists, has)
		}
	}
}

func TestLoadRangeRefusesCorruptData(t *testing.T) {
	s := New(Options{})
	r := keyspace.Range{Start: 0, End: 100}
	for _, data := range [][]byte{{0xff}, {5, 1, 'a'}, append(New(Options{}).AppendRange(nil, r), 3, 0, 'f', 'o', 'o', 0)} {
		if err := s.LoadRange(r, data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("LoadRange(%q) = %v, want ErrCorrupt", data, err)
		}
	}
}

func TestKeepingReadsLeaveExpiredKeys(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := New(Options{Now: func() time.Time { return now }})
	s.Set([]byte("k"), []byte("v"), SetArgs{TTL: time.Second})
	now = now.Add(2 * time.Second)
	v := s.Keeping()
	if _, ok := v.Get([]byte("k")); ok {
		t.Fatal("an expired key reads as present through a keeping view")
	}
	if n := v.Exists([]byte("k")); n != 0 {
		t.Fatalf("Exists = %d through a keeping view", n)
	}
	if _, exists, _ := v.TTL([]byte("k")); exists {
		t.Fatal("TTL finds an expired key through a keeping view")
	}
	if got := s.SweepExpired(0); got != 1 {
		t.Fatalf("the keeping view's reads removed the key: sweep removed %d, want 1", got)
	}
}
