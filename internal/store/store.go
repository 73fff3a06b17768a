// Package store is the concurrent in-memory key-value table of one node.
//
// Keys and values are binary-safe byte strings. The table is split into
// stripes, each guarded by its own lock; a key's stripe is its Redis Cluster
// hash slot modulo the number of stripes, so every key of a slot lives in one
// stripe. Operations on keys of a single slot therefore take a single lock,
// and multi-key operations lock the stripes they touch in ascending order,
// which makes them atomic and deadlock-free.
//
// Keys may expire. Expiry is lazy (a read or write that finds an expired key
// treats it as absent and removes it) and active (SweepExpired, which the
// server calls periodically).
//
// Stored values are never modified in place: a write replaces the slice.
// Slices returned by Get and in SetResult.Old therefore stay valid and
// unchanged after the store releases its locks, but callers must not modify
// them.
//
// Each key has an access clock, the second it was last read or written (OBJECT
// IDLETIME): every write sets it, and so do Get, GetMany and Touch; Peek,
// PeekMany, Exists, TTL and the walks over the keys leave it. The clock they read
// moves only when Tick is called, which the server does a few times a second.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dhtkv/dht/internal/keyspace"
)

// DefaultStripes is the number of stripes New uses when Options.Stripes is
// not positive.
const DefaultStripes = 1024

// Options configures a Store.
type Options struct {
	// Stripes is the number of independently locked parts of the table.
	// Values <= 0 select DefaultStripes; values above keyspace.Slots are
	// lowered to keyspace.Slots, since extra stripes could never be used.
	Stripes int
	// Now returns the current time and drives expiry; tests inject a fake.
	// Nil selects time.Now.
	Now func() time.Time
}

// SetMode is the condition under which Set writes.
type SetMode int

const (
	// SetAlways writes unconditionally.
	SetAlways SetMode = iota
	// SetIfAbsent writes only if the key does not exist (SET ... NX).
	SetIfAbsent
	// SetIfPresent writes only if the key exists (SET ... XX).
	SetIfPresent
)

// SetArgs are the options of Set, mirroring those of the Redis SET command.
// The server validates combinations Redis rejects (such as a TTL together
// with KeepTTL); Set resolves them as documented on each field.
type SetArgs struct {
	// Mode is the condition under which the value is written.
	Mode SetMode
	// TTL is the time to live of the written value. Zero means no expiry;
	// a negative TTL means the value expires at once, so a successful write
	// removes the key (as Redis does for SET ... PXAT with a past time).
	TTL time.Duration
	// KeepTTL keeps the expiry of the key being overwritten (SET ... KEEPTTL).
	// It is ignored when TTL is non-zero.
	KeepTTL bool
	// Get asks for the previous value in SetResult.Old (SET ... GET).
	Get bool
}

// SetResult reports the outcome of Set.
type SetResult struct {
	// Written reports whether the condition in SetArgs.Mode held and the
	// write took place.
	Written bool
	// Old is the previous value if SetArgs.Get was set and HadOld is true.
	Old []byte
	// HadOld reports whether the key existed (and had not expired) before
	// the call, whether or not Set wrote.
	HadOld bool
}

// entry is one stored value.
type entry struct {
	v   value  // the value, with the key's access clock
	exp int64  // expiry in Unix nanoseconds; 0 means none
	ver uint64 // the stamp of the write that stored it (see Version)
}

// expired reports whether e has expired at time now (Unix nanoseconds).
// Like Redis, a key is still live at the exact instant of its expiry.
func (e entry) expired(now int64) bool {
	return e.exp != 0 && now > e.exp
}

// stripe is one independently locked part of the table.
type stripe struct {
	mu sync.RWMutex
	m  map[string]entry
	// volatile holds the keys of m that have an expiry, so that sweeping
	// and counting live keys need not scan persistent keys.
	volatile map[string]struct{}
	// seq numbers the writes to the stripe made without a stamp of their own.
	seq uint64
}

// put stores e under k, where old and had are the result of looking k up.
func (st *stripe) put(k string, e entry, old entry, had bool) {
	wasVolatile := had && old.exp != 0
	switch {
	case e.exp != 0 && !wasVolatile:
		st.volatile[k] = struct{}{}
	case e.exp == 0 && wasVolatile:
		delete(st.volatile, k)
	}
	st.m[k] = e
}

