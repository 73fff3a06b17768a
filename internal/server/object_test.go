package server

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/store"
)

// execClock runs commands through exec on one connection of a single-node server
// whose table runs on a clock the test moves.
type execClock struct {
	t   *testing.T
	s   *Server
	db  *store.Store
	now atomic.Int64
	w   session
}

func newExecClock(t *testing.T) *execClock {
	t.Helper()
	cfg := oneNodeConfig(t)
	s := newServer(t, cfg)
	e := &execClock{t: t, s: s}
	e.now.Store(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	e.db = store.New(store.Options{Now: func() time.Time { return time.Unix(0, e.now.Load()) }})
	e.w = session{c: &client{s: s, authed: true}, db: e.db}
	return e
}

// wait moves the clock on by d and ticks the table's access clock, as the server's
// sweep loop does.
func (e *execClock) wait(d time.Duration) {
	e.now.Add(int64(d))
	e.db.Tick()
}

// do runs a command given as space-separated words and returns its reply.
func (e *execClock) do(cmd string) string {
	e.t.Helper()
	words := strings.Fields(cmd)
	args := make([][]byte, len(words))
	for i, w := range words {
		args[i] = []byte(w)
	}
	e.w.out = e.w.out[:0]
	e.s.exec(&e.w, args, []byte(respCmd(words...)), false)
	return string(e.w.out)
}

func (e *execClock) expect(cmd, want string) {
	e.t.Helper()
	if got := e.do(cmd); got != want {
		e.t.Errorf("%s = %q, want %q", cmd, got, want)
	}
}

// TestObjectIdletime checks OBJECT IDLETIME against a moved clock: the seconds since
// the key was last read or written, where OBJECT, MEMORY USAGE, TYPE, EXISTS, TTL and
// the reads of a client in CLIENT NO-TOUCH mode leave it, and TOUCH touches it in that
// mode too.
func TestObjectIdletime(t *testing.T) {
	e := newExecClock(t)
	e.expect("OBJECT IDLETIME {k}x", "$-1\r\n")
	e.expect("SET {k}x hello", "+OK\r\n")
	e.expect("SET {k}o x", "+OK\r\n")
	e.expect("OBJECT IDLETIME {k}x", ":0\r\n")
	e.wait(1500 * time.Millisecond)
	e.expect("OBJECT IDLETIME {k}x", ":1\r\n")
	e.wait(10 * time.Second)
	e.expect("OBJECT IDLETIME {k}x", ":11\r\n")

	for _, cmd := range []string{"OBJECT ENCODING {k}x", "OBJECT REFCOUNT {k}x", "OBJECT FREQ {k}x", "MEMORY USAGE {k}x",
		"TYPE {k}x", "EXISTS {k}x", "TTL {k}x", "PTTL {k}x", "EXPIRETIME {k}x", "KEYS *", "SCAN 0", "RANDOMKEY", "DBSIZE"} {
		e.do(cmd)
		e.expect("OBJECT IDLETIME {k}x", ":11\r\n")
	}
	e.do("GET {k}x")
	for _, cmd := range []string{"GET {k}x", "STRLEN {k}x", "GETRANGE {k}x 0 1", "MGET {k}o {k}x", "LCS {k}x {k}o", "TOUCH {k}x",
		"GETEX {k}x", "APPEND {k}x !", "EXPIRE {k}x 1000", "PERSIST {k}x", "SET {k}x v"} {
		e.wait(3 * time.Second)
		if got := e.do("OBJECT IDLETIME {k}x"); got != ":3\r\n" {
			t.Errorf("before %s: OBJECT IDLETIME = %q, want :3", cmd, got)
		}
		e.do(cmd)
		if got := e.do("OBJECT IDLETIME {k}x"); got != ":0\r\n" {
			t.Errorf("after %s: OBJECT IDLETIME = %q, want :0", cmd, got)
		}
	}

	e.expect("CLIENT NO-TOUCH on", "+OK\r\n")
	e.wait(5 * time.Second)
	for _, cmd := range []string{"GET {k}x", "STRLEN {k}x", "GETRANGE {k}x 0 1", "MGET {k}x", "LCS {k}x {k}o"} {
		e.do(cmd)
		e.expect("OBJECT IDLETIME {k}x", ":5\r\n")
	}
	e.expect("GET {k}x", "$1\r\nv\r\n")
	e.expect("TOUCH {k}x", ":1\r\n")
	e.expect("OBJECT IDLETIME {k}x", ":0\r\n")
	e.expect("CLIENT NO-TOUCH off", "+OK\r\n")
	e.wait(2 * time.Second)
	e.do("GET {k}x")
	e.expect("OBJECT IDLETIME {k}x", ":0\r\n")

	// A key renamed or copied: the copy is new, the source was read.
	e.wait(4 * time.Second)
	e.expect("SET {k}a v", "+OK\r\n")
	e.wait(4 * time.Second)
	e.expect("COPY {k}a {k}b", ":1\r\n")
	e.expect("OBJECT IDLETIME {k}a", ":0\r\n")
	e.expect("OBJECT IDLETIME {k}b", ":0\r\n")
	e.wait(4 * time.Second)
	e.expect("RENAME {k}b {k}c", "+OK\r\n")
	e.expect("OBJECT IDLETIME {k}c", ":0\r\n")
	e.expect("OBJECT IDLETIME {k}a", ":4\r\n")
}
