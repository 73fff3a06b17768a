package server

import (
	"testing"

	"github.com/dhtkv/dht/internal/store"
)

// TestCounterAllocations: INCR on the event loop allocates only what the store's
// write does (the new value and the key's string for the map, as SET), nothing to
// parse or reply; GET allocates nothing.
func TestCounterAllocations(t *testing.T) {
	conn := &session{db: store.New(store.Options{}), out: make([]byte, 0, 256)}
	run := func(fn func(*Server, *session, [][]byte), args ...string) func() {
		b := make([][]byte, len(args))
		for i, a := range args {
			b[i] = []byte(a)
		}
		return func() {
			conn.out = conn.out[:0]
			fn(nil, conn, b)
		}
	}
	run(cmdSet, "SET", "counter", "1")()
	tests := []struct {
		name string
		max  float64
		f    func()
	}{
		{"GET", 0, run(cmdGet, "GET", "counter")},
		{"INCR", 2, run(cmdIncr, "INCR", "counter")},
		{"DECRBY", 2, run(cmdDecrBy, "DECRBY", "counter", "7")},
		{"INCRBY error", 0, run(cmdIncrBy, "INCRBY", "counter", "x")},
		{"STRLEN", 0, run(cmdStrlen, "STRLEN", "counter")},
		{"GETRANGE", 0, run(cmdGetRange, "GETRANGE", "counter", "0", "-1")},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got > tt.max {
			t.Errorf("%s: %v allocations, want at most %v", tt.name, got, tt.max)
		}
	}
}