// remove deletes k, whose entry is e.
func (st *stripe) remove(k string, e entry) {
	if e.exp != 0 {
		delete(st.volatile, k)
	}
	delete(st.m, k)
}

// paddedStripe keeps adjacent stripes' locks on separate cache lines.
type paddedStripe struct {
	stripe
	_ [64 - unsafe.Sizeof(stripe{})%64]byte
}

// Store is a concurrent in-memory key-value table. Create one with New; the
// zero value is not usable. All methods are safe for concurrent use.
type Store struct {
	stripes []paddedStripe
	// dels holds, by slot, the stamp of the last removal of a live key of the
	// slot (see Version); each under the lock of its slot's stripe.
	dels []uint64
	now  func() time.Time
	// keep is set on views whose reads never remove expired keys (see Keeping).
	keep bool
	// stamp, when not zero, is the stamp of every write through this view (see
	// Stamped); else each write takes the next of its stripe's seq.
	stamp uint64
	// expired counts the keys removed because they expired; views share it.
	expired *atomic.Int64
	// clock is the access clock (see value), which Tick moves; views share it.
	clock *atomic.Uint32
}

// New returns an empty Store configured by opts.
func New(opts Options) *Store {
	n := opts.Stripes
	if n <= 0 {
		n = DefaultStripes
	}
	n = min(n, keyspace.Slots)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{stripes: make([]paddedStripe, n), dels: make([]uint64, keyspace.Slots), now: now,
		expired: new(atomic.Int64), clock: new(atomic.Uint32)}
	s.Tick()
	for i := range s.stripes {
		s.stripes[i].m = make(map[string]entry)
		s.stripes[i].volatile = make(map[string]struct{})
	}
	return s
}

// Expired returns how many keys were removed because they had expired: found
// expired by an operation or removed by a sweep.
func (s *Store) Expired() int64 { return s.expired.Load() }

// Tick moves the access clock to the store's current time (its second). The keys
// read or written from then on are stamped with it, and their idle times are
// measured against it. Between ticks it stands still, so that a read takes it with
// one atomic load rather than a call of the clock; calling Tick a few times a second
// keeps idle times to the second.
func (s *Store) Tick() { s.clock.Store(clockOf(s.now())) }

// IdleTime returns how long ago key was last read or written, in whole seconds by
// the access clock (see Tick), and whether it exists, as OBJECT IDLETIME does. It
// does not touch the key.
func (s *Store) IdleTime(key []byte) (time.Duration, bool) {
	st := s.stripeOf(key)
	st.mu.RLock()
	e, ok := st.m[string(key)]
	if ok && e.exp != 0 && e.expired(s.nowNanos()) {
		ok = false
	}
	var idle time.Duration
	if ok {
		idle = e.v.idle(s.clock.Load())
	}
	st.mu.RUnlock()
	return idle, ok
}

// Stripes returns the number of stripes of s.
func (s *Store) Stripes() int {
	return len(s.stripes)
}

// Now returns the time the store's expiry is measured against.
func (s *Store) Now() time.Time { return s.now() }

// At returns a view of s whose clock stands still at t: every operation through
// it decides expiry as of t, so that replicas applying the same log at different
// moments decide alike. The view shares s's table.
func (s *Store) At(t time.Time) *Store {
	return &Store{stripes: s.stripes, dels: s.dels, now: func() time.Time { return t }, stamp: s.stamp, expired: s.expired, clock: s.clock}
}

// Keeping returns a view of s whose reads treat expired keys as absent, as s's do,
// but leave them in place. A replica that is not the leader reads through it: its
// clock may run ahead of the leader's, and removing a key the leader still holds
// live would make the replicas differ.
func (s *Store) Keeping() *Store {
	return &Store{stripes: s.stripes, dels: s.dels, now: s.now, keep: true, stamp: s.stamp, expired: s.expired, clock: s.clock}
}

// Stamped returns a view of s whose writes all carry stamp, which must not be zero
// and must exceed the stamps of earlier writes to the keys it writes. A replica
// applying its log stamps each command with its position in the log, so that every
// replica gives a key the same stamps (see Version).
func (s *Store) Stamped(stamp uint64) *Store {
	v := *s
	v.stamp = stamp
	return &v
}

