package server

import (
	"bytes"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// The statistics INFO reports are counted where they happen, with atomics and no
// locks on the path of a command that succeeds: each command's own counters (one
// cache line per command), each connection's key hits and misses. Counters only
// grow, as Prometheus wants them; CONFIG RESETSTAT records their values as a
// baseline that INFO subtracts.

// cmdStats are one command's counters for INFO commandstats, and its latency
// histogram.
type cmdStats struct {
	// calls counts the calls that ran, nanos their time; rejected counts the calls
	// refused before running (arity, permissions, routing), failed the ones that
	// ran and answered an error.
	calls, nanos, rejected, failed atomic.Int64
	// latency is the histogram of the calls' times (see latencyhist.go): nil
	// until latency tracking records a call, and again after CONFIG RESETSTAT.
	latency atomic.Pointer[latencyHist]
}

// cmdCounts are a command's counters as read at one moment.
type cmdCounts struct{ calls, nanos, rejected, failed int64 }

func (c *cmdStats) read() cmdCounts {
	return cmdCounts{c.calls.Load(), c.nanos.Load(), c.rejected.Load(), c.failed.Load()}
}

func (a cmdCounts) minus(b cmdCounts) cmdCounts {
	return cmdCounts{a.calls - b.calls, a.nanos - b.nanos, a.rejected - b.rejected, a.failed - b.failed}
}

// maxErrorCodes bounds the error codes errorstats tracks, as Redis bounds them.
const maxErrorCodes = 128

// serverStats are the node-wide counters of INFO stats and errorstats.
type serverStats struct {
	rejectedConns atomic.Int64
	errorReplies  atomic.Int64
	// hits and misses of the connections that closed (open ones count their own).
	hits, misses atomic.Int64
	// peakMemory is the most heap in use seen (bytes).
	peakMemory atomic.Uint64
	// opsPerSec is the last estimate of instantaneous_ops_per_sec.
	opsPerSec atomic.Int64

	mu sync.Mutex
	// errors counts the error replies by code (the first word: ERR, WRONGTYPE...).
	errors map[string]int64
	// base holds the counters' values at the last CONFIG RESETSTAT.
	base statsBase
}

// statsBase is what CONFIG RESETSTAT subtracts from the counters.
type statsBase struct {
	conns, rejectedConns, errorReplies, hits, misses, expired int64
	errors                                                    map[string]int64
	commands                                                  map[*command]cmdCounts
	subs                                                      map[*subcommand]cmdCounts
}

// opsSampler estimates instantaneous_ops_per_sec as Redis does: the mean rate of
// the last samples taken every 100 ms. Only the sweep loop touches it.
type opsSampler struct {
	last    int64
	lastAt  time.Time
	samples [16]float64
	n       int
}

// add records the count of commands processed at now and returns the rate.
func (o *opsSampler) add(now time.Time, total int64) int64 {
	if !o.lastAt.IsZero() {
		if d := now.Sub(o.lastAt).Seconds(); d > 0 {
			o.samples[o.n%len(o.samples)] = float64(total-o.last) / d
			o.n++
		}
	}
	o.last, o.lastAt = total, now
	k := min(o.n, len(o.samples))
	if k == 0 {
		return 0
	}
	var sum float64
	for _, v := range o.samples[:k] {
		sum += v
	}
	return int64(sum / float64(k))
}

// heapSample reads the bytes of live heap objects, without stopping the world.
func heapSample() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// sampleStats is the sweep loop's part of the statistics, every 100 ms: the
// commands per second and the peak of memory in use.
func (s *Server) sampleStats(o *opsSampler, now time.Time) {
	s.stats.opsPerSec.Store(o.add(now, s.commandsProcessed()))
	s.notePeak(heapSample())
}

// notePeak raises the peak of memory in use to used, if used is higher.
func (s *Server) notePeak(used uint64) {
	for {
		p := s.stats.peakMemory.Load()
		if used <= p || s.stats.peakMemory.CompareAndSwap(p, used) {
			return
		}
	}
}

// countError counts an error reply (the reply's text, after its '-') by its code.
func (s *Server) countError(reply []byte) {
	s.stats.errorReplies.Add(1)
	code := reply
	if i := bytes.IndexAny(code, " \r"); i >= 0 {
		code = code[:i]
	}
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	if s.stats.errors == nil {
		s.stats.errors = map[string]int64{}
	}
	if _, ok := s.stats.errors[string(code)]; ok || len(s.stats.errors) < maxErrorCodes {
		s.stats.errors[string(code)]++
	}
}

// mono reads the monotonic clock, as the time since the node started: one read of
// the clock where time.Now takes two.
func (s *Server) mono() time.Duration { return time.Since(s.started) }

// commandStart is when the command about to run on conn starts (on the monotonic
// clock of mono): where the command before it in the same batch ended, saving a
// read of the clock per pipelined command.
func (s *Server) commandStart(conn *session) time.Duration {
	if conn.clock != 0 {
		return conn.clock
	}
	return s.mono()
}

// account records a command that ran: its time since start (see commandStart), in
// its latency histogram too while latency tracking is on, whether its reply
// (written to conn from mark on) is an error, and the slow log.
// The next command of the batch starts where it ended.
func (s *Server) account(conn *session, c *command, args [][]byte, mark int, start time.Duration) {
	end := s.mono()
	conn.clock = end
	d := end - start
	st := c.statsFor(args)
	st.calls.Add(1)
	st.nanos.Add(int64(d))
	if s.tracking.on.Load() {
		st.histogram().record(d)
	}
	if mark < len(conn.out) && conn.out[mark] == '-' {
		st.failed.Add(1)
		s.countError(conn.out[mark+1:])
	}
	if !c.noSlowlog {
		s.slowlog.note(conn.c, args, d)
		if s.latency.over(d) {
			s.latency.add(commandEvent(c), d.Milliseconds())
		}
	}
}

// reject records a command refused before it ran, whose error reply is why.
func (s *Server) reject(c *command, args [][]byte, why string) {
	c.statsFor(args).rejected.Add(1)
	s.countError([]byte(why))
}

// commandsProcessed is INFO's total_commands_processed: the commands that ran (not
// those refused before running, nor unknown ones), as Redis counts them.
func (s *Server) commandsProcessed() int64 {
	var total int64
	for _, c := range s.commands {
		total += c.stats.calls.Load()
		for _, sc := range c.subcommands {
			total += sc.stats.calls.Load()
		}
	}
	return total
}

// keyHits returns the key hits and misses of every connection, closed or open.
func (s *Server) keyHits() (hits, misses int64) {
	hits, misses = s.stats.hits.Load(), s.stats.misses.Load()
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	for cl := range s.clients {
		hits += cl.hits.Load()
		misses += cl.misses.Load()
	}
	return hits, misses
}

// hit counts a read of a key that exists (found) or not, for keyspace_hits and
// keyspace_misses.
func (w *session) hit(found bool) {
	if w.c == nil {
		return
	}
	if found {
		w.c.hits.Add(1)
	} else {
		w.c.misses.Add(1)
	}
}

// hits counts reads of keys: found of them exist, missing do not.
func (w *session) hits(found, missing int) {
	if w.c == nil {
		return
	}
	w.c.hits.Add(int64(found))
	w.c.misses.Add(int64(missing))
}

// resetStats is CONFIG RESETSTAT: INFO's counters start again from zero, the
// commands' latency histograms are dropped, and the slow log is emptied.
func (s *Server) resetStats() {
	hits, misses := s.keyHits()
	b := statsBase{
		conns:         s.connsTotal.Load(),
		rejectedConns: s.stats.rejectedConns.Load(),
		errorReplies:  s.stats.errorReplies.Load(),
		hits:          hits,
		misses:        misses,
		expired:       s.expiredKeys(),
		commands:      make(map[*command]cmdCounts, len(s.commands)),
	}
	b.subs = map[*subcommand]cmdCounts{}
	for _, c := range s.commands {
		b.commands[c] = c.stats.read()
		c.stats.latency.Store(nil)
		for _, sc := range c.subcommands {
			b.subs[sc] = sc.stats.read()
			sc.stats.latency.Store(nil)
		}
	}
	s.stats.mu.Lock()
	b.errors = make(map[string]int64, len(s.stats.errors))
	for k, v := range s.stats.errors {
		b.errors[k] = v
	}
	s.stats.base = b
	s.stats.mu.Unlock()
	s.stats.peakMemory.Store(heapSample())
	s.slowlog.reset()
}

// baseline returns the counters' values at the last CONFIG RESETSTAT.
func (s *Server) baseline() statsBase {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	return s.stats.base
}

// errorCounts returns the error replies by code since the last CONFIG RESETSTAT.
func (s *Server) errorCounts() map[string]int64 {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	out := make(map[string]int64, len(s.stats.errors))
	for k, v := range s.stats.errors {
		if n := v - s.stats.base.errors[k]; n > 0 {
			out[k] = n
		}
	}
	return out
}

// expiredKeys is how many keys expired: removed by the sweep or found expired.
func (s *Server) expiredKeys() int64 { return s.store.Expired() }
