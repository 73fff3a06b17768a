package store

import "bytes"

// ExpireCond is the condition of Expire, as EXPIRE's options give it; zero means
// always. XX may be combined with GT or LT.
type ExpireCond uint8

const (
	// ExpireNX sets the expiry only if the key has none.
	ExpireNX ExpireCond = 1 << iota
	// ExpireXX sets it only if the key has one.
	ExpireXX
	// ExpireGT sets it only if it is later than the key's (a key without an expiry
	// counts as expiring never, so it never passes).
	ExpireGT
	// ExpireLT sets it only if it is earlier than the key's (a key without an expiry
	// always passes).
	ExpireLT
)

// Expire sets key's expiry to at, in Unix milliseconds (Redis keeps expiries in
// milliseconds), if key exists and cond holds, as the EXPIRE family does, and reports
// whether it did. An expiry not after now removes the key, and counts as done. The
// table keeps Unix nanoseconds, so expiries past the year 2262 are kept as 2262.
func (s *Store) Expire(key []byte, at int64, cond ExpireCond) bool {
	st := s.stripeOf(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := s.live(st, key)
	if !ok {
		return false
	}
	cur := expiryMillis(e.exp)
	switch {
	case cond&ExpireNX != 0 && e.exp != 0,
		cond&ExpireXX != 0 && e.exp == 0,
		cond&ExpireGT != 0 && (e.exp == 0 || at <= cur),
		cond&ExpireLT != 0 && e.exp != 0 && at >= cur:
		return false
	}
	s.setExpiry(st, key, e, at)
	return true
}

// Persist removes key's expiry, as PERSIST does, and reports whether it had one.
func (s *Store) Persist(key []byte) bool {
	st := s.stripeOf(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	e, ok := s.live(st, key)
	if !ok || e.exp == 0 {
		return false
	}
	s.write(st, string(key), entry{v: e.v}, e, true)
	return true
}

// ExpireTime returns key's expiry in Unix milliseconds, as PEXPIRETIME does; exists
// and hasExpiry are as for TTL.
func (s *Store) ExpireTime(key []byte) (at int64, exists, hasExpiry bool) {
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
	if now := s.nowNanos(); e.expired(now) {
		s.expire(st, key, now)
		return 0, false, false
	}
	return expiryMillis(e.exp), true, true
}

// Copy copies the value and expiry of src to dst, as COPY does, unless src does not
// exist or dst does and replace is false; it reports whether it copied. src and dst
// must differ. Both stripes are locked together, so the copy is atomic.
func (s *Store) Copy(src, dst []byte, replace bool) bool {
	keys := [2][]byte{src, dst}
	var idxBuf, orderBuf [2]int
	idx, order := s.stripeIndexes(keys[:], idxBuf[:0], orderBuf[:0])
	s.lockAll(order)
	defer s.unlockAll(order)
	from, to := &s.stripes[idx[0]].stripe, &s.stripes[idx[1]].stripe
	e, ok := s.live(from, src)
	if !ok {
		return false
	}
	old, had := s.live(to, dst)
	if had && !replace {
		return false
	}
	// The copy has an access clock of its own.
	s.write(to, string(dst), entry{v: valueOf(e.v.bytes()), exp: e.exp}, old, had)
	return true
}

// Rename moves the value and expiry of src to dst, replacing dst unless nx is set, as
// RENAME and RENAMENX do, and reports whether it moved it: false when nx is set and
// dst exists, or when src and dst are the same key with nx set (RENAMENX's 0; RENAME
// of a key to itself does nothing and reports true). A missing src gives
// ErrNoSuchKey.
func (s *Store) Rename(src, dst []byte, nx bool) (bool, error) {
	keys := [2][]byte{src, dst}
	var idxBuf, orderBuf [2]int
	idx, order := s.stripeIndexes(keys[:], idxBuf[:0], orderBuf[:0])
	s.lockAll(order)
	defer s.unlockAll(order)
	from, to := &s.stripes[idx[0]].stripe, &s.stripes[idx[1]].stripe
	e, ok := s.live(from, src)
	switch {
	case !ok:
		return false, ErrNoSuchKey
	case bytes.Equal(src, dst):
		return !nx, nil
	}
	old, had := s.live(to, dst)
	if had && nx {
		return false, nil
	}
	s.drop(from, string(src), e)
	s.write(to, string(dst), e, old, had)
	return true, nil
}