// SetStamp makes stamp the stamp of every write through s from now on, as Stamped
// does; s must be a view (made by At, Keeping or Stamped) that one goroutine uses.
func (s *Store) SetStamp(stamp uint64) { s.stamp = stamp }

// nextStamp returns the stamp of a write to st, which the caller has write-locked.
func (s *Store) nextStamp(st *stripe) uint64 {
	if s.stamp != 0 {
		return s.stamp
	}
	st.seq++
	return st.seq
}

// write stores e under k in the write-locked st, stamped, where old and had are
// the result of looking k up. A write touches the key: its access clock is set.
func (s *Store) write(st *stripe, k string, e entry, old entry, had bool) {
	e.ver = s.nextStamp(st)
	e.v.clock().Store(s.clock.Load())
	st.put(k, e, old, had)
}

// drop removes k, whose live entry in the write-locked st is e, and records the
// removal for Version.
func (s *Store) drop(st *stripe, k string, e entry) {
	st.remove(k, e)
	s.dels[keyspace.SlotOf(k)] = s.nextStamp(st)
}

// nowNanos returns the current time in Unix nanoseconds.
func (s *Store) nowNanos() int64 {
	return s.now().UnixNano()
}

// stripeIndex returns the index of key's stripe.
func (s *Store) stripeIndex(key []byte) int {
	return keyspace.Slot(key) % len(s.stripes)
}

// stripeOf returns key's stripe.
func (s *Store) stripeOf(key []byte) *stripe {
	return &s.stripes[s.stripeIndex(key)].stripe
}

// Get returns the value of key and whether it exists, and touches the key (see
// Tick). An expired key is removed and reported as absent. The returned slice must
// not be modified.
func (s *Store) Get(key []byte) (val []byte, ok bool) {
	return s.get(key, true)
}

// Peek is Get without touching the key: OBJECT and MEMORY USAGE read a key so, and
// so do the clients in CLIENT NO-TOUCH mode.
func (s *Store) Peek(key []byte) (val []byte, ok bool) {
	return s.get(key, false)
}

// get is Get, which touches the key if touch is set.
func (s *Store) get(key []byte, touch bool) ([]byte, bool) {
	st := s.stripeOf(key)
	st.mu.RLock()
	e, ok := st.m[string(key)]
	if ok && e.exp != 0 {
		if now := s.nowNanos(); e.expired(now) {
			st.mu.RUnlock()
			s.expire(st, key, now)
			return nil, false
		}
	}
	if ok && touch {
		e.v.touch(s.clock.Load())
	}
	st.mu.RUnlock()
	return e.v.bytes(), ok
}

// expire removes key from st if it has expired by now. Readers call it after
// dropping their read lock, so it checks again: a writer may have replaced
// the key in between.
func (s *Store) expire(st *stripe, key []byte, now int64) {
	if s.keep {
		return
	}
	st.mu.Lock()
	if e, ok := st.m[string(key)]; ok && e.expired(now) {
		st.remove(string(key), e)
		s.expired.Add(1)
	}
	st.mu.Unlock()
}

// TTL returns the time key has left to live. exists reports whether key
// exists, and hasExpiry whether it has an expiry at all; remaining is zero
// unless both are true. In Redis terms, TTL answers -2 when !exists and -1
// when !hasExpiry.
func (s *Store) TTL(key []byte) (remaining time.Duration, exists, hasExpiry bool) {
	st := s.stripeOf(key)
	st.mu.RLock()
	e, ok := st.m[string(key)]
	st.mu.RUnlock()
	if !ok {
		return 0, false, false
	}
	if e.exp == 0 {
		return 0, true, false
	}
	now := s.nowNanos()
	if e.expired(now) {
		s.expire(st, key, now)
		return 0, false, false
	}
	return time.Duration(e.exp - now), true, true
}

