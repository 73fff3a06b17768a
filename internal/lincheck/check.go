package lincheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds a check when the Checker sets no Timeout.
const DefaultTimeout = time.Minute

// ErrNotLinearizable is wrapped by the error of a check that found a key whose
// operations have no linearization.
var ErrNotLinearizable = errors.New("not linearizable")

// ErrCheckTimeout is wrapped by the error of a check that ran out of time
// before it could decide a key. The history may be linearizable or not.
var ErrCheckTimeout = errors.New("check timed out")

// readBackInterval is how long CheckDurable waits before reading a key again
// after a failed read.
const readBackInterval = 100 * time.Millisecond

// Checker checks histories. The zero Checker is ready to use.
type Checker struct {
	// Timeout bounds one check of a whole history; 0 means DefaultTimeout.
	// Keys still unchecked when it runs out count as failures.
	Timeout time.Duration
	// Dir is the directory that receives an HTML visualization of each key
	// that fails; "" means os.TempDir().
	Dir string
	// Logger receives what CheckDurable does while it reads keys back; nil
	// means slog.Default().
	Logger *slog.Logger
}

// keyResult is the outcome of checking one key.
type keyResult struct {
	key    string
	result porcupine.CheckResult
	info   porcupine.LinearizationInfo
	ran    bool // false if the time ran out before the key's check started
}

// Check checks that h is linearizable, each key a register that starts absent.
// If it is not, or the check runs out of time, Check writes a visualization
// of each failing key into c.Dir and returns an error that names the keys and
// the files and wraps ErrNotLinearizable or ErrCheckTimeout (or both).
func (c Checker) Check(h *History) error {
	byKey := make(map[string][]Op)
	for i, o := range h.Ops {
		if o.Err == "" && o.Return < o.Call {
			return fmt.Errorf("lincheck: op %d returns before its call: %v", i, o)
		}
		byKey[o.Key] = append(byKey[o.Key], o)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	model := registerModel()
	results := make([]keyResult, len(keys))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(keys)) {
		wg.Go(func() {
			for i := range next {
				results[i].key = keys[i]
				left := time.Until(deadline)
				if left <= 0 {
					results[i].result = porcupine.Unknown
					continue
				}
				results[i].result, results[i].info = porcupine.CheckOperationsVerbose(model, operations(byKey[keys[i]]), left)
				results[i].ran = true
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()

	var errs []error
	for _, r := range results {
		if r.result == porcupine.Ok {
			continue
		}
		errs = append(errs, c.keyError(model, r))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("lincheck: history of seed %d, %d ops: %w", h.Seed, len(h.Ops), errors.Join(errs...))
}

// keyError describes the failed check of one key, with the file that shows it.
func (c Checker) keyError(model porcupine.Model, r keyResult) error {
	why := ErrNotLinearizable
	if r.result == porcupine.Unknown {
		why = ErrCheckTimeout
	}
	if !r.ran {
		return fmt.Errorf("key %q: %w before its check started", r.key, why)
	}
	path, err := c.visualize(model, r)
	if err != nil {
		return fmt.Errorf("key %q: %w (no visualization: %w)", r.key, why, err)
	}
	return fmt.Errorf("key %q: %w; visualization: %s", r.key, why, path)
}

// visualize writes porcupine's HTML view of one key's check into c.Dir.
func (c Checker) visualize(model porcupine.Model, r keyResult) (string, error) {
	dir := c.Dir
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "lincheck-"+fileSafe(r.key)+"-*.html")
	if err != nil {
		return "", fmt.Errorf("creating visualization: %w", err)
	}
	if err := porcupine.Visualize(model, r.info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("writing visualization %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("writing visualization %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// fileSafe replaces the characters of key that do not belong in a file name.
func fileSafe(key string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
			return r
		default:
			return '_'
		}
	}, key)
}

// CheckDurable reads every key of h back through rc, appends the reads to
// h.Ops as the operations of a client of their own, and checks the whole
// history as Check does. Call it once the run and its faults are over: then
// each read must return the last acknowledged write of its key, or the value
// of a failed write that may have taken effect since, and never an older
// value or nothing where a write was acknowledged. So an acknowledged write
// that was lost fails the check as not linearizable.
//
// A read that fails (the cluster may still be recovering) is retried until it
// succeeds or ctx is done; bound ctx with a deadline. A value a read returns
// is final, even if it fails the check.
func (c Checker) CheckDurable(ctx context.Context, rc redis.UniversalClient, h *History) error {
	if h.Start.IsZero() {
		return errors.New("lincheck: history has no start time to time the reads by")
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	keys := slices.Clone(h.Keys)
	client := 0
	for _, o := range h.Ops {
		keys = append(keys, o.Key)
		client = max(client, o.Client+1)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for _, key := range keys {
		o, err := readBack(ctx, rc, h.Start, client, key, log)
		if err != nil {
			return err
		}
		h.Ops = append(h.Ops, o)
	}
	if err := c.Check(h); err != nil {
		return fmt.Errorf("after reading back %d keys: %w", len(keys), err)
	}
	return nil
}

// readBack reads key until a read succeeds or ctx is done.
func readBack(ctx context.Context, rc redis.UniversalClient, start time.Time, client int, key string, log *slog.Logger) (Op, error) {
	for attempt := 1; ; attempt++ {
		o := Op{Client: client, Kind: Get, Key: key, Call: int64(time.Since(start))}
		v, err := rc.Get(ctx, key).Result()
		o.Return = int64(time.Since(start))
		switch {
		case err == nil:
			o.Value, o.Found = v, true
			return o, nil
		case errors.Is(err, redis.Nil):
			return o, nil
		}
		log.Debug("lincheck: reading back", "key", key, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return Op{}, fmt.Errorf("lincheck: reading back %q, %d attempts: %w (last: %w)", key, attempt, ctx.Err(), err)
		case <-time.After(readBackInterval):
		}
	}
}
