package store

import (
	"sync/atomic"
	"time"
	"unsafe"
)

// value is a stored value: a header holding the key's access clock, then the
// value's bytes, in one allocation.
//
// The access clock is the second (a Unix time, 32 bits) at which the key was last
// read or written, as the store's clock gave it (see Tick). Writes set it; reads
// update it under the stripe's read lock, atomically, and only when it differs
// from the clock, so that a key read many times a second is written once a second
// and a hot GET does not dirty a cache line on every call. Kept in front of the
// bytes, it shares their first cache line, which a read loads anyway to copy the
// value out: an entry of the map costs no word more for it, and a read no memory
// it would not touch.
//
// The value's bytes are never modified once stored; the header is the only part
// of the allocation that changes, and it is not part of any slice handed out.
type value []byte

// valueHeader is the size of a value's header: the 32-bit access clock.
const valueHeader = 4

// newValue returns a value of n bytes, all zero, whose clock reads 0 (the store
// sets it when it writes the value). Its capacity is a multiple of 8, so that the
// allocator aligns it to 8 bytes, as the clock's atomic operations need, whichever
// size class serves it.
func newValue(n int) value {
	return value(make([]byte, valueHeader+n, (valueHeader+n+7)&^7))
}

// valueOf returns a value holding a copy of b.
func valueOf(b []byte) value {
	v := newValue(len(b))
	copy(v[valueHeader:], b)
	return v
}

// bytes returns the value's bytes, which must not be modified; nil for the zero
// value (no key). Their capacity ends with them, so that appending to them copies.
func (v value) bytes() []byte {
	if v == nil {
		return nil
	}
	return v[valueHeader:len(v):len(v)]
}

// clock returns the value's access clock, in its header.
func (v value) clock() *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(unsafe.SliceData(v)))
}

// touch moves the value's access clock to now, writing it only if it differs.
func (v value) touch(now uint32) {
	if c := v.clock(); c.Load() != now {
		c.Store(now)
	}
}

// idle returns how long ago, by the clock now, the value's key was last read or
// written: whole seconds, 0 if the clock went back.
func (v value) idle(now uint32) time.Duration {
	d := int32(now - v.clock().Load()) // wraps in 2106 as the clock does; still right across it
	return time.Duration(max(d, 0)) * time.Second
}

// clockOf returns the access clock reading of t: its Unix second, in 32 bits.
func clockOf(t time.Time) uint32 { return uint32(t.Unix()) }
