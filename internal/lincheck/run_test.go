package lincheck_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/keyspace"
	"github.com/dhtkv/dht/internal/lincheck"
)

// store is an in-memory stand-in for a cluster, linearizable unless told
// otherwise.
type store struct {
	mu      sync.Mutex
	cur     map[string]string
	prev    map[string]string // each key's value before its last write
	n       int               // commands so far
	faults  bool              // fail every 7th command; every other such SET applies first
	stale   bool              // GET returns the value before the last write
	downFor int               // the next downFor GETs fail
}

func newStore() *store {
	return &store{cur: map[string]string{}, prev: map[string]string{}}
}

// client is the store seen as a redis.UniversalClient. Run and CheckDurable
// call only Get, Set and Close; the embedded nil interface is never used.
type client struct {
	redis.UniversalClient
	s *store
}

func (c client) Close() error { return nil }

func (c client) Set(_ context.Context, key string, value any, _ time.Duration) *redis.StatusCmd {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if s.faults && s.n%7 == 0 && s.n%14 != 0 {
		return redis.NewStatusResult("", errors.New("i/o timeout before the write"))
	}
	s.prev[key], s.cur[key] = s.cur[key], value.(string)
	if s.faults && s.n%14 == 0 {
		return redis.NewStatusResult("", errors.New("i/o timeout after the write"))
	}
	return redis.NewStatusResult("OK", nil)
}

func (c client) Get(_ context.Context, key string) *redis.StringCmd {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if s.downFor > 0 {
		s.downFor--
		return redis.NewStringResult("", errors.New("CLUSTERDOWN recovering"))
	}
	if s.faults && s.n%7 == 0 {
		return redis.NewStringResult("", errors.New("i/o timeout"))
	}
	m := s.cur
	if s.stale {
		m = s.prev
	}
	if v, ok := m[key]; ok && v != "" {
		return redis.NewStringResult(v, nil)
	}
	return redis.NewStringResult("", redis.Nil)
}

func (s *store) newClient(int) redis.UniversalClient { return client{s: s} }

