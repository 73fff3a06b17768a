package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// BarrierMode is how the bench clients of a run meet before the workload.
type BarrierMode string

// The barrier modes.
const (
	// BarrierAuto uses DHT.BARRIER, and falls back to BarrierCounter if the
	// cluster does not know the command (real Redis Cluster).
	BarrierAuto BarrierMode = "auto"
	// BarrierDHT uses dht's DHT.BARRIER command: the node owning the barrier's
	// key holds every caller until count have arrived and releases them at once.
	BarrierDHT BarrierMode = "dht"
	// BarrierCounter works on any Redis: every client INCRs the barrier's key,
	// then polls it with GET every millisecond until count clients have arrived.
	BarrierCounter BarrierMode = "counter"
	// BarrierNone skips the barrier.
	BarrierNone BarrierMode = "none"
)

// ParseBarrierMode checks a barrier mode's name.
func ParseBarrierMode(s string) (BarrierMode, error) {
	switch m := BarrierMode(s); m {
	case BarrierAuto, BarrierDHT, BarrierCounter, BarrierNone:
		return m, nil
	}
	return "", fmt.Errorf("unknown barrier %q (want auto, dht, counter or none)", s)
}

// errNoBarrierCommand is returned by dhtBarrier when the cluster does not know
// DHT.BARRIER.
var errNoBarrierCommand = errors.New("the cluster has no DHT.BARRIER command")

// Timing of the barriers.
const (
	// barrierMargin is how much longer than the barrier's timeout the client
	// waits for the node's answer.
	barrierMargin = 5 * time.Second
	// barrierRetry is the pause before asking again a node that is not ready.
	barrierRetry = 50 * time.Millisecond
	// counterPoll is the polling interval of BarrierCounter.
	counterPoll = time.Millisecond
	// counterTTL is how long a BarrierCounter key lives after its last arrival.
	counterTTL = time.Hour
)

// Barrier implements Store.
func (s *RedisStore) Barrier(ctx context.Context, name string, count int, timeout time.Duration) error {
	if s.opt.Barrier == BarrierNone || count <= 1 {
		return nil
	}
	// Arriving must not be retried behind our back (an arrival counted twice
	// would release the barrier early), and DHT.BARRIER blocks up to timeout, so
	// the barrier has a client of its own: no retries, a long read timeout.
	co := clusterOptions(s.opt, timeout+barrierMargin)
	co.MaxRedirects = -1
	bc := redis.NewClusterClient(co)
	defer bc.Close()
	mode := s.opt.Barrier
	if mode == BarrierAuto || mode == BarrierDHT {
		err := dhtBarrier(ctx, bc, name, count, timeout)
		if mode == BarrierDHT || !errors.Is(err, errNoBarrierCommand) {
			return err
		}
		s.log.Info("the cluster has no DHT.BARRIER; using the INCR/GET counter barrier", "name", name)
	}
	return counterBarrier(ctx, bc, name, count, timeout)
}

// transient reports whether a barrier request failed before the node counted
// it, so that asking again is safe: the cluster is not up yet, or the client's
// slot map is stale.
func transient(err error) bool {
	switch Classify(err) {
	case ReasonClusterDown, ReasonRedirect:
		return true
	}
	return strings.HasPrefix(err.Error(), "TRYAGAIN")
}

// retry runs f until it succeeds, fails for a reason other than a transient
// one, or deadline passes.
func retry(ctx context.Context, deadline time.Time, f func() error) error {
	for {
		err := f()
		if err == nil || !transient(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(barrierRetry):
		}
	}
}

// dhtBarrier meets the other clients with DHT.BARRIER name count timeout-ms.
func dhtBarrier(ctx context.Context, bc *redis.ClusterClient, name string, count int, timeout time.Duration) error {
	err := retry(ctx, time.Now().Add(timeout), func() error {
		cmd := redis.NewStatusCmd(ctx, "dht.barrier", name, count, timeout.Milliseconds())
		cmd.SetFirstKeyPos(1)
		return bc.Process(ctx, cmd)
	})
	switch {
	case err == nil:
		return nil
	case strings.HasPrefix(err.Error(), "ERR unknown command"):
		return fmt.Errorf("%w (%v)", errNoBarrierCommand, err)
	}
	return fmt.Errorf("at the barrier: %w", err)
}

// CounterTarget returns the generation of a counter barrier that the n-th
// arrival (the value INCR returned) belongs to and the counter value that
// releases it. Generations let a name be reused: the (count+1)-th arrival
// starts a new barrier instead of finding the old one released.
func CounterTarget(n int64, count int) (gen, target int64) {
	gen = (n - 1) / int64(count)
	return gen, (gen + 1) * int64(count)
}

// counterBarrier meets the other clients with INCR and GET on the key name.
// Clients leave it within about counterPoll of each other.
func counterBarrier(ctx context.Context, bc *redis.ClusterClient, name string, count int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var n int64
	err := retry(ctx, deadline, func() error {
		var err error
		n, err = bc.Incr(ctx, name).Result()
		return err
	})
	if err != nil {
		return fmt.Errorf("at the barrier: INCR %s: %w", name, err)
	}
	// Only for tidiness; the key works without an expiry.
	_ = bc.Expire(ctx, name, counterTTL).Err()
	gen, target := CounterTarget(n, count)
	for {
		v, err := bc.Get(ctx, name).Int64()
		if err != nil && !transient(err) {
			return fmt.Errorf("at the barrier: GET %s: %w", name, err)
		}
		if v >= target {
			return nil
		}
		if time.Now().After(deadline) {
			// Leave, so that the name's next generation still counts right.
			_ = bc.Decr(context.WithoutCancel(ctx), name).Err()
			return fmt.Errorf("barrier '%s': %d of %d clients arrived within %s", name, v-gen*int64(count), count, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(counterPoll):
		}
	}
}