// Set writes val under key according to a; see SetArgs and SetResult. Set
// copies key and val, so callers may reuse their buffers afterwards.
func (s *Store) Set(key, val []byte, a SetArgs) SetResult {
	k, v := string(key), valueOf(val)
	var now, exp int64
	if a.TTL != 0 {
		now = s.nowNanos()
		exp = expiryAt(now, a.TTL)
	}
	st := s.stripeOf(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	old, had := st.m[k]
	if had && old.exp != 0 {
		if now == 0 {
			now = s.nowNanos()
		}
		if old.expired(now) {
			st.remove(k, old)
			s.expired.Add(1)
			had = false
		}
	}
	res := SetResult{HadOld: had}
	if had {
		old.v.touch(s.clock.Load()) // as Redis's lookup, also when the mode keeps Set from writing
		if a.Get {
			res.Old = old.v.bytes()
		}
	}
	if (a.Mode == SetIfAbsent && had) || (a.Mode == SetIfPresent && !had) {
		return res
	}
	res.Written = true
	switch {
	case a.TTL < 0:
		if had {
			s.drop(st, k, old)
		}
		return res
	case a.TTL == 0 && a.KeepTTL && had:
		exp = old.exp
	}
	s.write(st, k, entry{v: v, exp: exp}, old, had)
	return res
}

// expiryAt returns the Unix-nanosecond expiry of a value written at now with
// the given non-zero ttl, saturating instead of overflowing.
func expiryAt(now int64, ttl time.Duration) int64 {
	if ttl > 0 && now > math.MaxInt64-int64(ttl) {
		return math.MaxInt64
	}
	return now + int64(ttl)
}

// Del removes keys and returns how many of them existed. Keys that had
// already expired are removed too but not counted. A key named twice counts
// once. All keys are removed atomically.
func (s *Store) Del(keys ...[]byte) int {
	var idxBuf, orderBuf [8]int
	idx, order := s.stripeIndexes(keys, idxBuf[:0], orderBuf[:0])
	s.lockAll(order)
	defer s.unlockAll(order)
	var now int64
	n := 0
	for i, key := range keys {
		st := &s.stripes[idx[i]].stripe
		e, ok := st.m[string(key)]
		if !ok {
			continue
		}
		if e.exp != 0 && now == 0 {
			now = s.nowNanos()
		}
		if e.expired(now) {
			st.remove(string(key), e)
			continue
		}
		n++
		s.drop(st, string(key), e)
	}
	return n
}

// Exists returns how many of keys exist. A key named several times is
// counted each time, as Redis does. Expired keys are not counted, and are
// removed. It does not touch the keys.
func (s *Store) Exists(keys ...[]byte) int {
	return s.exists(keys, false)
}

// Touch is Exists that touches the keys that exist, as TOUCH does.
func (s *Store) Touch(keys ...[]byte) int {
	return s.exists(keys, true)
}

// exists is Exists, which touches the keys that exist if touch is set.
func (s *Store) exists(keys [][]byte, touch bool) int {
	var idxBuf, orderBuf [8]int
	idx, order := s.stripeIndexes(keys, idxBuf[:0], orderBuf[:0])
	s.rlockAll(order)
	var now int64
	n, expired := 0, false
	for i, key := range keys {
		e, ok := s.stripes[idx[i]].m[string(key)]
		if !ok {
			continue
		}
		if e.exp != 0 && now == 0 {
			now = s.nowNanos()
		}
		if e.expired(now) {
			expired = true
			continue
		}
		if touch {
			e.v.touch(s.clock.Load())
		}
		n++
	}
	s.runlockAll(order)
	if expired {
		for i, key := range keys {
			s.expire(&s.stripes[idx[i]].stripe, key, now)
		}
	}
	return n
}

// GetMany returns the values of keys, and whether each exists, as of one instant: a
// multi-key write is seen whole or not at all. Expired keys are reported absent (and
// left for Get or the sweeper to remove). It touches the keys it finds. The returned
// slices must not be modified.
func (s *Store) GetMany(keys [][]byte) (vals [][]byte, found []bool) {
	return s.getMany(keys, true)
}

// PeekMany is GetMany without touching the keys, as Peek is Get.
func (s *Store) PeekMany(keys [][]byte) (vals [][]byte, found []bool) {
	return s.getMany(keys, false)
}

// getMany is GetMany, which touches the keys it finds if touch is set.
func (s *Store) getMany(keys [][]byte, touch bool) (vals [][]byte, found []bool) {
	var idxBuf, orderBuf [8]int
	idx, order := s.stripeIndexes(keys, idxBuf[:0], orderBuf[:0])
	vals, found = make([][]byte, len(keys)), make([]bool, len(keys))
	s.rlockAll(order)
	defer s.runlockAll(order)
	var now int64
	for i, key := range keys {
		e, ok := s.stripes[idx[i]].m[string(key)]
		if ok && e.exp != 0 && now == 0 {
			now = s.nowNanos()
		}
		if ok && !e.expired(now) {
			vals[i], found[i] = e.v.bytes(), true
			if touch {
				e.v.touch(s.clock.Load())
			}
		}
	}
	return vals, found
}

// MSet writes every key-value pair atomically, clearing any expiry, as
// MSET does. If a key appears more than once, its last value wins. MSet
// copies all keys and values.
func (s *Store) MSet(pairs [][2][]byte) {
	keys, vals := copyPairs(pairs)
	var idxBuf, orderBuf [8]int
	idx, order := s.pairStripeIndexes(pairs, idxBuf[:0], orderBuf[:0])
	s.lockAll(order)
	defer s.unlockAll(order)
	for i, k := range keys {
		st := &s.stripes[idx[i]].stripe
		old, had := st.m[k]
		s.write(st, k, entry{v: vals[i]}, old, had)
	}
}

// MSetNX writes every key-value pair if none of the keys exists, and
// otherwise writes nothing, atomically, as MSETNX does. It reports whether
// it wrote; with no pairs it writes nothing and returns false.
func (s *Store) MSetNX(pairs [][2][]byte) bool {
	if len(pairs) == 0 {
		return false
	}
	keys, vals := copyPairs(pairs)
	var idxBuf, orderBuf [8]int
	idx, order := s.pairStripeIndexes(pairs, idxBuf[:0], orderBuf[:0])
	s.lockAll(order)
	defer s.unlockAll(order)
	now := s.nowNanos()
	for i, k := range keys {
		if e, ok := s.stripes[idx[i]].m[k]; ok && !e.expired(now) {
			e.v.touch(s.clock.Load())
			return false
		}
	}
	for i, k := range keys {
		st := &s.stripes[idx[i]].stripe
		old, had := st.m[k]
		s.write(st, k, entry{v: vals[i]}, old, had)
	}
	return true
}

// copyPairs copies the keys and values of pairs so that they can be stored.
func copyPairs(pairs [][2][]byte) (keys []string, vals []value) {
	keys = make([]string, len(pairs))
	vals = make([]value, len(pairs))
	for i, p := range pairs {
		keys[i], vals[i] = string(p[0]), valueOf(p[1])
	}
	return keys, vals
}

// Len returns the number of live keys. Keys that have expired but not yet
// been removed are not counted. Stripes are counted one after another, so
// under concurrent writes the result need not match any single instant.
func (s *Store) Len() int {
	now := s.nowNanos()
	n := 0
	for i := range s.stripes {
		st := &s.stripes[i].stripe
		st.mu.RLock()
		n += len(st.m)
		for k := range st.volatile {
			if st.m[k].expired(now) {
				n--
			}
		}
		st.mu.RUnlock()
	}
	return n
}

// SlotLen returns the number of live keys in hash slot slot, or 0 if slot is
// out of range. It walks the slot's stripe, hashing every key in it.
func (s *Store) SlotLen(slot int) int {
	if slot < 0 || slot >= keyspace.Slots {
		return 0
	}
	now := s.nowNanos()
	st := &s.stripes[slot%len(s.stripes)].stripe
	n := 0
	st.mu.RLock()
	for k, e := range st.m {
		if !e.expired(now) && keyspace.SlotOf(k) == slot {
			n++
		}
	}
	st.mu.RUnlock()
	return n
}

// sweepScanFactor bounds the work of SweepExpired: per stripe it examines at
// most sweepScanFactor*maxPerStripe keys that have an expiry, so that a
// stripe holding many keys that expire later is not locked for long.
const sweepScanFactor = 4

// SweepExpired removes expired keys and returns how many it removed. In each
// stripe it removes at most maxPerStripe keys and examines at most
// 4*maxPerStripe keys that have an expiry, starting at a random one, so
// repeated calls reach every key. If maxPerStripe <= 0 it removes every
// expired key.
func (s *Store) SweepExpired(maxPerStripe int) int {
	now := s.nowNanos()
	removed := 0
	for i := range s.stripes {
		removed += s.stripes[i].sweep(now, maxPerStripe, nil)
	}
	s.expired.Add(int64(removed))
	return removed
}

// SweepExpiredRange is SweepExpired for the keys whose slots are in r.
func (s *Store) SweepExpiredRange(r keyspace.Range, maxPerStripe int) int {
	now := s.nowNanos()
	removed := 0
	s.eachStripeOf(r, func(st *stripe) { removed += st.sweep(now, maxPerStripe, &r) })
	s.expired.Add(int64(removed))
	return removed
}

// sweep removes up to maxPerStripe keys of st (all when it is not positive) that
// expired by now, and whose slots are in r unless r is nil; see SweepExpired.
func (st *stripe) sweep(now int64, maxPerStripe int, r *keyspace.Range) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	budget := sweepScanFactor * maxPerStripe
	n := 0
	for k := range st.volatile {
		if maxPerStripe > 0 && (n == maxPerStripe || budget == 0) {
			break
		}
		budget--
		if e := st.m[k]; e.expired(now) && (r == nil || r.Contains(keyspace.SlotOf(k))) {
			st.remove(k, e)
			n++
		}
	}
	return n
}