func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func TestRunRecordsACheckableHistory(t *testing.T) {
	s := newStore()
	s.faults = true
	h, err := lincheck.Run(context.Background(), lincheck.Config{
		NewClient: s.newClient,
		Clients:   4,
		MaxOps:    2000,
		Duration:  time.Minute,
		Seed:      42,
		Logger:    quietLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Ops) != 2000 || h.Seed != 42 || len(h.Keys) != lincheck.DefaultKeys || h.Start.IsZero() {
		t.Fatalf("history: %d ops, seed %d, %d keys, start %v", len(h.Ops), h.Seed, len(h.Keys), h.Start)
	}
	st := h.Stats()
	if st.Reads == 0 || st.Writes == 0 || st.FailedReads == 0 || st.UnknownWrites == 0 {
		t.Fatalf("stats %+v; want some of each", st)
	}
	written := map[string]bool{}
	for i, o := range h.Ops {
		if i > 0 && o.Call < h.Ops[i-1].Call {
			t.Fatalf("op %d called before op %d", i, i-1)
		}
		if o.Return < o.Call || !slices.Contains(h.Keys, o.Key) {
			t.Fatalf("op %d: %v", i, o)
		}
		if o.Kind == lincheck.Set {
			if written[o.Value] {
				t.Fatalf("value %q written twice", o.Value)
			}
			written[o.Value] = true
		}
	}
	c := lincheck.Checker{Dir: t.TempDir()}
	if err := c.Check(h); err != nil {
		t.Fatal(err)
	}
	s.faults = false
	s.downFor = 5 // the first read-backs fail and are retried
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.CheckDurable(ctx, client{s: s}, h); err != nil {
		t.Fatal(err)
	}
	if got := len(h.Ops); got != 2000+len(h.Keys) {
		t.Errorf("after CheckDurable the history has %d ops; want one read per key added", got)
	}
}

// TestCheckManyFailedWrites checks a history with hundreds of failed writes
// per key, which the checker only decides in time because it drops the failed
// writes that no read saw and ends the others at the first read that did.
func TestCheckManyFailedWrites(t *testing.T) {
	s := newStore()
	s.faults = true
	h, err := lincheck.Run(context.Background(), lincheck.Config{
		NewClient: s.newClient, Clients: 8, MaxOps: 20000, Seed: 1, Logger: quietLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.UnknownWrites < 100*len(h.Keys)/2 {
		t.Fatalf("%+v: want hundreds of failed writes per key", st)
	}
	if err := (lincheck.Checker{Dir: t.TempDir(), Timeout: 20 * time.Second}).Check(h); err != nil {
		t.Fatal(err)
	}
}

func TestRunSeedReproducesTheWorkload(t *testing.T) {
	workload := func(seed uint64) []lincheck.Op {
		h, err := lincheck.Run(context.Background(), lincheck.Config{
			NewClient: newStore().newClient, Clients: 1, MaxOps: 200, Seed: seed, Logger: quietLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		ops := h.Ops
		for i := range ops {
			ops[i].Call, ops[i].Return = 0, 0
		}
		return ops
	}
	a, b, c := workload(7), workload(7), workload(8)
	if !slices.Equal(a, b) {
		t.Error("two runs with seed 7 differ")
	}
	if slices.Equal(a, c) {
		t.Error("runs with seeds 7 and 8 are the same")
	}
}

func TestRunStopsAtDuration(t *testing.T) {
	start := time.Now()
	h, err := lincheck.Run(context.Background(), lincheck.Config{
		NewClient: newStore().newClient, Clients: 2, Duration: 100 * time.Millisecond,
		Logger: quietLogger(t), ProgressEvery: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second || len(h.Ops) == 0 {
		t.Fatalf("run took %s for %d ops", took, len(h.Ops))
	}
}

func TestCheckFindsStaleReadsOfARun(t *testing.T) {
	s := newStore()
	s.stale = true
	h, err := lincheck.Run(context.Background(), lincheck.Config{
		NewClient: s.newClient, Clients: 2, MaxOps: 300, Keys: []string{"a", "b"}, Seed: 3, Logger: quietLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := (lincheck.Checker{Dir: t.TempDir()}).Check(h); !errors.Is(err, lincheck.ErrNotLinearizable) {
		t.Fatalf("Check = %v; want ErrNotLinearizable", err)
	}
}

func TestCheckDurableFindsLostWrites(t *testing.T) {
	s := newStore()
	h, err := lincheck.Run(context.Background(), lincheck.Config{
		NewClient: s.newClient, Clients: 2, MaxOps: 300, Seed: 5, Logger: quietLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := lincheck.Checker{Dir: t.TempDir()}
	if err := c.Check(h); err != nil {
		t.Fatal(err)
	}
	// A node restarts empty: every key reads back absent.
	s.cur = map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.CheckDurable(ctx, client{s: s}, h); !errors.Is(err, lincheck.ErrNotLinearizable) {
		t.Fatalf("CheckDurable = %v; want ErrNotLinearizable", err)
	}
}

func TestCheckDurableGivesUpWithTheContext(t *testing.T) {
	s := newStore()
	s.downFor = 1 << 30
	h := &lincheck.History{Keys: []string{"k"}, Start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := lincheck.Checker{}.CheckDurable(ctx, client{s: s}, h)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CheckDurable = %v; want a deadline error", err)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	ok := lincheck.Config{NewClient: newStore().newClient, Clients: 1, MaxOps: 1}
	for name, edit := range map[string]func(*lincheck.Config){
		"no client":      func(c *lincheck.Config) { c.NewClient = nil },
		"no clients":     func(c *lincheck.Config) { c.Clients = 0 },
		"no bound":       func(c *lincheck.Config) { c.MaxOps = 0 },
		"empty keys":     func(c *lincheck.Config) { c.Keys = []string{} },
		"write fraction": func(c *lincheck.Config) { c.WriteFraction = 1.5 },
	} {
		cfg := ok
		edit(&cfg)
		if _, err := lincheck.Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: Run accepted %+v", name, cfg)
		}
	}
}

func TestSpreadKeys(t *testing.T) {
	keys := lincheck.SpreadKeys("k:", 20)
	if len(keys) != 20 || len(slices.Compact(slices.Sorted(slices.Values(keys)))) != 20 {
		t.Fatalf("SpreadKeys(20) = %q", keys)
	}
	// The promise of the doc: keys on every node of an m-node cluster when
	// n = m or n >= 2m.
	for m := 1; m <= 8; m++ {
		nodes, err := keyspace.Split(m)
		if err != nil {
			t.Fatal(err)
		}
		for n := m; n <= 40; n++ {
			if n > m && n < 2*m {
				continue
			}
			owned := make([]int, m)
			for _, k := range lincheck.SpreadKeys("k:", n) {
				for i, r := range nodes {
					if r.Contains(keyspace.SlotOf(k)) {
						owned[i]++
					}
				}
			}
			if slices.Contains(owned, 0) {
				t.Errorf("%d keys over %d nodes: %v per node", n, m, owned)
			}
		}
	}
}
