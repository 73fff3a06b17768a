package bench

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/config"
)

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testPlan(w config.Workload) ClientPlan {
	return ClientPlan{ID: 1, Workload: w, Keys: Keys{Prefix: "key:"}, Tag: "t3st00", Seed: 42,
		BarrierName: "b", BarrierCount: 1, BarrierTimeout: time.Second, SampleInterval: 10 * time.Millisecond, Verify: true}
}

func smallWorkload() config.Workload {
	w := config.Default().Workload
	w.Requests, w.Threads = 500, 4
	return w
}

func TestClientCountsAddUp(t *testing.T) {
	w := smallWorkload()
	w.Mix = config.Mix{Get: 50, PutIfAbsent: 30, Put: 10, MultiPut: 10}
	store := newMemStore()
	res, err := NewClient(store, testPlan(w), quietLog()).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	count, ok, failed := res.Stats.Totals()
	if count != 2000 || ok != 2000 || failed != 0 {
		t.Fatalf("requests %d, ok %d, failed %d; want 2000, 2000, 0", count, ok, failed)
	}
	for op, pct := range map[Op]int{OpGet: 50, OpPutIfAbsent: 30, OpPut: 10, OpMultiPut: 10} {
		got := float64(res.Stats.Ops[op].Count) / float64(count) * 100
		if math.Abs(got-float64(pct)) > 4 {
			t.Errorf("%s: %.1f%% of requests, want %d%% ± 4", op, got, pct)
		}
	}
	var seriesOps int64
	for _, s := range res.Series {
		seriesOps += s.Ops
	}
	if seriesOps != count {
		t.Errorf("the time series counts %d requests, the totals %d", seriesOps, count)
	}
	if res.Verify == nil || !res.Verify.OK() || res.Verify.Keys == 0 {
		t.Errorf("verify = %+v, want a passing check of some keys", res.Verify)
	}
	if store.readies != 1 {
		t.Errorf("Ready called %d times, want 1", store.readies)
	}
}

func TestClientCountsFailures(t *testing.T) {
	w := smallWorkload()
	w.Mix = config.Mix{Get: 60, Put: 20, MultiPut: 20}
	store := newMemStore()
	store.fail = func(r Request) error {
		if r.Op == OpMultiPut {
			return replyError("CROSSSLOT Keys in request don't hash to the same slot")
		}
		return nil
	}
	res, err := NewClient(store, testPlan(w), quietLog()).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mp := res.Stats.Ops[OpMultiPut]
	if mp.Count == 0 || mp.Failed[ReasonCrossSlot] != mp.Count || mp.OK != 0 {
		t.Errorf("multi_put: %d requests, %d CROSSSLOT, %d ok; want all failed", mp.Count, mp.Failed[ReasonCrossSlot], mp.OK)
	}
	if _, _, failed := res.Stats.Totals(); failed != mp.Count {
		t.Errorf("failed = %d, want %d", failed, mp.Count)
	}
	if !res.Verify.OK() {
		t.Errorf("verify failed: %+v", res.Verify)
	}
}

func TestClientPipelines(t *testing.T) {
	w := smallWorkload()
	w.Requests, w.Pipeline, w.Threads = 100, 16, 2
	store := newMemStore()
	res, err := NewClient(store, testPlan(w), quietLog()).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// 100 = 6 batches of 16 + one of 4, per thread.
	if store.batches[16] != 12 || store.batches[4] != 2 || len(store.batches) != 2 {
		t.Errorf("batch sizes = %v, want 12 of 16 and 2 of 4", store.batches)
	}
	if count, _, _ := res.Stats.Totals(); count != 200 {
		t.Errorf("requests = %d, want 200", count)
	}
}

func TestClientDuration(t *testing.T) {
	w := smallWorkload()
	w.Requests, w.Threads = 0, 2
	w.Duration = config.Duration{Duration: 150 * time.Millisecond}
	store := newMemStore()
	store.latency = time.Millisecond
	res, err := NewClient(store, testPlan(w), quietLog()).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if wall := res.Wall(); wall < 150*time.Millisecond || wall > time.Second {
		t.Errorf("a 150ms run took %s", wall)
	}
	if count, _, _ := res.Stats.Totals(); count < 20 {
		t.Errorf("only %d requests in 150ms", count)
	}
}

func TestClientVerifyCatchesLostWrites(t *testing.T) {
	w := smallWorkload()
	store := newMemStore()
	store.lose = func(key string) bool { return strings.HasSuffix(key, "7") }
	res, err := NewClient(store, testPlan(w), quietLog()).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	v := res.Verify
	if v.OK() || v.Missing == 0 || v.DoubleWins == 0 || len(v.Problems) == 0 {
		t.Fatalf("verify = %+v; want missing keys and keys won twice", v)
	}
	if !strings.Contains(v.Problems[0], "7:") && !strings.Contains(v.Problems[0], "7 ") {
		t.Errorf("first problem %q is not about a lost key (ending in 7)", v.Problems[0])
	}
}

func TestClientsMeetAtBarrier(t *testing.T) {
	w := smallWorkload()
	w.Requests = 10
	b := newMemBarrier()
	var wg sync.WaitGroup
	starts := make([]time.Time, 3)
	for i := range 3 {
		store := newMemStore()
		store.barrier = b
		p := testPlan(w)
		p.ID, p.BarrierCount = i, 3
		wg.Go(func() {
			if i == 2 {
				time.Sleep(100 * time.Millisecond) // the late client
			}
			res, err := NewClient(store, p, quietLog()).Run(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			starts[i] = res.Start
		})
	}
	wg.Wait()
	for i, s := range starts[1:] {
		if d := s.Sub(starts[0]).Abs(); d > 60*time.Millisecond {
			t.Errorf("client %d started %s after client 0", i+1, d)
		}
	}
}

func TestClientMissingAtBarrier(t *testing.T) {
	store := newMemStore()
	store.barrier = newMemBarrier()
	p := testPlan(smallWorkload())
	p.BarrierCount, p.BarrierTimeout = 2, 50*time.Millisecond
	_, err := NewClient(store, p, quietLog()).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "1 of 2 clients arrived") {
		t.Fatalf("err = %v, want the barrier's timeout", err)
	}
}

func TestSamplerFoldsShortTail(t *testing.T) {
	l := new(Live)
	t0 := time.Now()
	s := &sampler{live: []*Live{l}, start: t0}
	l.add(100, 0, time.Millisecond)
	s.take(t0.Add(time.Second))
	l.add(5, 1, time.Millisecond)
	s.finish(t0.Add(1010*time.Millisecond), time.Second)
	if len(s.series) != 1 || s.series[0].Ops != 105 || s.series[0].Failed != 1 || math.Abs(s.series[0].Seconds-1.01) > 1e-9 {
		t.Fatalf("short tail not folded: %+v", s.series)
	}
	l.add(50, 0, time.Millisecond)
	s.finish(t0.Add(1500*time.Millisecond), time.Second)
	if len(s.series) != 2 || s.series[1].Ops != 50 || math.Abs(s.series[1].OpsPerSec-50/0.49) > 1e-6 {
		t.Fatalf("long tail: %+v", s.series)
	}
}
