package server

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeNow is a clock a test moves.
type fakeNow struct{ ns atomic.Int64 }

func newFakeNow() *fakeNow {
	c := &fakeNow{}
	c.ns.Store(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeNow) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeNow) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestLatencyMonitorSamples(t *testing.T) {
	clock := newFakeNow()
	m := newLatencyMonitor(clock.now)
	m.note("command", time.Hour)
	if len(m.all()) != 0 {
		t.Fatal("a monitor that is off recorded an event")
	}
	m.threshold.Store(10)
	m.note("command", 9*time.Millisecond)
	if len(m.all()) != 0 {
		t.Fatal("an event under the threshold was recorded")
	}
	start := clock.now().Unix()
	m.note("command", 10*time.Millisecond)
	m.note("command", 30*time.Millisecond) // the same second: the worse one stays
	m.note("command", 20*time.Millisecond)
	clock.advance(time.Second)
	m.note("command", 15*time.Millisecond)
	ts, ok := m.series("command")
	if !ok {
		t.Fatal("no series for command")
	}
	want := []latencySample{{start, 30}, {start + 1, 15}}
	if got := ts.inOrder(); fmt.Sprint(got) != fmt.Sprint(want) || ts.max != 30 || ts.latest() != want[1] {
		t.Fatalf("samples %v, max %d, latest %v; want %v, 30, %v", got, ts.max, ts.latest(), want, want[1])
	}
	if _, ok := m.series("COMMAND"); ok {
		t.Error("events are found by their exact name, as Redis's")
	}

	// The ring keeps the last latencyHistoryLen seconds' samples.
	for i := range latencyHistoryLen + 5 {
		clock.advance(time.Second)
		m.note("wal-fsync", time.Duration(100+i)*time.Millisecond)
	}
	ts, _ = m.series("wal-fsync")
	got := ts.inOrder()
	if len(got) != latencyHistoryLen || got[0].ms != 105 || got[len(got)-1].ms != 100+latencyHistoryLen+4 {
		t.Fatalf("after %d samples: %d kept, oldest %v, newest %v", latencyHistoryLen+5, len(got), got[0], got[len(got)-1])
	}
	for i := 1; i < len(got); i++ {
		if got[i].at <= got[i-1].at {
			t.Fatalf("samples out of order: %v then %v", got[i-1], got[i])
		}
	}

	if n := m.reset([]string{"COMMAND", "command", "nosuch"}); n != 1 {
		t.Errorf("reset of command twice = %d, want 1 (names match case-insensitively)", n)
	}
	if n := m.reset(nil); n != 1 {
		t.Errorf("reset of all = %d, want 1", n)
	}
}

