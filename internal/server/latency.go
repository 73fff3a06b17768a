package server

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The latency monitor keeps, per event, the latest times that something took at least
// latency-monitor-threshold milliseconds, as Redis's does: at most one sample a
// second (the worst of that second), the last latencyHistoryLen of them, and the worst
// ever. The threshold is 0 (off) by default. The events are:
//
//   - command and fast-command: a command (one that Redis flags fast) took that long,
//     timed as the slow log times it, so in a replicated cluster with its wait for
//     consensus or a forward;
//   - wal-fsync: an fsync of the node's write-ahead log;
//   - expire-cycle: a pass of the sweep that removes expired keys.
//
// LATENCY LATEST, HISTORY, RESET, GRAPH, DOCTOR and HELP read and clear it;
// LATENCY HISTOGRAM reads the commands' latency histograms (see latencyhist.go).

const (
	// latencyHistoryLen is how many samples an event keeps, as Redis's
	// LATENCY_TS_LEN.
	latencyHistoryLen = 160
	// graphColumns is the width of a LATENCY GRAPH: samples past it go on to a
	// second graph below the first.
	graphColumns = 80
	// graphRows is the height of a LATENCY GRAPH's bars.
	graphRows = 4

	latencyDisabledReport = "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. " +
		"You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. " +
		"If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
	latencyCalmReport = "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the " +
		"slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n"
)

// latencySample is one second's worst latency of an event.
type latencySample struct {
	at int64 // Unix seconds; 0 for a slot of the ring not used yet
	ms int64
}

// latencySeries is an event's samples: a ring, next the slot the next sample takes.
type latencySeries struct {
	samples [latencyHistoryLen]latencySample
	next    int
	max     int64
}

// latest returns the newest sample.
func (ts *latencySeries) latest() latencySample {
	return ts.samples[(ts.next+latencyHistoryLen-1)%latencyHistoryLen]
}

// inOrder returns the samples, oldest first.
func (ts *latencySeries) inOrder() []latencySample {
	var out []latencySample
	for i := range latencyHistoryLen {
		if s := ts.samples[(ts.next+i)%latencyHistoryLen]; s.at != 0 {
			out = append(out, s)
		}
	}
	return out
}

// latencyMonitor is the node's latency monitor.
type latencyMonitor struct {
	// threshold is latency-monitor-threshold in milliseconds; 0 turns the monitor
	// off. CONFIG SET changes it.
	threshold atomic.Int64
	now       func() time.Time

	mu     sync.Mutex
	events map[string]*latencySeries
}

func newLatencyMonitor(now func() time.Time) *latencyMonitor {
	return &latencyMonitor{now: now, events: map[string]*latencySeries{}}
}

// over reports whether d reaches the threshold of a monitor that is on: what the
// hot paths ask before they name an event.
func (m *latencyMonitor) over(d time.Duration) bool {
	t := m.threshold.Load()
	return t > 0 && d.Milliseconds() >= t
}

// note records that event took d, if d reaches the threshold of a monitor that is
// on.
func (m *latencyMonitor) note(event string, d time.Duration) {
	if m.over(d) {
		m.add(event, d.Milliseconds())
	}
}

// add records a sample of ms milliseconds for event, now: a new one, or, in the
// second of the latest one, the worse of the two.
func (m *latencyMonitor) add(event string, ms int64) {
	now := m.now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := m.events[event]
	if ts == nil {
		ts = &latencySeries{}
		m.events[event] = ts
	}
	ts.max = max(ts.max, ms)
	last := &ts.samples[(ts.next+latencyHistoryLen-1)%latencyHistoryLen]
	if last.at == now {
		last.ms = max(last.ms, ms)
		return
	}
	ts.samples[ts.next] = latencySample{at: now, ms: ms}
	ts.next = (ts.next + 1) % latencyHistoryLen
}

// reset forgets the events named (case-insensitively), or all of them when none is,
// and returns how many it forgot.
func (m *latencyMonitor) reset(names []string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(names) == 0 {
		n := len(m.events)
		clear(m.events)
		return n
	}
	n := 0
	for _, name := range names {
		for event := range m.events {
			if strings.EqualFold(event, name) {
				delete(m.events, event)
				n++
			}
		}
	}
	return n
}

// series returns a copy of event's series (named exactly), and whether there is one.
func (m *latencyMonitor) series(event string) (latencySeries, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts, ok := m.events[event]
	if !ok {
		return latencySeries{}, false
	}
	return *ts, true
}

