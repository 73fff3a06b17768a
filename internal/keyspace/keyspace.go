// Package keyspace maps keys to Redis Cluster hash slots.
//
// The mapping is byte-for-byte the one Redis Cluster uses: a key's slot is
// CRC16-XMODEM of its hash tag (or of the whole key) modulo 16384, so clients
// written for Redis Cluster route keys to the same slots as a dht cluster.
package keyspace

import (
	"errors"
	"fmt"
	"strconv"
)

// Slots is the number of hash slots in the keyspace.
const Slots = 16384

// crcPoly is the CRC16-CCITT generator polynomial x^16 + x^12 + x^5 + 1.
const crcPoly = 0x1021

// crcTable is the byte-at-a-time lookup table for CRC16. It is filled once at
// package initialisation and never written afterwards.
var crcTable = makeCRCTable()

// makeCRCTable computes the CRC of every single-byte message.
func makeCRCTable() [256]uint16 {
	var t [256]uint16
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ crcPoly
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}

// CRC16 returns the CRC16-XMODEM checksum of b (polynomial 0x1021, initial
// value 0, no reflection, no final XOR), the checksum Redis Cluster uses.
func CRC16(b []byte) uint16 {
	return crc16(b)
}

// crc16 is CRC16 for both strings and byte slices, so that SlotOf needs
// neither a conversion (which would allocate) nor package unsafe.
func crc16[T string | []byte](b T) uint16 {
	var crc uint16
	for i := 0; i < len(b); i++ {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^b[i]]
	}
	return crc
}

// HashTag returns the part of key that determines its slot. If key contains a
// '{' followed later by a '}' with at least one byte between them, only the
// bytes between the first '{' and the first '}' after it are hashed;
// otherwise the whole key is. The result aliases key.
//
// For example "{user1000}.following" hashes "user1000", "foo{{bar}}zap"
// hashes "{bar", and "foo{}{bar}" hashes the whole key, as in Redis.
func HashTag(key []byte) []byte {
	return hashTag(key)
}

// hashTag is HashTag for both strings and byte slices.
func hashTag[T string | []byte](key T) T {
	open := indexByte(key, '{')
	if open < 0 {
		return key
	}
	rest := key[open+1:]
	end := indexByte(rest, '}')
	if end <= 0 {
		return key
	}
	return rest[:end]
}

// indexByte returns the index of the first c in s, or -1.
func indexByte[T string | []byte](s T, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// Slot returns the hash slot of key, in [0, Slots).
func Slot(key []byte) int {
	return int(crc16(hashTag(key)) & (Slots - 1))
}

// SlotOf returns the hash slot of key, in [0, Slots). It does not allocate.
func SlotOf(key string) int {
	return int(crc16(hashTag(key)) & (Slots - 1))
}

// Range is a contiguous run of hash slots. Both ends are inclusive, as in the
// slot ranges Redis prints, so Range{0, 5460} holds 5461 slots.
type Range struct {
	Start, End int
}

// Contains reports whether slot lies within r.
func (r Range) Contains(slot int) bool {
	return r.Start <= slot && slot <= r.End
}

// Len returns the number of slots in r, or 0 if r is empty (End < Start).
func (r Range) Len() int {
	return max(r.End-r.Start+1, 0)
}

// String formats r as Redis does: "0-5460", or "42" for a single slot.
func (r Range) String() string {
	if r.Start == r.End {
		return strconv.Itoa(r.Start)
	}
	return strconv.Itoa(r.Start) + "-" + strconv.Itoa(r.End)
}

// ErrSplitCount is returned by Split when asked for fewer than one or more
// than Slots ranges.
var ErrSplitCount = errors.New("keyspace: split count must be between 1 and 16384")

// Split divides the slots 0..Slots-1 into n contiguous, non-empty ranges in
// ascending order whose sizes differ by at most one. Range i ends just before
// slot round((i+1)*Slots/n), which is the layout redis-cli --cluster create
// assigns to n primaries: for n=3 it is 0-5460, 5461-10922, 10923-16383.
// (redis-cli accumulates the boundaries in float32, which drifts from the
// exact layout from n=78 on; Split stays exact and even for every n.)
//
// It returns an error wrapping ErrSplitCount if n < 1 or n > Slots.
func Split(n int) ([]Range, error) {
	if n < 1 || n > Slots {
		return nil, fmt.Errorf("%w: got %d", ErrSplitCount, n)
	}
	ranges := make([]Range, n)
	start := 0
	for i := range ranges {
		// round((i+1)*Slots/n), halves rounded up, in exact integer arithmetic.
		next := (2*(i+1)*Slots + n) / (2 * n)
		ranges[i] = Range{Start: start, End: next - 1}
		start = next
	}
	return ranges, nil
}
