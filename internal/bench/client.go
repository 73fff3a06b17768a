package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dhtkv/dht/internal/config"
)

// Request is one operation sent to the store.
type Request struct {
	// Op is the operation type.
	Op Op
	// Keys holds one key, or MultiPutNum keys for OpMultiPut.
	Keys []string
	// Values holds the value of each key; it is empty for OpGet.
	Values [][]byte
}

// Outcome is the result of a Request.
type Outcome struct {
	// Hit is true for a get that found its key and a put-if-absent that won.
	Hit bool
	// Err is the request's error; a get's miss and a put-if-absent's loss are not errors.
	Err error
}

// ExecInfo reports what the store's client did besides sending the requests.
type ExecInfo struct {
	// Retries is the number of attempts repeated after an error.
	Retries int64
	// Redirects is the number of -MOVED and -ASK replies followed.
	Redirects int64
}

// Executor runs one thread's requests. It is not safe for concurrent use.
type Executor interface {
	// Exec sends reqs (as one pipeline when there are several) and stores the
	// outcome of reqs[i] in out[i]. It returns once every request has one.
	Exec(ctx context.Context, reqs []Request, out []Outcome) ExecInfo
}

// Store is the system under test as one bench client sees it.
type Store interface {
	// Ready waits until the cluster reports cluster_state:ok, learns its slot
	// map and opens conns connections to every node. It returns ctx's error if
	// the cluster is not ready before ctx ends.
	Ready(ctx context.Context, conns int) error
	// Barrier returns once count clients have called Barrier with the same
	// name, or an error when timeout passes first.
	Barrier(ctx context.Context, name string, count int, timeout time.Duration) error
	// NewExecutor returns an Executor for one thread.
	NewExecutor() Executor
	// Get reads keys; a missing key's value is nil.
	Get(ctx context.Context, keys []string) ([][]byte, error)
	// Close releases the store's connections.
	Close() error
}

// ClientPlan is what one bench client runs.
type ClientPlan struct {
	// ID identifies the client; it is written into every value the client writes.
	ID int
	// Workload is the workload each of the client's threads runs.
	Workload config.Workload
	// Keys formats key numbers.
	Keys Keys
	// Tag identifies the run in written values.
	Tag string
	// Seed seeds the random sources of the threads.
	Seed uint64
	// BarrierName is the name of the barrier the clients of the run meet at.
	BarrierName string
	// BarrierCount is the number of clients that meet there; 1 or less skips the barrier.
	BarrierCount int
	// BarrierTimeout bounds both the wait for the cluster and the barrier.
	BarrierTimeout time.Duration
	// SampleInterval is the interval of the time series (default 1s).
	SampleInterval time.Duration
	// Verify checks the written keys at the end.
	Verify bool
}

// ClientResult is what one bench client measured.
type ClientResult struct {
	// ID is the client's id.
	ID int
	// Start is when the workload started (the barrier's release) and End when
	// its last thread finished.
	Start, End time.Time
	// Stats are the client's counters and histograms, merged over its threads.
	Stats *Stats
	// Series is the client's time series.
	Series []Sample
	// Verify is the correctness check's result, nil if it did not run.
	Verify *VerifyResult
	// Interrupted is true when the run was cancelled before it finished.
	Interrupted bool
}

// Wall is the wall-clock time of the workload.
func (r *ClientResult) Wall() time.Duration { return r.End.Sub(r.Start) }

// Client is one bench client: a set of threads running the workload against
// a Store.
type Client struct {
	store Store
	plan  ClientPlan
	live  []*Live
	log   *slog.Logger
}

// NewClient returns a client that runs plan against store.
func NewClient(store Store, plan ClientPlan, log *slog.Logger) *Client {
	if plan.SampleInterval <= 0 {
		plan.SampleInterval = time.Second
	}
	live := make([]*Live, plan.Workload.Threads)
	for i := range live {
		live[i] = new(Live)
	}
	return &Client{store: store, plan: plan, live: live, log: log.With("client", plan.ID)}
}

// Done returns the number of requests the client has completed so far. It is
// safe to call while Run runs.
func (c *Client) Done() int64 { return tally(c.live).Done }

// Run waits for the cluster and the other clients, runs the workload, and
// checks the written keys if the plan says so.
func (c *Client) Run(ctx context.Context) (*ClientResult, error) {
	p := c.plan
	readyCtx, cancel := context.WithTimeout(ctx, p.BarrierTimeout)
	err := c.store.Ready(readyCtx, p.Workload.Threads)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("client %d: cluster not ready within %s: %w", p.ID, p.BarrierTimeout, err)
		}
		return nil, fmt.Errorf("client %d: %w", p.ID, err)
	}
	if p.BarrierCount > 1 {
		c.log.Debug("waiting at barrier", "name", p.BarrierName, "count", p.BarrierCount)
		if err := c.store.Barrier(ctx, p.BarrierName, p.BarrierCount, p.BarrierTimeout); err != nil {
			return nil, fmt.Errorf("client %d: %w", p.ID, err)
		}
	}

	var stop atomic.Bool
	stopOnCancel := context.AfterFunc(ctx, func() { stop.Store(true) })
	defer stopOnCancel()

	res := &ClientResult{ID: p.ID, Start: time.Now()}
	if d := p.Workload.Duration.Duration; d > 0 {
		timer := time.AfterFunc(d, func() { stop.Store(true) })
		defer timer.Stop()
	}
	results := make([]threadResult, p.Workload.Threads)
	var wg sync.WaitGroup
	for t := range results {
		wg.Go(func() {
			results[t] = c.thread(ctx, t, c.store.NewExecutor(), &stop, c.live[t])
		})
	}
	smp := &sampler{live: c.live, start: res.Start}
	threadsDone := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		smp.run(c.plan.SampleInterval, threadsDone)
		close(sampled)
	}()
	wg.Wait()
	res.End = time.Now()
	close(threadsDone)
	<-sampled
	smp.finish(res.End, c.plan.SampleInterval)
	res.Series = smp.series
	res.Interrupted = ctx.Err() != nil

	res.Stats = NewStats()
	for _, r := range results {
		res.Stats.Merge(r.stats)
	}
	if p.Verify && !res.Interrupted {
		v, err := c.verify(ctx, results)
		if err != nil {
			return res, fmt.Errorf("client %d: verify: %w", p.ID, err)
		}
		res.Verify = v
	}
	return res, nil
}