// stripeIndexes appends to idx the stripe index of each key and to order
// the distinct indexes in ascending order, the order in which they must be
// locked. Callers pass small stack buffers to avoid allocation.
func (s *Store) stripeIndexes(keys [][]byte, idx, order []int) ([]int, []int) {
	for _, k := range keys {
		idx = append(idx, s.stripeIndex(k))
	}
	return idx, lockOrder(idx, order)
}

// pairStripeIndexes is stripeIndexes for the keys of pairs.
func (s *Store) pairStripeIndexes(pairs [][2][]byte, idx, order []int) ([]int, []int) {
	for _, p := range pairs {
		idx = append(idx, s.stripeIndex(p[0]))
	}
	return idx, lockOrder(idx, order)
}

// lockOrder appends to order the distinct elements of idx in ascending order.
func lockOrder(idx, order []int) []int {
	order = append(order, idx...)
	slices.Sort(order)
	return slices.Compact(order)
}

// lockAll write-locks the stripes listed in order, which must be ascending.
func (s *Store) lockAll(order []int) {
	for _, i := range order {
		s.stripes[i].mu.Lock()
	}
}

// unlockAll releases the locks taken by lockAll.
func (s *Store) unlockAll(order []int) {
	for _, i := range order {
		s.stripes[i].mu.Unlock()
	}
}

