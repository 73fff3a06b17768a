package server

import (
	"fmt"
	"maps"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dhtkv/dht/internal/redisnum"
)

// Latency tracking is Redis 7.0's: while latency-tracking is on (the default), each
// command and subcommand that runs records its time in a histogram of its own,
// which LATENCY HISTOGRAM and INFO latencystats read and CONFIG RESETSTAT clears.
// The histogram is Redis's HdrHistogram, rebuilt here with atomic counters: values
// from 1 to 1e9 nanoseconds, 2 significant figures, a command's time counted in whole
// microseconds as Redis counts it. Recording is one atomic add, without a lock or an
// allocation; a command's counters are allocated on its first recorded call.

const (
	// histHighest is the largest value a histogram holds (a second, in
	// nanoseconds); longer times count as it, shorter ones than 1 ns as 1.
	histHighest = 1_000_000_000
	// histSubBuckets is the values of the first bucket (2 significant figures:
	// the power of two above 2*10^2), histHalf half as many, histHalfBits its
	// logarithm; each bucket after the first holds histHalf values twice as far
	// apart as the one before it.
	histSubBuckets = 256
	histHalf       = histSubBuckets / 2
	histHalfBits   = 7
	// histBuckets is how many buckets it takes to reach histHighest, histLen the
	// counters they need.
	histBuckets = 23
	histLen     = (histBuckets + 1) * histHalf
	// histFirstLevel is the first level of LATENCY HISTOGRAM's buckets (1024 ns),
	// each next one twice the one before, as Redis's hdr_iter_log(1024, 2).
	histFirstLevel = 1024
)

// latencyHist is one command's histogram: the calls counted in each of its ranges of
// values.
type latencyHist struct {
	counts [histLen]atomic.Int64
}

// histCounts are a histogram's counters as read at one moment, and their sum.
type histCounts struct {
	counts [histLen]int64
	total  int64
}

// histBucket returns the bucket of value v (at least 1).
func histBucket(v int64) int {
	return 64 - bits.LeadingZeros64(uint64(v)|(histSubBuckets-1)) - (histHalfBits + 1)
}

// histIndex returns the counter of value v (1 to histHighest).
func histIndex(v int64) int {
	b := histBucket(v)
	return (b+1)<<histHalfBits + int(v>>b) - histHalf
}

// histValueAt returns the lowest value that counter i counts.
func histValueAt(i int) int64 {
	b, sb := i>>histHalfBits-1, int64(i&(histHalf-1)+histHalf)
	if b < 0 {
		b, sb = 0, sb-histHalf
	}
	return sb << b
}

// histLowest returns the lowest value that counts as v does. (v >> b is below
// histSubBuckets by the choice of b, so the range of v is 1 << b wide.)
func histLowest(v int64) int64 {
	b := histBucket(v)
	return v >> b << b
}

// histHighestOf returns the highest value that counts as v does.
func histHighestOf(v int64) int64 {
	return histLowest(v) + 1<<histBucket(v) - 1
}

// record counts a command that took d: its whole microseconds in nanoseconds, as
// Redis records them, within the histogram's range.
func (h *latencyHist) record(d time.Duration) {
	v := min(max(d.Microseconds()*1000, 1), histHighest)
	h.counts[histIndex(v)].Add(1)
}

// read returns the histogram's counters.
func (h *latencyHist) read() *histCounts {
	c := &histCounts{}
	for i := range h.counts {
		c.counts[i] = h.counts[i].Load()
		c.total += c.counts[i]
	}
	return c
}

// percentile returns the value at percentile p (0 to 100) as HdrHistogram's
// hdr_value_at_percentile does: the highest value of the range in which the
// calls counted reach p percent of them, rounded to the nearest call (the lowest
// value of that range for p 0).
func (c *histCounts) percentile(p float64) int64 {
	at := max(int64(min(p, 100)/100*float64(c.total)+0.5), 1)
	var seen int64
	for i, n := range c.counts {
		if seen += n; seen >= at {
			if p == 0 {
				return histLowest(histValueAt(i))
			}
			return histHighestOf(histValueAt(i))
		}
	}
	return 0
}

// histLevel is one bucket of LATENCY HISTOGRAM: the calls that took at most usec
// microseconds, counted from the first.
type histLevel struct{ usec, calls int64 }

// levels returns LATENCY HISTOGRAM's buckets, as Redis's hdr_iter_log(1024, 2)
// gives them: at each level (1024 ns, then twice the one before) the calls of the
// ranges that start at it or below, labelled with the highest value of the level's
// range in whole microseconds; a level only where the count grew, up to the one that
// counts every call.
func (c *histCounts) levels() []histLevel {
	var (
		out       []histLevel
		seen, was int64
		next      int
	)
	for level := int64(histFirstLevel); seen < c.total; level *= 2 {
		last := min(histIndex(level), histLen-1)
		for ; next <= last; next++ {
			seen += c.counts[next]
		}
		if seen > was {
			out = append(out, histLevel{histHighestOf(histValueAt(last)) / 1000, seen})
		}
		was = seen
	}
	return out
}

// histogram returns the command's histogram, allocating it on its first call.
func (st *cmdStats) histogram() *latencyHist {
	for {
		if h := st.latency.Load(); h != nil {
			return h
		}
		st.latency.CompareAndSwap(nil, new(latencyHist))
	}
}

