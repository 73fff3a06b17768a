package lincheck

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/keyspace"
)

// DefaultKeys is the number of keys a run uses when its Config names none.
const DefaultKeys = 20

// Config is the workload of a Run.
type Config struct {
	// NewClient returns the client of client goroutine id, from 0 to
	// Clients-1; Run closes it when that goroutine ends. The client must not
	// retry a failed command by itself (see NewClusterClient).
	NewClient func(id int) redis.UniversalClient
	// Clients is the number of clients that run at once.
	Clients int
	// Keys are the keys the clients read and write, each chosen uniformly.
	// They must be absent when the run starts. Nil means DefaultKeys keys
	// from SpreadKeys, with a prefix made from the seed, so runs with
	// different seeds on one cluster use different keys.
	Keys []string
	// WriteFraction is the share of operations that are SETs, in (0, 1]; 0
	// means one half.
	WriteFraction float64
	// Duration bounds how long the clients start new operations; 0 means no
	// bound.
	Duration time.Duration
	// MaxOps bounds the number of operations of all clients together; 0
	// means no bound. At least one of Duration and MaxOps must be set.
	MaxOps int
	// Seed seeds every random choice of the run; 0 picks one at random.
	Seed uint64
	// Logger receives the seed, the progress and a summary of the run; nil
	// means slog.Default().
	Logger *slog.Logger
	// ProgressEvery is how often the number of operations so far is logged;
	// 0 means never.
	ProgressEvery time.Duration
}

// SpreadKeys returns n keys named prefix followed by a number, the i-th of
// which hashes into the i-th of n equal slot ranges (keyspace.Split(n)), so
// the keys spread over the slots as evenly as n allows: a cluster whose m
// nodes own equal slot ranges has keys on every node when n = m or n >= 2m.
// It panics unless 1 <= n <= keyspace.Slots.
func SpreadKeys(prefix string, n int) []string {
	ranges, err := keyspace.Split(n)
	if err != nil {
		panic(err)
	}
	keys := make([]string, n)
	for i, r := range ranges {
		for j := 0; keys[i] == ""; j++ {
			if k := fmt.Sprintf("%s%d", prefix, j); r.Contains(keyspace.SlotOf(k)) {
				keys[i] = k
			}
		}
	}
	return keys
}

// NewClusterClient returns a go-redis ClusterClient for the cluster that
// addrs (host:port, any subset of the nodes) belong to, fit for Run: it never
// resends a command, neither after an error (MaxRetries: -1) nor to follow a
// MOVED or ASK redirect (MaxRedirects: -1), so a failed SET was sent once and
// its outcome is simply unknown. It dials within 1s and gives up on a reply
// after 3s, longer than a dht node takes to answer for an unreachable peer.
func NewClusterClient(addrs []string) *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        addrs,
		MaxRetries:   -1,
		MaxRedirects: -1,
		DialTimeout:  time.Second,
		ReadTimeout:  3 * time.Second,
		WriteTimeout: 3 * time.Second,
	})
}

