package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// replyError is an error reply, as go-redis reports them.
type replyError string

func (e replyError) Error() string { return string(e) }
func (e replyError) RedisError()   {}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Reason
	}{
		{replyError("CLUSTERDOWN The cluster is down"), ReasonClusterDown},
		{replyError("CROSSSLOT Keys in request don't hash to the same slot"), ReasonCrossSlot},
		{replyError("MOVED 3999 127.0.0.1:7002"), ReasonRedirect},
		{replyError("ASK 3999 127.0.0.1:7002"), ReasonRedirect},
		{replyError("ERR wrong number of arguments"), ReasonErrorReply},
		{fmt.Errorf("wrapped: %w", replyError("CROSSSLOT x")), ReasonCrossSlot},
		{context.DeadlineExceeded, ReasonTimeout},
		{os.ErrDeadlineExceeded, ReasonTimeout},
		{timeoutError{}, ReasonTimeout},
		{errors.New("connection refused"), ReasonConnection},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func TestStatsRecordAndMerge(t *testing.T) {
	a, b := NewStats(), NewStats()
	a.Record(OpGet, Outcome{Hit: true}, time.Millisecond)
	a.Record(OpGet, Outcome{}, 2*time.Millisecond)
	a.Record(OpPutIfAbsent, Outcome{Hit: true}, time.Millisecond)
	b.Record(OpPutIfAbsent, Outcome{}, time.Millisecond)
	b.Record(OpMultiPut, Outcome{Err: replyError("CROSSSLOT x")}, time.Millisecond)
	b.Record(OpPut, Outcome{Hit: true}, time.Hour)
	b.Retries, b.Redirects = 2, 1
	a.Merge(b)
	count, ok, failed := a.Totals()
	if count != 6 || ok != 5 || failed != 1 {
		t.Errorf("totals = %d, %d, %d; want 6, 5, 1", count, ok, failed)
	}
	g, p := a.Ops[OpGet], a.Ops[OpPutIfAbsent]
	if g.Hit != 1 || g.Miss != 1 || p.Hit != 1 || p.Miss != 1 {
		t.Errorf("get hit/miss %d/%d, put-if-absent won/lost %d/%d; want 1/1, 1/1", g.Hit, g.Miss, p.Hit, p.Miss)
	}
	if a.Ops[OpPut].Hit != 0 || a.Ops[OpPut].Miss != 0 {
		t.Error("a put counted as hit or miss")
	}
	if a.FailedByReason()[ReasonCrossSlot] != 1 || a.FailedLatency.TotalCount() != 1 {
		t.Error("the CROSSSLOT failure was not counted")
	}
	if a.Retries != 2 || a.Redirects != 1 {
		t.Errorf("retries %d, redirects %d; want 2, 1", a.Retries, a.Redirects)
	}
	if got := a.Ops[OpPut].Latency.Max(); got < histMax*99/100 {
		t.Errorf("an hour-long request was recorded as %dµs, want it clamped to %dµs", got, histMax)
	}
	if got := LatencyOf(g.Latency); got.Count != 2 || got.P50 < 990 || got.Max < 1990 || got.Max > 2010 {
		t.Errorf("get latency summary = %+v", got)
	}
}

func TestSeries(t *testing.T) {
	s1 := NextSample(Tally{}, Tally{Done: 100, Failed: 10, LatencyUS: 1000}, 1, 1)
	if s1.OpsPerSec != 100 || s1.OKPerSec != 90 || s1.MeanLatencyMS != 0.01 {
		t.Errorf("sample = %+v", s1)
	}
	s2 := NextSample(Tally{Done: 100}, Tally{Done: 150}, 1.5, 0.5)
	if s2.Ops != 50 || s2.OpsPerSec != 100 {
		t.Errorf("half-second sample = %+v", s2)
	}
	m := MergeSeries([]Sample{s1, s2}, []Sample{s1})
	if len(m) != 2 || m[0].Ops != 200 || m[0].OpsPerSec != 200 || m[1].Ops != 50 || m[0].MeanLatencyMS != 0.01 {
		t.Errorf("merged = %+v", m)
	}
}

func TestCoarseBucket(t *testing.T) {
	for _, tc := range []struct{ v, lo, hi int64 }{{7, 7, 7}, {99, 99, 99}, {123, 120, 129}, {45678, 45000, 45999}} {
		if lo, hi := coarseBucket(tc.v); lo != tc.lo || hi != tc.hi {
			t.Errorf("coarseBucket(%d) = %d, %d; want %d, %d", tc.v, lo, hi, tc.lo, tc.hi)
		}
	}
}
