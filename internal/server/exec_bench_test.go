package server

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/dhtkv/dht/internal/store"
)

// BenchmarkExec measures GET, SET and INCR through exec on an event loop's session, as the
// default user: the per-command cost of the hot path, counters included. Commands
// in a row are a pipelined batch (each one's time starts where the last one's
// ended); "alone" starts every command as the first of its batch, as a client that
// waits for each reply sends them.
func BenchmarkExec(b *testing.B) {
	cfg := oneNodeConfig(b)
	s := newServer(b, cfg)
	for _, bc := range []struct {
		name  string
		args  []string
		want  string
		alone bool
	}{
		{"SET", []string{"SET", "user:1000", "ada"}, "+OK\r\n", false},
		{"GET", []string{"GET", "user:1000"}, "$3\r\nada\r\n", false},
		{"GET/alone", []string{"GET", "user:1000"}, "$3\r\nada\r\n", true},
		{"INCR", []string{"INCR", "visits:1000"}, ":1\r\n", false},
		{"INCR/alone", []string{"INCR", "visits:1001"}, ":1\r\n", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			args := make([][]byte, len(bc.args))
			for i, a := range bc.args {
				args[i] = []byte(a)
			}
			raw := []byte(respCmd(bc.args...))
			cl := &client{s: s, authed: true}
			w := session{c: cl, db: s.store}
			if s.exec(&w, args, raw, false); string(w.out) != bc.want {
				b.Fatalf("%s answered %q, want %q", bc.name, w.out, bc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				if bc.alone {
					w.clock = 0
				}
				s.exec(&w, args, raw, false)
				w.out = w.out[:0]
			}
		})
	}
}

// BenchmarkExecGetSpread is BenchmarkExec's GET over 64Ki keys of 64-byte values,
// read in turn: most reads miss the CPU's caches, as GETs over a large table do,
// where BenchmarkExec's single key stays in them.
func BenchmarkExecGetSpread(b *testing.B) {
	cfg := oneNodeConfig(b)
	s := newServer(b, cfg)
	const n = 1 << 16
	val := bytes.Repeat([]byte("x"), 64)
	cmds := make([][][]byte, n)
	raws := make([][]byte, n)
	for i := range cmds {
		key := fmt.Sprintf("user:%d", i)
		s.store.Set([]byte(key), val, store.SetArgs{})
		cmds[i] = [][]byte{[]byte("GET"), []byte(key)}
		raws[i] = []byte(respCmd("GET", key))
	}
	cl := &client{s: s, authed: true}
	w := session{c: cl, db: s.store}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.exec(&w, cmds[i&(n-1)], raws[i&(n-1)], false)
		w.out = w.out[:0]
		i++
	}
}
