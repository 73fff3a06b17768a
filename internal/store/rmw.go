package store

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/dhtkv/dht/internal/redisnum"
)

// Errors of the read-modify-write operations; the server answers each with Redis's
// reply for it.
var (
	// ErrNotInteger: the value is not an integer in the int64 range.
	ErrNotInteger = errors.New("store: value is not an integer or out of range")
	// ErrOverflow: the result of an increment is past the int64 range.
	ErrOverflow = errors.New("store: increment or decrement would overflow")
	// ErrNotFloat: the value is not a number a long double holds.
	ErrNotFloat = errors.New("store: value is not a valid float")
	// ErrNaNOrInfinity: the result of a float increment is not finite.
	ErrNaNOrInfinity = errors.New("store: increment would produce NaN or Infinity")
	// ErrTooLarge: the result would be longer than the limit given.
	ErrTooLarge = errors.New("store: string exceeds maximum allowed size")
	// ErrNoSuchKey: the key an operation needs does not exist.
	ErrNoSuchKey = errors.New("store: no such key")
)

// live returns key's entry in st, which the caller has write-locked; an expired
// entry is removed and reported absent. It touches the key, as Redis's lookup for a
// write does, whether the caller then writes or not.
func (s *Store) live(st *stripe, key []byte) (entry, bool) {
	e, ok := st.m[string(key)]
	if ok && e.exp != 0 && e.expired(s.nowNanos()) {
		st.remove(string(key), e)
		s.expired.Add(1)
		return entry{}, false
	}
	if ok {
		e.v.touch(s.clock.Load())
	}
	return e, ok
}

// IncrBy adds delta to the integer stored at key and returns the sum, as INCRBY
// does: a missing key counts as 0 and the key keeps its expiry. A value that is not
// an integer as Redis reads one (see redisnum.ParseInt) gives ErrNotInteger, a sum
// past the int64 range ErrOverflow; either leaves the key as it was.
func (s *Store) IncrBy(key []byte, delta int64) (int64, error) {
	st := s.stripeOf(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	old, had := s.live(st, key)
	var n int64
	if had {
		var ok bool
		if n, ok = redisnum.ParseInt(old.v.bytes()); !ok {
			return 0, ErrNotInteger
		}
	}
	if delta > 0 && n > math.MaxInt64-delta || delta < 0 && n < math.MinInt64-delta {
		return 0, ErrOverflow
	}
	n += delta
	var buf [20]byte
	s.write(st, string(key), entry{v: valueOf(strconv.AppendInt(buf[:0], n, 10)), exp: old.exp}, old, had)
	return n, nil
}

// IncrByFloat adds incr to the float stored at key, as INCRBYFLOAT does, and returns
// the new value as stored: a missing key counts as 0, the key keeps its expiry, and
// the sum is a long double printed as Redis prints it (see redisnum). A value that is
// not a float gives ErrNotFloat, a sum that is not finite ErrNaNOrInfinity; either
// leaves the key as it was. The returned slice must not be modified.
func (s *Store) IncrByFloat(key []byte, incr *big.Float) ([]byte, error) {
	st := s.stripeOf(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	old, had := s.live(st, key)
	x := new(big.Float)
	if had {
		var ok bool
		if x, ok = redisnum.ParseLongDouble(old.v.bytes()); !ok {
			return nil, ErrNotFloat
		}
	}
	sum, ok := redisnum.AddLongDouble(x, incr)
	if !ok {
		return nil, ErrNaNOrInfinity
	}
	var buf [64]byte
	v := valueOf(redisnum.AppendLongDouble(buf[:0], sum))
	s.write(st, string(key), entry{v: v, exp: old.exp}, old, had)
	return v.bytes(), nil
}

// Append appends val to the value of key, as APPEND does, creating the key if it does
// not exist and keeping its expiry if it does, and returns the new length. A result
// longer than limit bytes gives ErrTooLarge and changes nothing. The value is copied
// whole, so appending costs the length of the result.
func (s *Store) Append(key, val []byte, limit int) (int, error) {
	st := s.stripeOf(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	old, had := s.live(st, key)
	prev := old.v.bytes()
	if len(prev) > limit-len(val) {
		return 0, ErrTooLarge
	}
	v := newValue(len(prev) + len(val))
	b := v.bytes()
	copy(b[copy(b, prev):], val)
	s.write(st, string(key), entry{v: v, exp: old.exp}, old, had)
	return len(b), nil
}

// SetRange writes val into the value of key at offset, as SETRANGE does: the value is
// padded with zero bytes to reach offset, a missing key is created, and the key keeps
// its expiry. It returns the length of the value. An empty val changes nothing (and
// creates no key); a result longer than limit bytes gives ErrTooLarge and changes
// nothing. offset must not be negative.
func (s *Store) SetRange(key []byte, offset int64, val []byte, limit int) (int, error) {
	st := s.stripeOf(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	old, had := s.live(st, key)
	prev := old.v.bytes()
	if len(val) == 0 {
		return len(prev), nil
	}
	if offset > int64(limit-len(val)) {
		return 0, ErrTooLarge
	}
	end := int(offset) + len(val)
	v := newValue(max(len(prev), end))
	b := v.bytes()
	copy(b, prev)
	copy(b[offset:], val)
	s.write(st, string(key), entry{v: v, exp: old.exp}, old, had)
	return len(b), nil
}

// GetDel removes key and returns the value it had, as GETDEL does. The returned
// slice must not be modified.
func (s *Store) GetDel(key []byte) ([]byte, bool) {
	st := s.stripeOf(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := s.live(st, key)
	if ok {
		s.drop(st, string(key), e)
	}
	return e.v.bytes(), ok
}

// ExpiryChange is what GetEx does to a key's expiry.
type ExpiryChange struct {
	// Persist removes the expiry.
	Persist bool
	// At, when not zero, sets the expiry to this Unix time in milliseconds; a time
	// not after now removes the key.
	At int64
}

// GetEx returns the value of key and changes its expiry as c says, as GETEX does.
// The returned slice must not be modified.
func (s *Store) GetEx(key []byte, c ExpiryChange) ([]byte, bool) {
	st := s.stripeOf(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := s.live(st, key)
	if !ok {
		return nil, false
	}
	switch {
	case c.At != 0:
		s.setExpiry(st, key, e, c.At)
	case c.Persist && e.exp != 0:
		s.write(st, string(key), entry{v: e.v}, e, true)
	}
	return e.v.bytes(), true
}

// setExpiry gives key, whose live entry in the write-locked st is e, the expiry at
// (Unix milliseconds), or removes it if at is not after now.
func (s *Store) setExpiry(st *stripe, key []byte, e entry, at int64) {
	if at <= s.now().UnixMilli() {
		s.drop(st, string(key), e)
		return
	}
	exp := int64(math.MaxInt64) // past 2262, as far as a Unix nanosecond reaches
	if at <= math.MaxInt64/int64(time.Millisecond) {
		exp = at * int64(time.Millisecond)
	}
	s.write(st, string(key), entry{v: e.v, exp: exp}, e, true)
}

// expiryMillis returns the Unix millisecond of an expiry in Unix nanoseconds.
func expiryMillis(exp int64) int64 { return exp / int64(time.Millisecond) }
