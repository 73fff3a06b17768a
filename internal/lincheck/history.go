package lincheck

import (
	"fmt"
	"time"
)

// Kind is the command of an operation.
type Kind int

// The operations a history holds.
const (
	// Get reads a key: GET key.
	Get Kind = iota
	// Set writes a key: SET key value.
	Set
)

// String returns the command's name.
func (k Kind) String() string {
	switch k {
	case Get:
		return "get"
	case Set:
		return "set"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// Op is one operation of a history.
type Op struct {
	// Client is the client that issued the operation, from 0. Operations of
	// one client do not overlap in time.
	Client int
	Kind   Kind
	Key    string
	// Value is the value written by a Set, or read by a Get that found the
	// key.
	Value string
	// Found reports whether a Get found the key; a Get of an absent key has
	// Found false and Value "".
	Found bool
	// Call and Return are the times the operation was sent and its reply came
	// back, in nanoseconds since History.Start.
	Call, Return int64
	// Err is the error the operation got, or "" if it succeeded. A failed Get
	// had no effect and is ignored by the checker; a failed Set may or may not
	// have taken effect and is checked as one that may take effect at any
	// time after Call, or never.
	Err string
}

// String describes o for logs and failure messages.
func (o Op) String() string {
	var s string
	switch {
	case o.Kind == Set:
		s = fmt.Sprintf("set(%q, %q)", o.Key, o.Value)
	case o.Found:
		s = fmt.Sprintf("get(%q) = %q", o.Key, o.Value)
	default:
		s = fmt.Sprintf("get(%q) = absent", o.Key)
	}
	if o.Err != "" {
		s = fmt.Sprintf("%s failed: %s", s, o.Err)
	}
	return fmt.Sprintf("client %d [%d, %d] %s", o.Client, o.Call, o.Return, s)
}

// History is the operations one run recorded, on one clock.
type History struct {
	// Seed is the seed of the run's random choices.
	Seed uint64
	// Keys are the keys the run used. Each is assumed absent when the run
	// starts.
	Keys []string
	// Start is the instant the operations' times count from. It is a
	// time.Now value (it carries the monotonic clock), so times taken later,
	// such as those of CheckDurable's reads, are on the same clock.
	Start time.Time
	// Ops are the operations in order of their calls.
	Ops []Op
}

// Stats counts the operations of a history by kind and outcome.
type Stats struct {
	// Reads and Writes count the operations that succeeded.
	Reads, Writes int
	// FailedReads counts Gets that got an error (no effect).
	FailedReads int
	// UnknownWrites counts Sets that got an error (outcome unknown).
	UnknownWrites int
}

// Stats counts h's operations.
func (h *History) Stats() Stats {
	var s Stats
	for _, o := range h.Ops {
		switch {
		case o.Kind == Get && o.Err == "":
			s.Reads++
		case o.Kind == Get:
			s.FailedReads++
		case o.Err == "":
			s.Writes++
		default:
			s.UnknownWrites++
		}
	}
	return s
}
