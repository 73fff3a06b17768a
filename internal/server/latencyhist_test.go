package server

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// TestHistEquivalents: the ranges of values a counter holds are HdrHistogram's
// with 2 significant figures, as Redis's histograms have them.
func TestHistEquivalents(t *testing.T) {
	for _, c := range []struct{ v, highest int64 }{
		{1, 1}, {255, 255}, {256, 257}, {8192, 8255}, {10000, 10047}, {16384, 16511},
		{32768, 33023}, {262144, 264191}, {histHighest, 1002438655},
	} {
		if got := histHighestOf(c.v); got != c.highest {
			t.Errorf("highest equivalent of %d = %d, want %d", c.v, got, c.highest)
		}
	}
	if i := histIndex(histHighest); i >= histLen {
		t.Fatalf("the highest value's counter is %d, past the %d counters", i, histLen)
	}
	if v := histValueAt(histLen - 1); histHighestOf(v) != 1<<30-1 {
		t.Errorf("the last counter holds up to %d, want 2^30-1", histHighestOf(v))
	}
	ref := hdrhistogram.New(1, histHighest, 2)
	if n := len(ref.Export().Counts); n != histLen {
		t.Fatalf("HdrHistogram has %d counters, dht's %d", n, histLen)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := rng.Int64N(histHighest) + 1
		if i := histIndex(v); histValueAt(i) != histLowest(v) {
			t.Fatalf("counter %d of %d starts at %d, want %d", i, v, histValueAt(i), histLowest(v))
		}
		lo, hi := histLowest(v), histHighestOf(v)
		if !ref.ValuesAreEquivalent(v, lo) || !ref.ValuesAreEquivalent(v, hi) || ref.ValuesAreEquivalent(v, hi+1) ||
			lo > 1 && ref.ValuesAreEquivalent(v, lo-1) {
			t.Fatalf("%d: equivalents %d..%d, not HdrHistogram's", v, lo, hi)
		}
	}
}

// recordAll counts calls that took values in a new histogram and returns its
// counters.
func recordAll(values ...time.Duration) *histCounts {
	h := &latencyHist{}
	for _, v := range values {
		h.record(v)
	}
	return h.read()
}

// knownTimes are calls of 1 µs, 10 µs twice, 20 µs, 1 ms and 2 s (counted as 1 s).
func knownTimes() []time.Duration {
	us := time.Microsecond
	return []time.Duration{us, 10 * us, 10 * us, 20 * us, time.Millisecond, 2 * time.Second}
}

func TestHistPercentiles(t *testing.T) {
	c := recordAll(knownTimes()...)
	if c.total != 6 {
		t.Fatalf("total %d, want 6", c.total)
	}
	for _, tc := range []struct {
		p    float64
		want int64
	}{
		{0, 1000}, {1, 1003}, {20, 1003}, {25, 10047}, {50, 10047}, {60, 20095}, {70, 20095},
		{75, 1003519}, {90, 1003519}, {99, 1002438655}, {99.9, 1002438655}, {100, 1002438655},
		{150, 1002438655},
	} {
		if got := c.percentile(tc.p); got != tc.want {
			t.Errorf("p%v = %d, want %d", tc.p, got, tc.want)
		}
	}
	// A sub-microsecond call counts as 1 ns, as Redis's.
	if got := recordAll(500 * time.Nanosecond).percentile(50); got != 1 {
		t.Errorf("p50 of a 500 ns call = %d, want 1", got)
	}
	// Random sets agree with HdrHistogram's own percentiles.
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		h, ref := &latencyHist{}, hdrhistogram.New(1, histHighest, 2)
		for range 1 + rng.IntN(500) {
			us := rng.Int64N(2_000_000)
			h.record(time.Duration(us) * time.Microsecond)
			_ = ref.RecordValue(min(max(us*1000, 1), histHighest))
		}
		c := h.read()
		for _, p := range []float64{0, 0.1, 10, 50, 90, 99, 99.9, 100} {
			if got, want := c.percentile(p), ref.ValueAtPercentile(p); got != want {
				t.Fatalf("p%v of %d calls = %d, HdrHistogram's %d", p, c.total, got, want)
			}
		}
	}
}

