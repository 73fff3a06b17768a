package server

import (
	"math"
	"math/bits"
	"strings"
	"time"

	"github.com/dhtkv/dht/internal/redisnum"
)

// OBJECT and MEMORY describe how a key is kept. dht keeps every value as a byte
// string, so OBJECT ENCODING answers as Redis would choose for the same string;
// MEMORY USAGE estimates what the key takes in dht's table.

const (
	// embstrLimit is the longest string Redis keeps embstr-encoded.
	embstrLimit = 44
	// sharedIntegers bounds the integers Redis shares (OBJECT REFCOUNT answers
	// sharedRefcount for them).
	sharedIntegers = 10000
	sharedRefcount = math.MaxInt32
	errNoLFU       = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. " +
		"Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
)

// stringEncoding is the encoding Redis gives a string value when it stores it: int
// for a 64-bit integer of at most 20 characters, embstr up to 44 bytes, raw beyond.
func stringEncoding(v []byte) string {
	if len(v) <= 20 {
		if _, ok := redisnum.ParseInt(v); ok {
			return "int"
		}
	}
	if len(v) <= embstrLimit {
		return "embstr"
	}
	return "raw"
}

// keyedSubcommands are the container subcommands that name a key, with their
// arity and flags, so that they are routed to the key's node as Redis Cluster
// routes them.
func keyedSubcommands() []*command {
	keyed := func(name string, arity int, run func(*Server, *session, [][]byte)) *command {
		return &command{name: name, arity: arity, flags: []string{"readonly"}, firstKey: 2, lastKey: 2, step: 1, run: run}
	}
	return []*command{
		keyed("object|encoding", 3, cmdObject),
		keyed("object|freq", 3, cmdObject),
		keyed("object|idletime", 3, cmdObject),
		keyed("object|refcount", 3, cmdObject),
		keyed("memory|usage", -3, cmdMemory),
	}
}

// cmdObject is OBJECT ENCODING, FREQ, IDLETIME, REFCOUNT and HELP (exec has
// found the subcommand).
func cmdObject(_ *Server, conn *session, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	if sub == "help" {
		writeHelp(conn, "object", args,
			"ENCODING <key>",
			"    Return the kind of internal representation used in order to store the value",
			"    associated with a <key>.",
			"FREQ <key>",
			"    Return the access frequency index of the <key>. The returned integer is",
			"    proportional to the logarithm of the recent access frequency of the key.",
			"IDLETIME <key>",
			"    Return the idle time of the <key>, that is the approximated number of",
			"    seconds elapsed since the last access to the key.",
			"REFCOUNT <key>",
			"    Return the number of references of the value associated with the specified",
			"    <key>.",
		)
		return
	}
	// OBJECT reads the key without touching it, as Redis's does.
	if sub == "idletime" {
		if idle, ok := conn.db.IdleTime(args[2]); ok {
			conn.WriteInt64(int64(idle / time.Second))
		} else {
			conn.WriteNull()
		}
		return
	}
	v, ok := conn.db.Peek(args[2])
	if !ok {
		conn.WriteNull()
		return
	}
	switch sub {
	case "encoding":
		conn.WriteBulkString(stringEncoding(v))
	case "freq":
		conn.WriteError(errNoLFU)
	case "refcount":
		if n, ok := redisnum.ParseInt(v); ok && stringEncoding(v) == "int" && n >= 0 && n < sharedIntegers {
			conn.WriteInt(sharedRefcount)
			return
		}
		conn.WriteInt(1)
	}
}

// cmdMemory is MEMORY USAGE, STATS and HELP.
func cmdMemory(s *Server, conn *session, args [][]byte) {
	switch sub := strings.ToLower(string(args[1])); sub {
	case "help":
		writeHelp(conn, "memory", args,
			"STATS",
			"    Return information about the memory usage of the server.",
			"USAGE <key> [SAMPLES <count>]",
			"    Return memory in bytes used by <key> and its value. Nested values are",
			"    sampled up to <count> times (default: 5, 0 means sample all).",
		)
	case "usage":
		memoryUsage(conn, args)
	case "stats":
		s.memoryStats(conn)
	}
}

// memoryUsage is MEMORY USAGE key [SAMPLES count]; a string has nothing to
// sample, so the count is only checked.
func memoryUsage(conn *session, args [][]byte) {
	for i := 3; i < len(args); i++ {
		if !strings.EqualFold(string(args[i]), "samples") || i+1 >= len(args) {
			conn.WriteError(errSyntax)
			return
		}
		n, ok := redisnum.ParseInt(args[i+1])
		if !ok {
			conn.WriteError("ERR value is not an integer or out of range")
			return
		}
		if n < 0 {
			conn.WriteError(errSyntax)
			return
		}
		i++
	}
	v, ok := conn.db.Peek(args[2])
	if !ok {
		conn.WriteNull()
		return
	}
	_, _, volatile := conn.db.TTL(args[2])
	conn.WriteInt(keyUsage(len(args[2]), len(v), volatile))
}

const (
	// tableSlotBytes is what one key takes in a stripe's map besides its bytes:
	// the key's string header, the entry (value slice, expiry and stamp) and the
	// map's control byte, at the map's load.
	tableSlotBytes = (16 + 40 + 1) * 8 / 7
	// valueHeaderBytes is what the table keeps in front of a value's bytes, in the
	// same allocation: the key's access clock (OBJECT IDLETIME). The allocation is a
	// multiple of 8 bytes.
	valueHeaderBytes = 4
	// volatileSlotBytes is what a key with an expiry takes in the stripe's set of
	// keys with one.
	volatileSlotBytes = (16 + 1) * 8 / 7
)

// keyUsage estimates the bytes a key of keyLen bytes with a value of valLen bytes
// takes in the table: its slot in the map, and its key and value as allocated.
func keyUsage(keyLen, valLen int, volatile bool) int {
	n := tableSlotBytes + allocSize(keyLen) + allocSize((valueHeaderBytes+valLen+7)&^7)
	if volatile {
		n += volatileSlotBytes
	}
	return n
}

// allocSize approximates the size class Go's allocator rounds n bytes up to:
// steps of an eighth of the next power of two (at least 8 bytes), whole pages
// beyond 32 KiB.
func allocSize(n int) int {
	switch {
	case n == 0:
		return 0
	case n > 32<<10:
		return (n + 8191) &^ 8191
	}
	step := max(8, 1<<bits.Len(uint(n-1))/8)
	return (n + step - 1) / step * step
}

// memoryStats is MEMORY STATS: the figures of INFO memory that Redis's reply
// shares, as name-value pairs.
func (s *Server) memoryStats(conn *session) {
	used := heapSample()
	s.notePeak(used)
	keys := s.store.Len()
	perKey := int64(0)
	if keys > 0 {
		perKey = int64(used) / int64(keys)
	}
	conn.WriteArray(8)
	conn.WriteBulkString("peak.allocated")
	conn.WriteInt64(int64(s.stats.peakMemory.Load()))
	conn.WriteBulkString("total.allocated")
	conn.WriteInt64(int64(used))
	conn.WriteBulkString("keys.count")
	conn.WriteInt(keys)
	conn.WriteBulkString("keys.bytes-per-key")
	conn.WriteInt64(perKey)
}