// rlockAll read-locks the stripes listed in order, which must be ascending.
func (s *Store) rlockAll(order []int) {
	for _, i := range order {
		s.stripes[i].mu.RLock()
	}
}

// runlockAll releases the locks taken by rlockAll.
func (s *Store) runlockAll(order []int) {
	for _, i := range order {
		s.stripes[i].mu.RUnlock()
	}
}

// CountRange returns the number of live keys whose slots are in r. It walks every
// stripe that can hold such keys, hashing each key.
func (s *Store) CountRange(r keyspace.Range) int {
	now := s.nowNanos()
	n := 0
	s.eachStripeOf(r, func(st *stripe) {
		st.mu.RLock()
		for k, e := range st.m {
			if !e.expired(now) && r.Contains(keyspace.SlotOf(k)) {
				n++
			}
		}
		st.mu.RUnlock()
	})
	return n
}

// eachStripeOf calls fn with every stripe that can hold keys of r.
func (s *Store) eachStripeOf(r keyspace.Range, fn func(*stripe)) {
	if r.Len() >= len(s.stripes) {
		for i := range s.stripes {
			fn(&s.stripes[i].stripe)
		}
		return
	}
	for slot := r.Start; slot <= r.End; slot++ {
		fn(&s.stripes[slot%len(s.stripes)].stripe)
	}
}

