package lincheck_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/lincheck"
)

// Hand-built operations; times are in arbitrary units.

func set(client int, key, v string, call, ret int64) lincheck.Op {
	return lincheck.Op{Client: client, Kind: lincheck.Set, Key: key, Value: v, Call: call, Return: ret}
}

func failedSet(client int, key, v string, call, ret int64) lincheck.Op {
	o := set(client, key, v, call, ret)
	o.Err = "i/o timeout"
	return o
}

func get(client int, key, v string, call, ret int64) lincheck.Op {
	return lincheck.Op{Client: client, Kind: lincheck.Get, Key: key, Value: v, Found: true, Call: call, Return: ret}
}

func absent(client int, key string, call, ret int64) lincheck.Op {
	return lincheck.Op{Client: client, Kind: lincheck.Get, Key: key, Call: call, Return: ret}
}

func history(ops ...lincheck.Op) *lincheck.History {
	return &lincheck.History{Seed: 1, Keys: []string{"x", "y"}, Start: time.Now(), Ops: ops}
}

func TestCheckLinearizable(t *testing.T) {
	h := history(
		set(0, "x", "a", 0, 10),
		absent(1, "x", 1, 2), // before set a takes effect
		get(1, "x", "a", 5, 12),
		set(0, "x", "b", 20, 30),
		get(1, "x", "a", 21, 25), // concurrent with set b, ordered before it
		get(2, "x", "b", 26, 40),
		absent(2, "y", 0, 100),
		set(0, "y", "c", 40, 50),
		get(1, "y", "c", 45, 60),
		set(3, "y", "d", 55, 56), // closed intervals: touching is concurrent
		get(3, "y", "c", 56, 70),
	)
	if err := (lincheck.Checker{Dir: t.TempDir()}).Check(h); err != nil {
		t.Fatal(err)
	}
}

// mustFail checks that h fails as not linearizable, names the key and points
// at a visualization that exists.
func mustFail(t *testing.T, h *lincheck.History, key string) {
	t.Helper()
	dir := t.TempDir()
	err := lincheck.Checker{Dir: dir}.Check(h)
	if !errors.Is(err, lincheck.ErrNotLinearizable) {
		t.Fatalf("Check = %v; want ErrNotLinearizable", err)
	}
	msg := err.Error()
	t.Log(msg)
	if !strings.Contains(msg, `key "`+key+`"`) {
		t.Errorf("error does not name key %q: %s", key, msg)
	}
	_, path, ok := strings.Cut(msg, "visualization: ")
	if !ok {
		t.Fatalf("error names no visualization: %s", msg)
	}
	path, _, _ = strings.Cut(path, "\n")
	if !strings.HasPrefix(path, dir) {
		t.Errorf("visualization %s is not in %s", path, dir)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), "<html") {
		t.Errorf("visualization %s: %d bytes, %v", path, len(b), err)
	}
}

func TestCheckStaleRead(t *testing.T) {
	t.Run("after a later write returned", func(t *testing.T) {
		mustFail(t, history(
			set(0, "y", "u", 0, 10), // a key that is fine
			set(0, "x", "a", 0, 10),
			set(0, "x", "b", 20, 30),
			get(1, "x", "a", 40, 50),
		), "x")
	})
	t.Run("after another client saw the later write", func(t *testing.T) {
		// Set b is still running, but once a read saw b, a is stale.
		mustFail(t, history(
			set(0, "x", "a", 0, 10),
			set(0, "x", "b", 20, 100),
			get(1, "x", "b", 30, 40),
			get(2, "x", "a", 50, 60),
		), "x")
	})
	t.Run("of a value never written", func(t *testing.T) {
		mustFail(t, history(get(1, "x", "zz", 0, 10)), "x")
	})
}

func TestCheckLostWrite(t *testing.T) {
	// The last read stands for the read-back at the end of a run.
	t.Run("read back absent", func(t *testing.T) {
		mustFail(t, history(
			set(0, "x", "a", 0, 10),
			absent(1, "x", 100, 110),
		), "x")
	})
	t.Run("read back older value", func(t *testing.T) {
		mustFail(t, history(
			set(0, "x", "a", 0, 10),
			set(1, "x", "b", 20, 30),
			get(2, "x", "a", 100, 110),
		), "x")
	})
	t.Run("read back newest value", func(t *testing.T) {
		h := history(
			set(0, "x", "a", 0, 10),
			set(1, "x", "b", 20, 30),
			get(2, "x", "b", 100, 110),
		)
		if err := (lincheck.Checker{Dir: t.TempDir()}).Check(h); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCheckUnknownOutcome(t *testing.T) {
	pass := []struct {
		name string
		h    *lincheck.History
	}{
		{"failed write read later", history(
			set(0, "x", "a", 0, 10),
			failedSet(0, "x", "b", 20, 30),
			get(1, "x", "b", 100, 110),
		)},
		{"failed write read before it failed", history(
			failedSet(0, "x", "b", 20, 30),
			get(1, "x", "b", 22, 25),
		)},
		{"failed write never seen", history(
			set(0, "x", "a", 0, 10),
			failedSet(0, "x", "b", 20, 30),
			get(1, "x", "a", 100, 110),
		)},
		{"failed write takes effect long after its error", history(
			set(0, "x", "a", 0, 10),
			failedSet(0, "x", "b", 20, 30),
			get(1, "x", "a", 100, 110),
			get(1, "x", "b", 200, 210),
		)},
		{"failed write of a value another write also wrote, seen late", history(
			set(0, "x", "v", 0, 10),
			failedSet(1, "x", "v", 5, 15),
			get(2, "x", "v", 20, 30),
			set(0, "x", "w", 40, 50),
			get(2, "x", "v", 200, 210), // only the failed write can explain this
		)},
		{"failed read ignored", history(
			set(0, "x", "a", 0, 10),
			lincheck.Op{Client: 1, Kind: lincheck.Get, Key: "x", Value: "zz", Found: true, Call: 20, Return: 30, Err: "EOF"},
		)},
	}
	for _, tc := range pass {
		t.Run(tc.name, func(t *testing.T) {
			if err := (lincheck.Checker{Dir: t.TempDir()}).Check(tc.h); err != nil {
				t.Fatal(err)
			}
		})
	}
	fail := []struct {
		name string
		h    *lincheck.History
	}{
		{"failed write read before its call", history(
			get(1, "x", "b", 0, 10),
			failedSet(0, "x", "b", 20, 30),
		)},
		{"failed write seen, then undone", history(
			set(0, "x", "a", 0, 10),
			failedSet(0, "x", "b", 20, 30),
			get(1, "x", "b", 40, 50),
			get(1, "x", "a", 60, 70),
		)},
		{"acknowledged write lost beside a failed one", history(
			set(0, "x", "a", 0, 10),
			failedSet(0, "x", "b", 20, 30),
			absent(1, "x", 100, 110),
		)},
	}
	for _, tc := range fail {
		t.Run(tc.name, func(t *testing.T) { mustFail(t, tc.h, "x") })
	}
}

func TestCheckRejectsReturnBeforeCall(t *testing.T) {
	err := lincheck.Checker{}.Check(history(set(0, "x", "a", 10, 5)))
	if err == nil || !strings.Contains(err.Error(), "returns before its call") {
		t.Fatalf("Check = %v; want an error about the op's times", err)
	}
}

func TestCheckEmpty(t *testing.T) {
	if err := (lincheck.Checker{}).Check(history()); err != nil {
		t.Fatal(err)
	}
}