// TestLatencyCommands runs LATENCY through exec, with commands made slow by moving
// the session's clock back (a command's time starts where the one before it ended).
func TestLatencyCommands(t *testing.T) {
	e := newExecClock(t)
	clock := newFakeNow()
	e.s.latency = newLatencyMonitor(clock.now)
	slow := func(cmd string, d time.Duration) string {
		e.w.clock = e.s.mono() - d
		return e.do(cmd)
	}
	e.expect("LATENCY DOCTOR", bulk(latencyDisabledReport))
	e.expect("CONFIG SET latency-monitor-threshold 20", "+OK\r\n")
	e.expect("LATENCY DOCTOR", bulk(latencyCalmReport))
	slow("GET {k}a", 10*time.Millisecond)
	e.expect("LATENCY LATEST", "*0\r\n")
	at := clock.now().Unix()
	slow("GET {k}a", 50*time.Millisecond)
	clock.advance(3 * time.Second)
	slow("SET {k}a v", 70*time.Millisecond)
	slow("CLIENT LIST", 25*time.Millisecond)
	e.expect("LATENCY LATEST", fmt.Sprintf("*2\r\n*4\r\n$7\r\ncommand\r\n:%d\r\n:%d\r\n:70\r\n*4\r\n$12\r\nfast-command\r\n:%d\r\n:%d\r\n:50\r\n",
		at+3, latencyOf(e, "command", at+3), at, latencyOf(e, "fast-command", at)))
	e.expect("LATENCY HISTORY fast-command", fmt.Sprintf("*1\r\n*2\r\n:%d\r\n:%d\r\n", at, latencyOf(e, "fast-command", at)))
	e.expect("LATENCY HISTORY nosuch", "*0\r\n")

	clock.advance(2 * time.Second)
	graph := e.do("LATENCY GRAPH command")
	for _, want := range []string{"command - high 70 ms, low 70 ms (all time high 70 ms)\n", strings.Repeat("-", graphColumns), "\n#\n|\n"} {
		if !strings.Contains(graph, want) {
			t.Errorf("LATENCY GRAPH command lacks %q:\n%s", want, graph)
		}
	}
	e.expect("LATENCY GRAPH nosuch", "-ERR No samples available for event 'nosuch'\r\n")
	report := e.do("LATENCY DOCTOR")
	for _, want := range []string{"1. command: 1 latency spikes (average ", "2. fast-command: 1 latency spikes", "SLOWLOG GET"} {
		if !strings.Contains(report, want) {
			t.Errorf("LATENCY DOCTOR lacks %q:\n%s", want, report)
		}
	}
	// The slow log keeps only commands over 10 ms by default, less than 20 ms: no
	// advice to change it. Over it, there is.
	if strings.Contains(report, "CONFIG SET slowlog-log-slower-than") {
		t.Errorf("LATENCY DOCTOR advises to change a slow log that keeps the slow commands:\n%s", report)
	}
	e.expect("CONFIG SET slowlog-log-slower-than 50000", "+OK\r\n")
	if report := e.do("LATENCY DOCTOR"); !strings.Contains(report, "'CONFIG SET slowlog-log-slower-than 20000'") {
		t.Errorf("LATENCY DOCTOR does not advise to lower the slow log's threshold:\n%s", report)
	}
	e.expect("CONFIG SET slowlog-log-slower-than 10000", "+OK\r\n")

	e.expect("LATENCY RESET nosuch FAST-COMMAND", ":1\r\n")
	e.expect("LATENCY RESET", ":1\r\n")
	e.expect("LATENCY LATEST", "*0\r\n")
	e.expect("LATENCY DOCTOR", bulk(latencyCalmReport))
	e.expect("CONFIG SET latency-monitor-threshold 0", "+OK\r\n")
	slow("GET {k}a", time.Second)
	e.expect("LATENCY LATEST", "*0\r\n")
	e.expect("LATENCY DOCTOR", bulk(latencyDisabledReport))
}

// latencyOf returns the latency the monitor kept for event at second at.
func latencyOf(e *execClock, event string, at int64) int64 {
	ts, _ := e.s.latency.series(event)
	for _, s := range ts.inOrder() {
		if s.at == at {
			return s.ms
		}
	}
	return -1
}

func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

func TestLatencyGraph(t *testing.T) {
	var ts latencySeries
	now := int64(1_000_000)
	for i, ms := range []int64{10, 40, 25, 100} {
		ts.samples[i] = latencySample{at: now - int64(90-30*i), ms: ms}
	}
	ts.next, ts.max = 4, 120
	got := latencyGraph("command", ts, now)
	want := "command - high 100 ms, low 10 ms (all time high 120 ms)\n" +
		strings.Repeat("-", graphColumns) + "\n" +
		"   #\n" +
		"   |\n" +
		" _ |\n" +
		"_|#|\n" +
		"\n" +
		"1130\n" +
		"mm0s\n" +
		"  s \n" +
		"\n"
	if got != want {
		t.Errorf("graph:\n%s\nwant:\n%s", got, want)
	}
	if l := agoLabel(2 * 86400); l != "2d" {
		t.Errorf("agoLabel(2 days) = %q", l)
	}
}