// AppendRange appends to b every live key whose slot is in r, with its value, expiry
// and stamp, in the form LoadRange reads: first, per slot of r, the stamp of its last
// removal (see Version) as a uvarint; then per key, uvarint lengths of key and value,
// the key, the value, the expiry as a varint (Unix ns, 0 for none) and the stamp as a
// uvarint. Each stripe is read under its lock; keys of r written meanwhile may or may
// not be included, so a caller that needs one instant must hold writes to r off
// itself.
func (s *Store) AppendRange(b []byte, r keyspace.Range) []byte {
	now := s.nowNanos()
	for slot := r.Start; slot <= r.End; slot++ {
		st := &s.stripes[slot%len(s.stripes)].stripe
		st.mu.RLock()
		b = binary.AppendUvarint(b, s.dels[slot])
		st.mu.RUnlock()
	}
	s.eachStripeOf(r, func(st *stripe) {
		st.mu.RLock()
		for k, e := range st.m {
			if e.expired(now) || !r.Contains(keyspace.SlotOf(k)) {
				continue
			}
			b = binary.AppendUvarint(b, uint64(len(k)))
			b = binary.AppendUvarint(b, uint64(len(e.v.bytes())))
			b = append(b, k...)
			b = append(b, e.v.bytes()...)
			b = binary.AppendVarint(b, e.exp)
			b = binary.AppendUvarint(b, e.ver)
		}
		st.mu.RUnlock()
	})
	return b
}

// ErrCorrupt is returned by LoadRange for data that AppendRange did not write.
var ErrCorrupt = errors.New("store: corrupt range data")

// LoadRange replaces every key whose slot is in r with the keys in data, as
// AppendRange wrote them. Keys in data outside r are refused. On an error the keys of
// r are left removed.
func (s *Store) LoadRange(r keyspace.Range, data []byte) error {
	return s.loadRange(r, data, true)
}

// LoadUnstampedRange is LoadRange for data written before the table kept stamps
// (without the slots' removal stamps and the keys' stamps): every key and slot of r
// gets the stamp 0.
func (s *Store) LoadUnstampedRange(r keyspace.Range, data []byte) error {
	return s.loadRange(r, data, false)
}

// loadRange is LoadRange, of data with stamps or without.
func (s *Store) loadRange(r keyspace.Range, data []byte, stamped bool) error {
	s.eachStripeOf(r, func(st *stripe) {
		st.mu.Lock()
		for k, e := range st.m {
			if r.Contains(keyspace.SlotOf(k)) {
				st.remove(k, e)
			}
		}
		st.mu.Unlock()
	})
	for slot := r.Start; slot <= r.End; slot++ {
		var d uint64
		if stamped {
			var n int
			if d, n = binary.Uvarint(data); n <= 0 {
				return fmt.Errorf("%w: removal stamp of slot %d", ErrCorrupt, slot)
			}
			data = data[n:]
		}
		st := &s.stripes[slot%len(s.stripes)].stripe
		st.mu.Lock()
		s.dels[slot] = d
		st.mu.Unlock()
	}
	for len(data) > 0 {
		klen, n1 := binary.Uvarint(data)
		if n1 <= 0 {
			return fmt.Errorf("%w: key length", ErrCorrupt)
		}
		vlen, n2 := binary.Uvarint(data[n1:])
		if n2 <= 0 || klen+vlen > uint64(len(data)-n1-n2) {
			return fmt.Errorf("%w: value length", ErrCorrupt)
		}
		data = data[n1+n2:]
		k, v := string(data[:klen]), valueOf(data[klen:klen+vlen])
		v.clock().Store(s.clock.Load())
		data = data[klen+vlen:]
		exp, n3 := binary.Varint(data)
		if n3 <= 0 {
			return fmt.Errorf("%w: expiry of key %q", ErrCorrupt, k)
		}
		data = data[n3:]
		var ver uint64
		if stamped {
			var n4 int
			if ver, n4 = binary.Uvarint(data); n4 <= 0 {
				return fmt.Errorf("%w: stamp of key %q", ErrCorrupt, k)
			}
			data = data[n4:]
		}
		if !r.Contains(keyspace.SlotOf(k)) {
			return fmt.Errorf("%w: key %q is not in slots %s", ErrCorrupt, k, r)
		}
		st := &s.stripes[keyspace.SlotOf(k)%len(s.stripes)].stripe
		st.mu.Lock()
		old, had := st.m[k]
		st.put(k, entry{v: v, exp: exp, ver: ver}, old, had)
		st.seq = max(st.seq, ver)
		st.mu.Unlock()
	}
	return nil
}