// Run drives a cluster with cfg's workload and returns what it recorded.
// Each client issues one operation at a time, a GET or a SET of a random key,
// until Duration has passed, MaxOps operations have been started or ctx is
// done; operations already sent then finish (on ctx, so cancelling ctx fails
// them). A SET writes a value unique in the run: "c" followed by the client
// and the client's operation number ("c3-17").
//
// Run returns an error only for an invalid cfg; operations that fail are
// recorded as failed.
func Run(ctx context.Context, cfg Config) (*History, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	keys := cfg.Keys
	if keys == nil {
		keys = SpreadKeys(fmt.Sprintf("lincheck:%x:", seed), DefaultKeys)
	}
	writes := cfg.WriteFraction
	if writes == 0 {
		writes = 0.5
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Info("lincheck: run", "seed", seed, "clients", cfg.Clients, "keys", len(keys),
		"write_fraction", writes, "duration", cfg.Duration, "max_ops", cfg.MaxOps)

	r := &recorder{
		keys:   keys,
		writes: writes,
		seed:   seed,
		maxOps: int64(cfg.MaxOps),
		start:  time.Now(),
	}
	// stop ends the loops; the operations themselves run on ctx, so that the
	// end of the run does not fail the ones in flight.
	var stop context.Context
	var cancel context.CancelFunc
	if cfg.Duration > 0 {
		stop, cancel = context.WithTimeout(ctx, cfg.Duration)
	} else {
		stop, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	perClient := make([][]Op, cfg.Clients)
	var clients, progress sync.WaitGroup
	for id := range cfg.Clients {
		clients.Go(func() {
			c := cfg.NewClient(id)
			defer c.Close()
			perClient[id] = r.client(ctx, stop, c, id)
		})
	}
	finished := make(chan struct{})
	if cfg.ProgressEvery > 0 {
		progress.Go(func() { r.report(log, cfg.ProgressEvery, finished) })
	}
	clients.Wait()
	close(finished)
	progress.Wait()

	h := &History{Seed: seed, Keys: keys, Start: r.start, Ops: slices.Concat(perClient...)}
	slices.SortStableFunc(h.Ops, func(a, b Op) int { return cmp.Compare(a.Call, b.Call) })
	s := h.Stats()
	log.Info("lincheck: recorded", "seed", seed, "ops", len(h.Ops), "elapsed", time.Since(r.start),
		"reads", s.Reads, "writes", s.Writes, "failed_reads", s.FailedReads, "unknown_writes", s.UnknownWrites)
	return h, nil
}

func (cfg *Config) validate() error {
	var errs []error
	if cfg.NewClient == nil {
		errs = append(errs, errors.New("NewClient is nil"))
	}
	if cfg.Clients < 1 {
		errs = append(errs, fmt.Errorf("Clients is %d; need at least 1", cfg.Clients))
	}
	if cfg.Keys != nil && len(cfg.Keys) == 0 {
		errs = append(errs, errors.New("Keys is empty"))
	}
	if cfg.WriteFraction < 0 || cfg.WriteFraction > 1 {
		errs = append(errs, fmt.Errorf("WriteFraction is %v; need (0, 1], or 0 for the default", cfg.WriteFraction))
	}
	if cfg.Duration < 0 || cfg.MaxOps < 0 || cfg.Duration == 0 && cfg.MaxOps == 0 {
		errs = append(errs, fmt.Errorf("Duration %s and MaxOps %d: need one of them positive and neither negative", cfg.Duration, cfg.MaxOps))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lincheck: invalid config: %w", err)
	}
	return nil
}

// recorder is the state the clients of one run share.
type recorder struct {
	keys   []string
	writes float64
	seed   uint64
	maxOps int64
	start  time.Time

	started atomic.Int64 // operations started, to enforce maxOps
	done    atomic.Int64 // operations finished, for progress reports
}

// now is the time since the start of the run, on the monotonic clock.
func (r *recorder) now() int64 {
	return int64(time.Since(r.start))
}

// client runs the operations of client id until stop is done or the run has
// started maxOps operations, and returns them.
func (r *recorder) client(ctx, stop context.Context, c redis.UniversalClient, id int) []Op {
	rng := rand.New(rand.NewPCG(r.seed, uint64(id)))
	var ops []Op
	for n := 0; stop.Err() == nil; n++ {
		if r.maxOps > 0 && r.started.Add(1) > r.maxOps {
			break
		}
		o := Op{Client: id, Key: r.keys[rng.IntN(len(r.keys))]}
		var err error
		if rng.Float64() < r.writes {
			o.Kind, o.Value = Set, fmt.Sprintf("c%d-%d", id, n)
			o.Call = r.now()
			err = c.Set(ctx, o.Key, o.Value, 0).Err()
		} else {
			o.Kind = Get
			o.Call = r.now()
			o.Value, err = c.Get(ctx, o.Key).Result()
			o.Found = err == nil
			if errors.Is(err, redis.Nil) {
				err = nil
			}
		}
		o.Return = r.now()
		if err != nil {
			o.Err = err.Error()
		}
		ops = append(ops, o)
		r.done.Add(1)
	}
	return ops
}

// report logs the operations finished so far every interval until done is
// closed.
func (r *recorder) report(log *slog.Logger, every time.Duration, done <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			log.Info("lincheck: progress", "ops", r.done.Load(), "elapsed", time.Since(r.start).Round(time.Millisecond))
		}
	}
}
