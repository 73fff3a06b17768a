package store

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dhtkv/dht/internal/keyspace"
)

// The commands over a node's whole keyspace: SCAN's slot-by-slot walk, KEYS,
// RANDOMKEY, INFO keyspace's figures and FLUSHALL; and WATCH's key versions.

// ScanBits is the number of bits of a scan position (see Scan).
const ScanBits = 50

// ScanPosition is key's position in its slot's scan order: a hash of the key (FNV-1a,
// its bits mixed as SplitMix64 does), ScanBits bits long, and never 0 (0 is where a
// slot's scan starts). It is the same in every process, so a SCAN cursor is too.
func ScanPosition(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return max(h>>(64-ScanBits), 1)
}

// Scan walks the table in scan order: stripe by stripe, within a stripe slot by slot
// (slot, slot+stripes, ...), within a slot by scan position (see ScanPosition). It
// appends to dst count live keys from the stripe of slot that come at or after
// position from of slot and whose slots in accepts, and more while the slot and
// position stay those of the last one, so that a position is returned whole. It
// returns where to continue: the slot and position of the next key of the stripe, or
// the first slot of the next stripe, or keyspace.Slots when the walk is done. A key
// that is in the table from a walk's first call to its last is returned once, however
// other keys come and go: the order does not depend on them.
func (s *Store) Scan(dst []string, slot int, from uint64, count int, in func(slot int) bool) (_ []string, nextSlot int, nextPos uint64) {
	if slot < 0 || slot >= keyspace.Slots {
		return dst, keyspace.Slots, 0
	}
	type positioned struct {
		slot int
		pos  uint64
		key  string
	}
	now := s.nowNanos()
	stripe := slot % len(s.stripes)
	st := &s.stripes[stripe].stripe
	var found []positioned
	st.mu.RLock()
	for k, e := range st.m {
		if e.expired(now) {
			continue
		}
		sl := keyspace.SlotOf(k)
		if sl < slot || !in(sl) {
			continue
		}
		if p := ScanPosition(k); sl > slot || p >= from {
			found = append(found, positioned{sl, p, k})
		}
	}
	st.mu.RUnlock()
	slices.SortFunc(found, func(a, b positioned) int {
		return cmp.Or(cmp.Compare(a.slot, b.slot), cmp.Compare(a.pos, b.pos))
	})
	n := min(max(count, 1), len(found))
	for n < len(found) && found[n].slot == found[n-1].slot && found[n].pos == found[n-1].pos {
		n++
	}
	for _, f := range found[:n] {
		dst = append(dst, f.key)
	}
	switch {
	case n < len(found):
		return dst, found[n].slot, found[n].pos
	case stripe+1 < len(s.stripes) && stripe+1 < keyspace.Slots:
		return dst, stripe + 1, 0
	}
	return dst, keyspace.Slots, 0
}

// Keys appends to dst every live key whose slot is in r and that match accepts
// (every key when match is nil). Keys are returned as stored: strings, which
// nothing changes.
func (s *Store) Keys(dst []string, r keyspace.Range, match func(key string) bool) []string {
	now := s.nowNanos()
	s.eachStripeOf(r, func(st *stripe) {
		st.mu.RLock()
		for k, e := range st.m {
			if !e.expired(now) && r.Contains(keyspace.SlotOf(k)) && (match == nil || match(k)) {
				dst = append(dst, k)
			}
		}
		st.mu.RUnlock()
	})
	return dst
}

// RandomKey returns a live key whose slot is in r, chosen at random, and whether
// there is one. It starts at a random stripe and takes the first live key of r
// there or in the stripes after it, so keys of sparse stripes are more likely.
func (s *Store) RandomKey(r keyspace.Range) (string, bool) {
	now := s.nowNanos()
	slots := r.Len()
	span := min(slots, len(s.stripes))
	start := rand.IntN(span)
	for i := range span {
		idx := (start + i) % span
		if slots < len(s.stripes) {
			idx = (r.Start + idx) % len(s.stripes)
		}
		st := &s.stripes[idx].stripe
		st.mu.RLock()
		for k, e := range st.m { // Go's map iteration starts at a random key
			if !e.expired(now) && r.Contains(keyspace.SlotOf(k)) {
				st.mu.RUnlock()
				return k, true
			}
		}
		st.mu.RUnlock()
	}
	return "", false
}

// RangeStats are the figures of INFO keyspace for a range of slots.
type RangeStats struct {
	// Keys is the number of live keys, Expires those of them with an expiry.
	Keys, Expires int
	// TTLSum is the sum of the time to live left to the keys with an expiry.
	TTLSum time.Duration
}

// Add adds o's figures to st's.
func (st *RangeStats) Add(o RangeStats) {
	st.Keys += o.Keys
	st.Expires += o.Expires
	st.TTLSum += o.TTLSum
}

// Stats counts the live keys whose slots are in r, and those with an expiry.
func (s *Store) Stats(r keyspace.Range) RangeStats {
	now := s.nowNanos()
	var rs RangeStats
	s.eachStripeOf(r, func(st *stripe) {
		st.mu.RLock()
		for k, e := range st.m {
			if e.expired(now) || !r.Contains(keyspace.SlotOf(k)) {
				continue
			}
			rs.Keys++
			if e.exp != 0 {
				rs.Expires++
				rs.TTLSum += time.Duration(e.exp - now)
			}
		}
		st.mu.RUnlock()
	})
	return rs
}

// FlushRange removes every key whose slot is in r, as FLUSHALL does for them, and
// returns how many live keys it removed. Each stripe is emptied of r's keys under its
// lock; a caller that needs one instant must hold writes to r off itself.
func (s *Store) FlushRange(r keyspace.Range) int {
	now := s.nowNanos()
	n := 0
	s.eachStripeOf(r, func(st *stripe) {
		st.mu.Lock()
		defer st.mu.Unlock()
		var stamp uint64
		for k, e := range st.m {
			slot := keyspace.SlotOf(k)
			if !r.Contains(slot) {
				continue
			}
			st.remove(k, e)
			if e.expired(now) {
				continue
			}
			n++
			if stamp == 0 {
				stamp = s.nextStamp(st)
			}
			s.dels[slot] = stamp
		}
	})
	return n
}

// Version returns a stamp of key's state, for WATCH: it changes whenever the key is
// written, removed or expires, and stays the same otherwise. For a live key it is the
// stamp of the write that stored it; for a missing one, with the top bit set, that of
// the last removal of a live key of its slot (so removing another key of the slot
// changes it too: Version may report a change where there was none, never the
// other way round).
func (s *Store) Version(key []byte) uint64 {
	st := s.stripeOf(key)
	st.mu.RLock()
	defer st.mu.RUnlock()
	if e, ok := st.m[string(key)]; ok && !e.expired(s.nowNanos()) {
		return e.ver
	}
	return 1<<63 | s.dels[keyspace.Slot(key)]
}