func TestHistLevels(t *testing.T) {
	got := recordAll(knownTimes()...).levels()
	want := []histLevel{{1, 1}, {16, 3}, {33, 4}, {1056, 5}, {1073741, 6}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("levels %v, want %v", got, want)
	}
	// 8 µs is in the range that starts at 8000 ns, which the 8192 level counts;
	// 262 µs is in the one that starts at 261120 ns, under the 262144 level. A
	// call's time counts in whole microseconds.
	us := time.Microsecond
	got = recordAll(8*us, 8*us+999, 262*us).levels()
	want = []histLevel{{8, 2}, {264, 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("levels %v, want %v", got, want)
	}
	if got := (&histCounts{}).levels(); len(got) != 0 {
		t.Errorf("levels of nothing: %v", got)
	}
}

func TestFormatPercentile(t *testing.T) {
	for p, want := range map[float64]string{50: "50", 99.9: "99.9", 0: "0", 100: "100", 33.3333333: "33.333333",
		0.0000001: "0", 99.9999999: "100", 12.5: "12.5"} {
		if got := formatPercentile(p); got != want {
			t.Errorf("formatPercentile(%v) = %q, want %q", p, got, want)
		}
	}
}

// histogramCalls returns the calls LATENCY HISTOGRAM reports, by command, and
// fails on a reply of the wrong shape.
func histogramCalls(t *testing.T, reply string) map[string]string {
	t.Helper()
	entry := regexp.MustCompile(`\$\d+\r\n([a-z.|\-]+)\r\n\*4\r\n\$5\r\ncalls\r\n:(\d+)\r\n\$14\r\nhistogram_usec\r\n\*(\d+)\r\n((?::\d+\r\n)*)`)
	out := map[string]string{}
	rest, ok := strings.CutPrefix(reply, fmt.Sprintf("*%d\r\n", 2*strings.Count(reply, "histogram_usec")))
	if !ok {
		t.Fatalf("LATENCY HISTOGRAM answered %q", reply)
	}
	for rest != "" {
		m := entry.FindStringSubmatch(rest)
		if m == nil || !strings.HasPrefix(rest, m[0]) {
			t.Fatalf("LATENCY HISTOGRAM answered %q", reply)
		}
		out[m[1]] = m[2]
		rest = rest[len(m[0]):]
	}
	return out
}

// infoOf runs INFO with sections, as a worker runs it (INFO waits for other
// nodes), and returns its reply.
func infoOf(e *execClock, sections ...string) string {
	args := [][]byte{[]byte("INFO")}
	for _, s := range sections {
		args = append(args, []byte(s))
	}
	e.w.out = e.w.out[:0]
	e.s.exec(&e.w, args, nil, true)
	return string(e.w.out)
}

// TestLatencyTracking runs commands through exec and reads their histograms:
// LATENCY HISTOGRAM and INFO latencystats, latency-tracking off and on, and CONFIG
// RESETSTAT.
func TestLatencyTracking(t *testing.T) {
	e := newExecClock(t)
	slow := func(cmd string, d time.Duration) string {
		e.w.clock = e.s.mono() - d
		return e.do(cmd)
	}
	e.expect("LATENCY HISTOGRAM", "*0\r\n")
	e.do("GET {k}a")
	e.do("GET {k}a")
	slow("SET {k}a v", 300*time.Millisecond)
	e.do("CONFIG GET maxclients")
	e.do("CLIENT ID")
	e.do("GET") // refused before running: not counted

	// 300 ms is in the range of the 2^29 ns level, labelled 541065 µs.
	if got := e.do("LATENCY HISTOGRAM set"); !strings.HasSuffix(got, "\r\n:1\r\n$14\r\nhistogram_usec\r\n*2\r\n:541065\r\n:1\r\n") {
		t.Errorf("LATENCY HISTOGRAM set = %q", got)
	}
	calls := histogramCalls(t, e.do("LATENCY HISTOGRAM"))
	want := map[string]string{"get": "2", "set": "1", "config|get": "1", "client|id": "1", "latency|histogram": "2"}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("LATENCY HISTOGRAM calls %v, want %v", calls, want)
	}
	// In INFO commandstats's order: by name, subcommands after their command.
	all, last := e.do("LATENCY HISTOGRAM"), -1
	for _, name := range []string{"client|id", "config|get", "get", "latency|histogram", "set"} {
		i := strings.Index(all, "\r\n"+name+"\r\n")
		if i < last {
			t.Errorf("LATENCY HISTOGRAM lists %s out of order: %q", name, all)
		}
		last = i
	}
	calls = histogramCalls(t, e.do("LATENCY HISTOGRAM CONFIG nosuch GET get|x config|nosuch Config|Get get"))
	if got := e.do("LATENCY HISTOGRAM CONFIG nosuch GET get|x config|nosuch Config|Get get"); !strings.HasPrefix(got, "*8\r\n$10\r\nconfig|get\r\n") ||
		strings.Count(got, "$3\r\nget\r\n") != 2 {
		t.Errorf("LATENCY HISTOGRAM of names = %q, want config|get, get, config|get, get", got)
	}
	if len(calls) != 2 {
		t.Errorf("LATENCY HISTOGRAM of names: %v", calls)
	}

	info := infoOf(e, "latencystats")
	line := regexp.MustCompile(`latency_percentiles_usec_set:p50=(\d+\.\d{3}),p99=\d+\.\d{3},p99\.9=\d+\.\d{3}\r\n`)
	if m := line.FindStringSubmatch(info); m == nil || !strings.HasPrefix(m[1], "30") {
		t.Errorf("INFO latencystats = %q, want set's p50 near 300000 µs", info)
	}
	for _, name := range []string{"get", "config|get", "client|id", "latency|histogram"} {
		if !strings.Contains(info, "\r\nlatency_percentiles_usec_"+name+":p50=") {
			t.Errorf("INFO latencystats lacks %s: %q", name, info)
		}
	}
	if strings.Contains(infoOf(e), "Latencystats") || !strings.Contains(infoOf(e, "everything"), "# Latencystats\r\n") {
		t.Error("INFO latencystats is not where Redis has it (all and everything, not default)")
	}
	e.do("CONFIG SET latency-tracking-info-percentiles 0")
	if info := infoOf(e, "latencystats"); !strings.Contains(info, "\r\nlatency_percentiles_usec_set:p0=29") {
		t.Errorf("INFO latencystats with p0 = %q", info)
	}

	// Off, nothing is recorded, and what was stays.
	e.expect("CONFIG SET latency-tracking no", "+OK\r\n")
	e.do("GET {k}a")
	e.do("LATENCY HISTOGRAM get")
	if calls := histogramCalls(t, e.do("LATENCY HISTOGRAM get")); calls["get"] != "2" {
		t.Errorf("with latency-tracking no, get's calls = %v, want 2 still", calls)
	}
	if info := infoOf(e, "latencystats"); info != bulk("# Latencystats\r\n") {
		t.Errorf("with latency-tracking no, INFO latencystats = %q, want the heading alone, as Redis's", info)
	}
	e.expect("CONFIG SET latency-tracking yes", "+OK\r\n")
	e.do("GET {k}a")
	if calls := histogramCalls(t, e.do("LATENCY HISTOGRAM get")); calls["get"] != "3" {
		t.Errorf("back on, get's calls = %v, want 3", calls)
	}

	// CONFIG RESETSTAT drops the histograms: only its own call is left.
	e.expect("CONFIG RESETSTAT", "+OK\r\n")
	if calls := histogramCalls(t, e.do("LATENCY HISTOGRAM")); fmt.Sprint(calls) != "map[config|resetstat:1]" {
		t.Errorf("after CONFIG RESETSTAT: %v", calls)
	}
}

// TestLatencyTrackingConcurrent records, reads and resets histograms from several
// goroutines at once (for the race detector).
func TestLatencyTrackingConcurrent(t *testing.T) {
	e := newExecClock(t)
	var wg sync.WaitGroup
	for range 4 {
		w := session{c: &client{s: e.s, authed: true}, db: e.db}
		wg.Go(func() {
			args := [][]byte{[]byte("GET"), []byte("{k}a")}
			raw := []byte(respCmd("GET", "{k}a"))
			for range 2000 {
				e.s.exec(&w, args, raw, false)
				w.out = w.out[:0]
			}
		})
	}
	for range 50 {
		e.do("LATENCY HISTOGRAM")
		infoOf(e, "latencystats")
		e.do("CONFIG RESETSTAT")
	}
	wg.Wait()
}