// sampler records a client's time series.
type sampler struct {
	live   []*Live
	start  time.Time
	prev   Tally
	prevT  float64
	series []Sample
}

// run takes a sample every interval until done is closed.
func (s *sampler) run(interval time.Duration, done <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			s.take(now)
		}
	}
}

// take records the interval from the previous sample to now.
func (s *sampler) take(now time.Time) {
	cur := tally(s.live)
	t := now.Sub(s.start).Seconds()
	s.series = append(s.series, NextSample(s.prev, cur, t, t-s.prevT))
	s.prev, s.prevT = cur, t
}

// finish records the last, usually partial, interval, which ends at end. An
// interval shorter than a tenth of the others is folded into the one before, so
// that a few stragglers do not make a rate of their own.
func (s *sampler) finish(end time.Time, interval time.Duration) {
	if cur := tally(s.live); cur.Done == s.prev.Done && len(s.series) > 0 {
		return
	}
	s.take(end)
	n := len(s.series)
	if last := s.series[n-1]; n > 1 && last.Seconds < interval.Seconds()/10 {
		prev := &s.series[n-2]
		prev.T = last.T
		prev.Seconds += last.Seconds
		prev.Ops += last.Ops
		prev.Failed += last.Failed
		prev.LatencyUS += last.LatencyUS
		prev.finish()
		s.series = s.series[:n-1]
	}
}

// threadResult is what one thread measured and saw acknowledged.
type threadResult struct {
	stats *Stats
	acks  *acks
}

// thread runs one thread's share of the workload.
func (c *Client) thread(ctx context.Context, t int, exec Executor, stop *atomic.Bool, live *Live) threadResult {
	p := c.plan
	w := p.Workload
	rnd := NewRand(p.Seed, p.ID, t, w)
	depth := max(1, w.Pipeline)
	perReq := max(1, w.MultiPutNum)
	reqs := make([]Request, depth)
	outs := make([]Outcome, depth)
	nums := make([][]int64, depth)
	seqs := make([]int64, depth)
	bufs := make([][][]byte, depth)
	for i := range depth {
		reqs[i].Keys = make([]string, 0, perReq)
		reqs[i].Values = make([][]byte, 0, perReq)
		nums[i] = make([]int64, 0, perReq)
		bufs[i] = make([][]byte, perReq)
		for j := range bufs[i] {
			bufs[i][j] = make([]byte, 0, w.ValueSize)
		}
	}
	res := threadResult{stats: NewStats()}
	if p.Verify {
		res.acks = newAcks()
	}
	timed := w.Duration.Duration > 0
	remaining := int64(w.Requests)
	var seq int64
	for !stop.Load() {
		n := depth
		if !timed {
			if remaining == 0 {
				break
			}
			n = int(min(int64(depth), remaining))
			remaining -= int64(n)
		}
		for i := range n {
			op := rnd.Op()
			r := &reqs[i]
			r.Op, r.Keys, r.Values, nums[i], seqs[i] = op, r.Keys[:0], r.Values[:0], nums[i][:0], seq
			keys := 1
			if op == OpMultiPut {
				keys = perReq
			}
			for j := range keys {
				k := rnd.Key()
				nums[i] = append(nums[i], k)
				r.Keys = append(r.Keys, p.Keys.Key(k))
				if op != OpGet {
					bufs[i][j] = AppendValue(bufs[i][j][:0], p.Tag, Writer{Client: p.ID, Thread: t, Seq: seq}, w.ValueSize)
					r.Values = append(r.Values, bufs[i][j])
				}
			}
			seq++
		}
		begin := time.Now()
		info := exec.Exec(ctx, reqs[:n], outs[:n])
		d := time.Since(begin)
		if ctx.Err() != nil {
			// Interrupted: the batch's outcomes say nothing about the cluster.
			break
		}
		var failed int64
		for i := range n {
			res.stats.Record(reqs[i].Op, outs[i], d)
			if outs[i].Err != nil {
				failed++
			} else if res.acks != nil {
				res.acks.note(reqs[i].Op, outs[i].Hit, nums[i], seqs[i])
				if reqs[i].Op == OpMultiPut {
					res.acks.noteMultiPut(nums[i], seqs[i], seqs[0])
				}
			}
		}
		res.stats.Retries += info.Retries
		res.stats.Redirects += info.Redirects
		live.add(int64(n), failed, d)
	}
	return res
}
