package bench

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Reason is why a request failed.
type Reason uint8

// The failure reasons.
const (
	// ReasonErrorReply is an error reply not covered by a more specific reason.
	ReasonErrorReply Reason = iota
	// ReasonTimeout is a request that got no reply within the operation timeout.
	ReasonTimeout
	// ReasonClusterDown is a -CLUSTERDOWN reply.
	ReasonClusterDown
	// ReasonCrossSlot is a -CROSSSLOT reply: a multi-key request whose keys hash
	// to different slots.
	ReasonCrossSlot
	// ReasonRedirect is a -MOVED or -ASK reply left after the client followed
	// as many redirects as it may.
	ReasonRedirect
	// ReasonConnection is a connection error: refused, reset, closed.
	ReasonConnection
	// NumReasons is the number of failure reasons.
	NumReasons
)

// String returns the reason's name as used in JSON and tables.
func (r Reason) String() string {
	switch r {
	case ReasonErrorReply:
		return "error_reply"
	case ReasonTimeout:
		return "timeout"
	case ReasonClusterDown:
		return "clusterdown"
	case ReasonCrossSlot:
		return "crossslot"
	case ReasonRedirect:
		return "redirect"
	case ReasonConnection:
		return "connection"
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// redisError is implemented by the error replies of go-redis.
type redisError interface {
	error
	RedisError()
}

// Classify returns the failure reason of a request's error, which must not be nil.
func Classify(err error) Reason {
	var re redisError
	if errors.As(err, &re) {
		msg := re.Error()
		switch {
		case strings.HasPrefix(msg, "CLUSTERDOWN"):
			return ReasonClusterDown
		case strings.HasPrefix(msg, "CROSSSLOT"):
			return ReasonCrossSlot
		case strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK "):
			return ReasonRedirect
		}
		return ReasonErrorReply
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ReasonTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	return ReasonConnection
}

// Histogram bounds: latencies are recorded in microseconds from 1 µs to 60 s
// with 3 significant digits.
const (
	histMin    = 1
	histMax    = 60_000_000
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// recordLatency records d in h, clamped to the histogram's range.
func recordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	us = max(us, histMin)
	us = min(us, histMax)
	// The value is within range, so RecordValue cannot fail.
	_ = h.RecordValue(us)
}

// OpStats counts one operation type's requests.
type OpStats struct {
	// Count is the number of requests issued; each got a reply or an error.
	Count int64
	// OK is the number of requests that succeeded.
	OK int64
	// Failed counts the failed requests by reason.
	Failed [NumReasons]int64
	// Hit counts gets that found their key and put-if-absents that won.
	Hit int64
	// Miss counts gets that did not find their key and put-if-absents that lost.
	Miss int64
	// Latency holds the latencies of the successful requests, in microseconds.
	Latency *hdrhistogram.Histogram
}

// FailedTotal is the number of failed requests.
func (s *OpStats) FailedTotal() int64 {
	var n int64
	for _, v := range s.Failed {
		n += v
	}
	return n
}

// Stats are the counters and histograms of a thread, a client or a whole run.
// They are not safe for concurrent use: each thread has its own, merged at the end.
type Stats struct {
	// Ops holds the counters of each operation type.
	Ops [NumOps]OpStats
	// FailedLatency holds the latencies of failed requests, in microseconds.
	FailedLatency *hdrhistogram.Histogram
	// Retries counts the attempts the Redis client repeated after an error.
	Retries int64
	// Redirects counts the -MOVED and -ASK replies the Redis client followed.
	Redirects int64
}

// NewStats returns empty Stats.
func NewStats() *Stats {
	s := &Stats{FailedLatency: newHist()}
	for i := range s.Ops {
		s.Ops[i].Latency = newHist()
	}
	return s
}

// Record counts one request of type op that took d and ended with out.
func (s *Stats) Record(op Op, out Outcome, d time.Duration) {
	o := &s.Ops[op]
	o.Count++
	if out.Err != nil {
		o.Failed[Classify(out.Err)]++
		recordLatency(s.FailedLatency, d)
		return
	}
	o.OK++
	if op == OpGet || op == OpPutIfAbsent {
		if out.Hit {
			o.Hit++
		} else {
			o.Miss++
		}
	}
	recordLatency(o.Latency, d)
}

// Merge adds other's counts and histograms to s.
func (s *Stats) Merge(other *Stats) {
	for i := range s.Ops {
		a, b := &s.Ops[i], &other.Ops[i]
		a.Count += b.Count
		a.OK += b.OK
		for r := range a.Failed {
			a.Failed[r] += b.Failed[r]
		}
		a.Hit += b.Hit
		a.Miss += b.Miss
		a.Latency.Merge(b.Latency)
	}
	s.FailedLatency.Merge(other.FailedLatency)
	s.Retries += other.Retries
	s.Redirects += other.Redirects
}

// Totals returns the number of requests, successful ones and failed ones.
func (s *Stats) Totals() (count, ok, failed int64) {
	for i := range s.Ops {
		count += s.Ops[i].Count
		ok += s.Ops[i].OK
		failed += s.Ops[i].FailedTotal()
	}
	return count, ok, failed
}

// FailedByReason sums the failures of every operation type by reason.
func (s *Stats) FailedByReason() [NumReasons]int64 {
	var f [NumReasons]int64
	for i := range s.Ops {
		for r, v := range s.Ops[i].Failed {
			f[r] += v
		}
	}
	return f
}

// Live holds a thread's counters that the sampler reads while the thread runs.
type Live struct {
	done      atomic.Int64
	failed    atomic.Int64
	latencyUS atomic.Int64
}

// add counts n completed requests, failed of them failed, that took d each.
func (l *Live) add(n, failed int64, d time.Duration) {
	l.done.Add(n)
	if failed > 0 {
		l.failed.Add(failed)
	}
	l.latencyUS.Add(n * d.Microseconds())
}

// Tally is a snapshot of Live counters, summed over threads.
type Tally struct {
	// Done counts completed requests, Failed the failed ones among them.
	Done, Failed int64
	// LatencyUS is the summed latency of the completed requests, in microseconds.
	LatencyUS int64
}

// tally sums the counters of threads.
func tally(threads []*Live) Tally {
	var t Tally
	for _, l := range threads {
		t.Done += l.done.Load()
		t.Failed += l.failed.Load()
		t.LatencyUS += l.latencyUS.Load()
	}
	return t
}

// Sample is one interval of a run's time series.
type Sample struct {
	// T is the end of the interval, in seconds since the start of the workload.
	T float64 `json:"t"`
	// Seconds is the length of the interval (the last one may be short).
	Seconds float64 `json:"seconds"`
	// Ops is the number of requests completed in the interval.
	Ops int64 `json:"ops"`
	// Failed is the number of those that failed.
	Failed int64 `json:"failed"`
	// OpsPerSec is Ops / Seconds.
	OpsPerSec float64 `json:"ops_per_sec"`
	// OKPerSec is (Ops - Failed) / Seconds.
	OKPerSec float64 `json:"ok_per_sec"`
	// MeanLatencyMS is the mean latency of the interval's requests, in milliseconds.
	MeanLatencyMS float64 `json:"mean_latency_ms"`
	// LatencyUS is the summed latency of the interval's requests, in microseconds.
	LatencyUS int64 `json:"latency_us"`
}

// NextSample returns the sample of the interval that ends at t (seconds since the
// start) and lasted seconds, from the tallies at its start and end.
func NextSample(prev, cur Tally, t, seconds float64) Sample {
	s := Sample{T: t, Seconds: seconds, Ops: cur.Done - prev.Done, Failed: cur.Failed - prev.Failed, LatencyUS: cur.LatencyUS - prev.LatencyUS}
	s.finish()
	return s
}

func (s *Sample) finish() {
	if s.Seconds > 0 {
		s.OpsPerSec = float64(s.Ops) / s.Seconds
		s.OKPerSec = float64(s.Ops-s.Failed) / s.Seconds
	}
	if s.Ops > 0 {
		s.MeanLatencyMS = float64(s.LatencyUS) / float64(s.Ops) / 1000
	}
}

// MergeSeries adds up the time series of several clients interval by interval.
// The clients start together at the barrier, so their i-th intervals cover
// (nearly) the same time; the merged interval keeps the longer length.
func MergeSeries(series ...[]Sample) []Sample {
	var out []Sample
	for _, ser := range series {
		for i, s := range ser {
			if i == len(out) {
				out = append(out, Sample{T: s.T})
			}
			m := &out[i]
			m.T = max(m.T, s.T)
			m.Seconds = max(m.Seconds, s.Seconds)
			m.Ops += s.Ops
			m.Failed += s.Failed
			m.LatencyUS += s.LatencyUS
		}
	}
	for i := range out {
		out[i].finish()
	}
	return out
}
