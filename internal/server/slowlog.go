package server

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The slow log keeps the commands that took longer than slowlog-log-slower-than
// microseconds, newest first, at most slowlog-max-len of them, as Redis's does. A
// command's time runs from the moment it starts to the moment its reply is written,
// so it includes what the command waits for (its group's consensus, a forward to
// another node); commands that wait on purpose (DHT.BARRIER, WAIT) are not logged.

const (
	// slowlogMaxArgs and slowlogMaxArgLen bound what an entry keeps of a
	// command's arguments, as Redis's SLOWLOG_ENTRY_MAX_ARGC and _STRING.
	slowlogMaxArgs   = 32
	slowlogMaxArgLen = 128
	// The defaults of slowlog-log-slower-than (microseconds) and slowlog-max-len.
	defaultSlowlogSlower = 10000
	defaultSlowlogMaxLen = 128
)

// slowEntry is one command of the slow log.
type slowEntry struct {
	id         int64
	at         int64 // Unix seconds
	micros     int64
	args       []string
	addr, name string
}

// slowlog is the node's slow log.
type slowlog struct {
	// slower is slowlog-log-slower-than in microseconds (negative: log nothing),
	// maxLen slowlog-max-len; CONFIG SET changes them.
	slower, maxLen atomic.Int64

	mu      sync.Mutex
	entries []slowEntry // newest first
	nextID  int64
}

func newSlowlog() *slowlog {
	l := &slowlog{}
	l.slower.Store(defaultSlowlogSlower)
	l.maxLen.Store(defaultSlowlogMaxLen)
	return l
}

// note logs a command of cl that took d and has just ended, if it was slow.
func (l *slowlog) note(cl *client, args [][]byte, d time.Duration) {
	slower := l.slower.Load()
	if slower < 0 || d.Microseconds() < slower {
		return
	}
	e := slowEntry{at: time.Now().Add(-d).Unix(), micros: d.Microseconds(), args: slowArgs(args)}
	if cl != nil {
		e.name = cl.getName()
		if cl.remote != nil {
			e.addr = cl.remote.String()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e.id = l.nextID
	l.nextID++
	l.entries = append(l.entries, slowEntry{})
	copy(l.entries[1:], l.entries)
	l.entries[0] = e
	l.trim()
}

// trim drops the oldest entries beyond slowlog-max-len; l.mu is held.
func (l *slowlog) trim() {
	if n := int(l.maxLen.Load()); len(l.entries) > n {
		clear(l.entries[n:])
		l.entries = l.entries[:n]
	}
}

// slowArgs is what an entry keeps of a command's arguments: at most 32, the last
// of them saying how many more there were, each at most 128 bytes, saying how many
// more bytes it had.
func slowArgs(args [][]byte) []string {
	n := min(len(args), slowlogMaxArgs)
	out := make([]string, n)
	for i := range n {
		if i == slowlogMaxArgs-1 && len(args) > slowlogMaxArgs {
			out[i] = fmt.Sprintf("... (%d more arguments)", len(args)-slowlogMaxArgs+1)
			break
		}
		a := args[i]
		if len(a) > slowlogMaxArgLen {
			out[i] = fmt.Sprintf("%s... (%d more bytes)", a[:slowlogMaxArgLen], len(a)-slowlogMaxArgLen)
			continue
		}
		out[i] = string(a)
	}
	return out
}

// get returns the newest n entries (all when n is negative).
func (l *slowlog) get(n int) []slowEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n < 0 || n > len(l.entries) {
		n = len(l.entries)
	}
	return append([]slowEntry(nil), l.entries[:n]...)
}

func (l *slowlog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *slowlog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = nil
}

// setMaxLen is CONFIG SET slowlog-max-len: the oldest entries beyond it go.
func (l *slowlog) setMaxLen(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maxLen.Store(n)
	l.trim()
}

// cmdSlowlog is SLOWLOG GET [count], LEN, RESET and HELP; exec has checked the
// subcommand's arity.
func cmdSlowlog(s *Server, conn *session, args [][]byte) {
	sub := strings.ToUpper(string(args[1]))
	switch {
	case sub == "HELP":
		writeHelp(conn, "slowlog", args,
			"GET [<count>]",
			"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
			"    Entries are made of:",
			"    id, timestamp, time in microseconds, arguments array, client IP and port,",
			"    client name",
			"LEN",
			"    Return the length of the slowlog.",
			"RESET",
			"    Reset the slowlog.",
		)
	case sub == "GET" && len(args) > 3:
		conn.WriteError(fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%s'. Try SLOWLOG HELP.", truncate(args[1], 128)))
	case sub == "GET":
		n := 10
		if len(args) == 3 {
			v, err := strconv.ParseInt(string(args[2]), 10, 64)
			if err != nil || v < -1 {
				conn.WriteError("ERR count should be greater than or equal to -1")
				return
			}
			n = int(v)
		}
		entries := s.slowlog.get(n)
		conn.WriteArray(len(entries))
		for _, e := range entries {
			conn.WriteArray(6)
			conn.WriteInt64(e.id)
			conn.WriteInt64(e.at)
			conn.WriteInt64(e.micros)
			writeBulks(conn, e.args)
			conn.WriteBulkString(e.addr)
			conn.WriteBulkString(e.name)
		}
	case sub == "LEN":
		conn.WriteInt(s.slowlog.len())
	case sub == "RESET":
		s.slowlog.reset()
		conn.WriteString("OK")
	}
}