// all returns a copy of every event's series, by name.
func (m *latencyMonitor) all() map[string]latencySeries {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]latencySeries, len(m.events))
	for name, ts := range m.events {
		out[name] = *ts
	}
	return out
}

// commandEvent names the latency event of a command: fast-command for the commands
// Redis flags fast, command for the others.
func commandEvent(c *command) string {
	if slices.Contains(c.flags, "fast") {
		return "fast-command"
	}
	return "command"
}

// cmdLatency is LATENCY LATEST, HISTORY, RESET, GRAPH, DOCTOR, HISTOGRAM and HELP;
// exec has checked the subcommand's arity.
func cmdLatency(s *Server, conn *session, args [][]byte) {
	m := s.latency
	switch strings.ToLower(string(args[1])) {
	case "latest":
		events := m.all()
		conn.WriteArray(len(events))
		for _, name := range slices.Sorted(maps.Keys(events)) {
			ts := events[name]
			latest := ts.latest()
			conn.WriteArray(4)
			conn.WriteBulkString(name)
			conn.WriteInt64(latest.at)
			conn.WriteInt64(latest.ms)
			conn.WriteInt64(ts.max)
		}
	case "history":
		ts, _ := m.series(string(args[2]))
		samples := ts.inOrder()
		conn.WriteArray(len(samples))
		for _, sm := range samples {
			conn.WriteArray(2)
			conn.WriteInt64(sm.at)
			conn.WriteInt64(sm.ms)
		}
	case "reset":
		names := make([]string, len(args)-2)
		for i, a := range args[2:] {
			names[i] = string(a)
		}
		conn.WriteInt(m.reset(names))
	case "graph":
		ts, ok := m.series(string(args[2]))
		if !ok {
			conn.WriteError(fmt.Sprintf("ERR No samples available for event '%s'", args[2]))
			return
		}
		conn.WriteBulkString(latencyGraph(string(args[2]), ts, m.now().Unix()))
	case "doctor":
		conn.WriteBulkString(s.latencyReport())
	case "histogram":
		latencyHistogram(s, conn, args[2:])
	case "help":
		writeHelp(conn, "latency", args,
			"DOCTOR",
			"    Return a human readable latency analysis report.",
			"GRAPH <event>",
			"    Return an ASCII latency graph for the <event> class.",
			"HISTORY <event>",
			"    Return time-latency samples for the <event> class.",
			"LATEST",
			"    Return the latest latency samples for all events.",
			"RESET [<event> ...]",
			"    Reset latency data of one or more <event> classes.",
			"    (default: reset all data for all event classes)",
			"HISTOGRAM [COMMAND ...]",
			"    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
			"    If no commands are specified then all histograms are replied.",
		)
	}
}

// latencyStats sums up an event's samples for LATENCY DOCTOR.
type latencyStats struct {
	samples int
	avg     int64   // milliseconds
	mad     int64   // mean absolute deviation from avg, milliseconds
	period  float64 // seconds between samples, on average, up to now
}

func statsOf(samples []latencySample, now int64) latencyStats {
	st := latencyStats{samples: len(samples)}
	if len(samples) == 0 {
		return st
	}
	var sum int64
	for _, sm := range samples {
		sum += sm.ms
	}
	st.avg = sum / int64(len(samples))
	var dev int64
	for _, sm := range samples {
		dev += max(sm.ms-st.avg, st.avg-sm.ms)
	}
	st.mad = dev / int64(len(samples))
	st.period = float64(max(now-samples[0].at, 0)) / float64(len(samples))
	return st
}