// histCounts returns the command's histogram as read now, or nil when it has
// recorded no call since the last CONFIG RESETSTAT.
func (st *cmdStats) histCounts() *histCounts {
	h := st.latency.Load()
	if h == nil {
		return nil
	}
	c := h.read()
	if c.total == 0 {
		return nil
	}
	return c
}

// latencyTracking is the settings of latency tracking: latency-tracking and
// latency-tracking-info-percentiles, which CONFIG SET changes.
type latencyTracking struct {
	// on is latency-tracking: whether the commands record their times.
	on atomic.Bool
	// percentiles is latency-tracking-info-percentiles: the ones INFO
	// latencystats gives.
	percentiles atomic.Pointer[[]float64]
}

// defaultPercentiles are latency-tracking-info-percentiles' default, Redis's.
func defaultPercentiles() []float64 { return []float64{50, 99, 99.9} }

// formatPercentile prints a percentile as Redis does: C's "%f" without the
// trailing zeros (nor a point left last).
func formatPercentile(p float64) string {
	s := strconv.FormatFloat(p, 'f', 6, 64)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// percentilesText is latency-tracking-info-percentiles as CONFIG GET prints it.
func (t *latencyTracking) percentilesText() string {
	ps := *t.percentiles.Load()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = formatPercentile(p)
	}
	return strings.Join(out, " ")
}

// parsePercentiles reads a value of latency-tracking-info-percentiles: percentiles
// from 0 to 100 separated by single spaces (none in an empty value), each a float as
// Redis reads one, with Redis 7.0's reasons for refusing a value.
func parsePercentiles(v []byte) ([]float64, string) {
	ps := []float64{}
	if len(v) == 0 {
		return ps, ""
	}
	hundred := big.NewFloat(100)
	for _, f := range strings.Split(string(v), " ") {
		x, ok := redisnum.ParseLongDouble([]byte(f))
		if !ok {
			return nil, "Invalid latency-tracking-info-percentiles parameters"
		}
		if x.Sign() < 0 || x.Cmp(hundred) > 0 {
			return nil, "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
		}
		p, _ := x.Float64()
		ps = append(ps, p)
	}
	return ps, ""
}

// eachHistogram calls fn with the full name and the histogram of each command and
// subcommand that has one, in INFO commandstats's order: by name, a container
// command's subcommands after it.
func (s *Server) eachHistogram(fn func(name string, c *histCounts)) {
	for _, name := range slices.Sorted(maps.Keys(s.commands)) {
		s.commandHistograms(s.commands[name], fn)
	}
}

// commandHistograms calls fn with the histogram of c, if it has one, then those of
// its subcommands that have one, by name.
func (s *Server) commandHistograms(c *command, fn func(name string, c *histCounts)) {
	if h := c.stats.histCounts(); h != nil {
		fn(c.name, h)
	}
	for _, sub := range slices.Sorted(maps.Keys(c.subcommands)) {
		sc := c.subcommands[sub]
		if h := sc.stats.histCounts(); h != nil {
			fn(sc.name, h)
		}
	}
}

// latencyHistogram is LATENCY HISTOGRAM [command ...]: for every command and
// subcommand with a histogram, or for those named (case-insensitively; a container
// command gives its subcommands'; unknown names are skipped), its calls and its
// buckets, as Redis 7.0's map in RESP2.
func latencyHistogram(s *Server, conn *session, names [][]byte) {
	type entry struct {
		name string
		h    *histCounts
	}
	var out []entry
	add := func(name string, h *histCounts) { out = append(out, entry{name, h}) }
	if len(names) == 0 {
		s.eachHistogram(add)
	}
	for _, n := range names {
		parent, sub, isSub := strings.Cut(strings.ToLower(string(n)), "|")
		c := s.commands[parent]
		switch {
		case c == nil:
		case !isSub:
			s.commandHistograms(c, add)
		case c.subcommands[sub] != nil:
			sc := c.subcommands[sub]
			if h := sc.stats.histCounts(); h != nil {
				add(sc.name, h)
			}
		}
	}
	conn.WriteArray(2 * len(out))
	for _, e := range out {
		conn.WriteBulkString(e.name)
		conn.WriteArray(4)
		conn.WriteBulkString("calls")
		conn.WriteInt64(e.h.total)
		conn.WriteBulkString("histogram_usec")
		levels := e.h.levels()
		conn.WriteArray(2 * len(levels))
		for _, l := range levels {
			conn.WriteInt64(l.usec)
			conn.WriteInt64(l.calls)
		}
	}
}

// latencystatsInfo is INFO latencystats: for each command and subcommand with a
// histogram, the microseconds at each percentile of
// latency-tracking-info-percentiles; nothing while latency-tracking is off, as in
// Redis (LATENCY HISTOGRAM still shows the histograms).
func (s *Server) latencystatsInfo() []string {
	if !s.tracking.on.Load() {
		return nil
	}
	ps := *s.tracking.percentiles.Load()
	var lines []string
	s.eachHistogram(func(name string, h *histCounts) {
		var b strings.Builder
		b.WriteString("latency_percentiles_usec_" + name + ":")
		for i, p := range ps {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "p%s=%.3f", formatPercentile(p), float64(h.percentile(p))/1000)
		}
		lines = append(lines, b.String())
	})
	return lines
}
