package bench

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dhtkv/dht/internal/config"
)

// ClientTarget is one bench client this process runs.
type ClientTarget struct {
	// ID is the client's id, unique in the run.
	ID int
	// Addrs are the seed addresses the client connects to.
	Addrs []string
}

// Plan is a whole run as this process sees it: its own clients, the size of the
// run they belong to, and the workload.
type Plan struct {
	// RunID identifies the run; all clients of the run (on every host) must use
	// the same one, as it names the barrier.
	RunID string
	// Setup describes the run in the results; its Workload is the workload to run.
	Setup Setup
	// Clients are the clients this process runs.
	Clients []ClientTarget
	// Sweep, if set, runs the workload once per value.
	Sweep *Sweep
	// SampleInterval is the time series' interval (default 1s).
	SampleInterval time.Duration
	// NewStore connects a client to the cluster for a workload.
	NewStore func(c ClientTarget, w config.Workload) Store
	// Progress, if set, is called a few times a second with the requests done
	// so far and the number expected in the current step (0 if unknown, for a
	// timed run), and the step's index.
	Progress func(step int, done, total int64)
}

// progressInterval is how often Run reports progress.
const progressInterval = 200 * time.Millisecond

// RunTag and RunSeed derive the value tag and the random seed from a run id,
// so that every client of the run derives the same ones.
func RunTag(runID string) string {
	sum := sha256.Sum256([]byte("dht-bench-tag:" + runID))
	return hex.EncodeToString(sum[:3])
}

// RunSeed returns the random seed of the run runID.
func RunSeed(runID string) uint64 {
	sum := sha256.Sum256([]byte("dht-bench-seed:" + runID))
	return binary.BigEndian.Uint64(sum[:8])
}

// BarrierName is the name of the barrier the clients of run runID meet at
// before step step.
func BarrierName(runID string, step int) string {
	return fmt.Sprintf("dht-bench:%s:%d", runID, step)
}

// StepKeyPrefix is the key prefix of a step: prefix itself without a sweep,
// else prefix + "s<step>:", so every step starts from keys no earlier step wrote.
func StepKeyPrefix(prefix string, sweep bool, step int) string {
	if !sweep {
		return prefix
	}
	return fmt.Sprintf("%ss%d:", prefix, step)
}

// Run runs the plan: every step with all of this process's clients at once.
// It returns the results so far along with the first error.
func Run(ctx context.Context, p Plan, log *slog.Logger) (*Results, error) {
	host, sw := ThisHost()
	res := &Results{RunID: p.RunID, Started: time.Now(), Software: sw, Host: host, Setup: p.Setup, Sweep: p.Sweep, Steps: []StepResult{}}
	values := []int64{0}
	if p.Sweep != nil {
		values = p.Sweep.Values
	}
	for i, v := range values {
		w := p.Setup.Workload
		if p.Sweep != nil {
			w = p.Sweep.Apply(w, v)
			log.Info("sweep step", "param", p.Sweep.Param, "value", v)
		}
		if err := w.Validate(); err != nil {
			return res, fmt.Errorf("step %d: %w", i, err)
		}
		step, err := runStep(ctx, p, i, w, log)
		step.Value = v
		res.Steps = append(res.Steps, step)
		if err != nil {
			return res, err
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	return res, nil
}

// runStep runs one workload with all clients and merges their results.
func runStep(ctx context.Context, p Plan, step int, w config.Workload, log *slog.Logger) (StepResult, error) {
	prefix := StepKeyPrefix(p.Setup.KeyPrefix, p.Sweep != nil, step)
	out := StepResult{Workload: w, KeyPrefix: prefix, Clients: []Report{}}
	clients := make([]*Client, len(p.Clients))
	stores := make([]Store, len(p.Clients))
	for i, t := range p.Clients {
		stores[i] = p.NewStore(t, w)
		clients[i] = NewClient(stores[i], ClientPlan{
			ID: t.ID, Workload: w, Keys: Keys{Prefix: prefix}, Tag: RunTag(p.RunID), Seed: RunSeed(p.RunID) + uint64(step),
			BarrierName: BarrierName(p.RunID, step), BarrierCount: p.Setup.BarrierCount, BarrierTimeout: p.Setup.BarrierTimeout.Duration,
			SampleInterval: p.SampleInterval, Verify: p.Setup.Verify,
		}, log)
	}
	defer func() {
		for _, s := range stores {
			if err := s.Close(); err != nil {
				log.Warn("closing connections", "err", err)
			}
		}
	}()

	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	if p.Progress != nil {
		var total int64
		if w.Duration.Duration <= 0 {
			total = int64(len(clients)) * int64(w.Threads) * int64(w.Requests)
		}
		progressDone.Go(func() {
			tick := time.NewTicker(progressInterval)
			defer tick.Stop()
			for {
				var done int64
				for _, c := range clients {
					done += c.Done()
				}
				p.Progress(step, done, total)
				select {
				case <-stopProgress:
					return
				case <-tick.C:
				}
			}
		})
	}

	results := make([]*ClientResult, len(clients))
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() { results[i], errs[i] = c.Run(ctx) })
	}
	wg.Wait()
	close(stopProgress)
	progressDone.Wait()

	total := &ClientResult{ID: -1, Stats: NewStats()}
	var series [][]Sample
	for _, r := range results {
		if r == nil {
			continue
		}
		out.Clients = append(out.Clients, clientReport(w.Mix, r))
		if total.Start.IsZero() || r.Start.Before(total.Start) {
			total.Start = r.Start
		}
		if r.End.After(total.End) {
			total.End = r.End
		}
		total.Stats.Merge(r.Stats)
		series = append(series, r.Series)
		if r.Verify != nil {
			if total.Verify == nil {
				total.Verify = &VerifyResult{}
			}
			total.Verify.Merge(r.Verify)
		}
		total.Interrupted = total.Interrupted || r.Interrupted
	}
	total.Series = MergeSeries(series...)
	out.Total = clientReport(w.Mix, total)
	return out, errors.Join(errs...)
}

func clientReport(mix config.Mix, r *ClientResult) Report {
	rep := NewReport(r.ID, mix, r.Stats, r.Start, r.End, r.Series)
	rep.Verify = r.Verify
	rep.Interrupted = r.Interrupted
	return rep
}