// latencyReport is LATENCY DOCTOR's report: Redis's words when the monitor is off
// and has nothing, or on and has seen nothing; else each event's figures and what
// may cause its spikes in dht.
func (s *Server) latencyReport() string {
	m := s.latency
	events := m.all()
	if len(events) == 0 {
		if m.threshold.Load() == 0 {
			return latencyDisabledReport
		}
		return latencyCalmReport
	}
	now := m.now().Unix()
	var b strings.Builder
	b.WriteString("Dave, I have observed latency spikes on this dht node. You don't mind talking about it, do you Dave?\n\n")
	advice := map[string]bool{}
	for i, name := range slices.Sorted(maps.Keys(events)) {
		ts := events[name]
		st := statsOf(ts.inOrder(), now)
		fmt.Fprintf(&b, "%d. %s: %d latency spikes (average %dms, mean deviation %dms, period %.2f sec). Worst all time event %dms.\n",
			i+1, name, st.samples, st.avg, st.mad, st.period, ts.max)
		advice[name] = true
	}
	b.WriteString("\nWhat I would look at:\n\n")
	threshold := m.threshold.Load()
	if advice["command"] || advice["fast-command"] {
		slower := s.slowlog.slower.Load()
		switch {
		case slower < 0 || s.slowlog.maxLen.Load() == 0:
			fmt.Fprintf(&b, "- The slow log is off, so it cannot name the slow commands: 'CONFIG SET slowlog-log-slower-than %d' turns it on at the monitor's threshold.\n",
				satMul(threshold, 1000))
		case slower/1000 > threshold:
			fmt.Fprintf(&b, "- The slow log keeps only commands slower than the monitor's threshold: 'CONFIG SET slowlog-log-slower-than %d' makes it keep these.\n",
				satMul(threshold, 1000))
		}
		b.WriteString("- SLOWLOG GET names the slow commands. A command's time runs to its reply: in a replicated cluster it includes " +
			"its slot range's consensus (a majority of the group's nodes writing it to their logs) and any forward to the range's " +
			"leader, so INFO replication (the followers' lag) and the wal-fsync event tell whether the disks or the network are " +
			"the cause. Commands over many keys or large values (KEYS, SCAN with a large COUNT, MGET, MSET, LCS) take longer by nature.\n")
	}
	if advice["wal-fsync"] {
		b.WriteString("- Syncing the write-ahead log to disk was slow. With appendfsync always every write waits for its sync; " +
			"everysec syncs once a second in the background. A faster disk, or a disk of its own for the data directory, helps.\n")
	}
	if advice["expire-cycle"] {
		b.WriteString("- Removing expired keys took long: many keys expired at once. Spreading their expiry times helps.\n")
	}
	return b.String()
}

// satMul returns a*b, or the largest int64 if that overflows (a, b >= 0).
func satMul(a, b int64) int64 {
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// latencyGraph draws an event's samples as LATENCY GRAPH does: a heading with the
// highest and lowest latency shown and the worst ever, then a bar per sample, oldest
// first, graphRows high, scaled from the lowest to the highest, and under each bar
// how long ago it was (in s, m, h or d, top to bottom).
func latencyGraph(event string, ts latencySeries, now int64) string {
	samples := ts.inOrder()
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, sm := range samples {
		lo, hi = min(lo, sm.ms), max(hi, sm.ms)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s - high %d ms, low %d ms (all time high %d ms)\n", event, hi, lo, ts.max)
	b.WriteString(strings.Repeat("-", graphColumns) + "\n")
	for chunk := range slices.Chunk(samples, graphColumns) {
		// Each bar is 1 to 2*graphRows half rows high.
		heights := make([]int64, len(chunk))
		labels := make([]string, len(chunk))
		tallest := 0
		for i, sm := range chunk {
			heights[i] = 2 * graphRows
			if hi > lo {
				heights[i] = 1 + (sm.ms-lo)*(2*graphRows-1)/(hi-lo)
			}
			labels[i] = agoLabel(now - sm.at)
			tallest = max(tallest, len(labels[i]))
		}
		line := make([]byte, len(chunk))
		for row := range graphRows {
			top := int64(2 * (graphRows - row)) // the half row at the top of this row
			for i, h := range heights {
				switch {
				case h > top:
					line[i] = '|'
				case h == top:
					line[i] = '#'
				case h == top-1:
					line[i] = '_'
				default:
					line[i] = ' '
				}
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
		for row := range tallest {
			for i, l := range labels {
				line[i] = ' '
				if row < len(l) {
					line[i] = l[row]
				}
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// agoLabel says how long ago secs seconds was, in the largest unit that is at least
// one: 42s, 5m, 3h, 2d.
func agoLabel(secs int64) string {
	secs = max(secs, 0)
	switch {
	case secs < 60:
		return fmt.Sprintf("%ds", secs)
	case secs < 3600:
		return fmt.Sprintf("%dm", secs/60)
	case secs < 86400:
		return fmt.Sprintf("%dh", secs/3600)
	}
	return fmt.Sprintf("%dd", secs/86400)
}
