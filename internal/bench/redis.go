package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// RedisOptions configure a Store that talks to a Redis Cluster (dht or Redis)
// through go-redis's ClusterClient.
type RedisOptions struct {
	// Addrs are the seed nodes. Ready polls the first one's cluster state; the
	// client learns the others from CLUSTER SLOTS.
	Addrs []string
	// PoolSize is the number of connections per node (at least the thread count).
	PoolSize int
	// OpTimeout bounds one request (go-redis's read and write timeouts).
	OpTimeout time.Duration
	// Barrier is how Barrier meets the other clients.
	Barrier BarrierMode
	// Password, if set, is sent with AUTH on every connection.
	Password string
	// TLS, if set, makes every connection a TLS one with this configuration.
	TLS *tls.Config
}

// RedisStore is a Store over go-redis's ClusterClient. Connections are
// persistent: Ready opens them and the workload reuses them.
type RedisStore struct {
	opt RedisOptions
	cc  *redis.ClusterClient
	log *slog.Logger
}

// NewRedisStore returns a RedisStore; it connects lazily.
func NewRedisStore(opt RedisOptions, log *slog.Logger) *RedisStore {
	co := clusterOptions(opt, opt.OpTimeout)
	co.PoolSize = max(opt.PoolSize, 1)
	cc := redis.NewClusterClient(co)
	cc.OnNewNode(func(c *redis.Client) { c.AddHook(attemptHook{}) })
	return &RedisStore{opt: opt, cc: cc, log: log}
}

// clusterOptions are the go-redis options every bench connection uses: RESP2
// (no HELLO 3 probe), no client identity or maintenance-notification
// handshakes, and no command routing policies, so that a multi-key command
// goes to the node owning its first key (and a cross-slot MSET gets its
// -CROSSSLOT instead of being split into several non-atomic ones).
func clusterOptions(opt RedisOptions, timeout time.Duration) *redis.ClusterOptions {
	return &redis.ClusterOptions{
		Addrs:                    opt.Addrs,
		Password:                 opt.Password,
		TLSConfig:                opt.TLS,
		Protocol:                 2,
		DisableIdentity:          true,
		DisableRoutingPolicies:   true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		ReadTimeout:              timeout,
		WriteTimeout:             timeout,
	}
}

// readyPoll is the interval at which Ready polls the cluster state.
const readyPoll = 50 * time.Millisecond

// Ready implements Store.
func (s *RedisStore) Ready(ctx context.Context, conns int) error {
	addr := s.opt.Addrs[0]
	seed := redis.NewClient(&redis.Options{
		Addr: addr, Password: s.opt.Password, TLSConfig: s.opt.TLS, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	defer seed.Close()
	last := "no reply yet"
	for {
		info, err := seed.ClusterInfo(ctx).Result()
		if err == nil {
			st := ClusterState(info)
			if st == "ok" {
				break
			}
			last = "cluster_state:" + st
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s never reported cluster_state:ok (last: %s): %w", addr, last, ctx.Err())
		case <-time.After(readyPoll):
		}
	}
	s.cc.ReloadState(ctx)
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for i := range conns {
		wg.Go(func() {
			errs[i] = s.cc.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
				return c.Ping(ctx).Err()
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("connecting to the cluster: %w", err)
	}
	return nil
}

// ClusterState returns the value of cluster_state in a CLUSTER INFO reply, or
// "" if there is none.
func ClusterState(info string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
			return v
		}
	}
	return ""
}

// NewExecutor implements Store.
func (s *RedisStore) NewExecutor() Executor {
	return &redisExec{cc: s.cc, cnt: new(attempts)}
}

// Get implements Store, with one pipeline for all keys.
func (s *RedisStore) Get(ctx context.Context, keys []string) ([][]byte, error) {
	pipe := s.cc.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("GET: %w", err)
	}
	vals := make([][]byte, len(keys))
	for i, c := range cmds {
		v, err := c.Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, fmt.Errorf("GET %s: %w", keys[i], err)
		default:
			vals[i] = v
		}
	}
	return vals, nil
}

// Close implements Store.
func (s *RedisStore) Close() error { return s.cc.Close() }

// attempts counts the attempts the cluster client made for one thread's
// requests; attemptHook, installed on every node's client, increments them.
type attempts struct {
	n         atomic.Int64
	redirects atomic.Int64
}

type attemptsKey struct{}

func (a *attempts) count(name string, err error) {
	switch name {
	case "get", "set", "mset":
	default:
		return
	}
	a.n.Add(1)
	if err != nil && Classify(err) == ReasonRedirect {
		a.redirects.Add(1)
	}
}

// attemptHook counts every attempt a node's client makes for a request whose
// context carries an *attempts. The cluster client calls a node once per
// attempt (its nodes do not retry on their own), so attempts beyond the
// requests themselves are retries and redirects.
type attemptHook struct{}

// DialHook implements redis.Hook; dials are not counted.
func (attemptHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook: it counts one attempt.
func (attemptHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if a, ok := ctx.Value(attemptsKey{}).(*attempts); ok {
			a.count(cmd.Name(), err)
		}
		return err
	}
}

// ProcessPipelineHook implements redis.Hook: it counts one attempt per command.
func (attemptHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if a, ok := ctx.Value(attemptsKey{}).(*attempts); ok {
			for _, c := range cmds {
				a.count(c.Name(), c.Err())
			}
		}
		return err
	}
}

// redisExec is the Executor of one thread.
type redisExec struct {
	cc    *redis.ClusterClient
	cnt   *attempts
	pairs []any
	cmds  []redis.Cmder
}

// Exec implements Executor.
func (e *redisExec) Exec(ctx context.Context, reqs []Request, out []Outcome) ExecInfo {
	n0, r0 := e.cnt.n.Load(), e.cnt.redirects.Load()
	ctx = context.WithValue(ctx, attemptsKey{}, e.cnt)
	if len(reqs) == 1 {
		out[0] = outcome(reqs[0].Op, e.issue(ctx, e.cc, reqs[0]).Err())
	} else {
		pipe := e.cc.Pipeline()
		e.cmds = e.cmds[:0]
		for _, r := range reqs {
			e.cmds = append(e.cmds, e.issue(ctx, pipe, r))
		}
		// Exec's error is the first command's error; each command has its own.
		_, _ = pipe.Exec(ctx)
		for i, c := range e.cmds {
			out[i] = outcome(reqs[i].Op, c.Err())
		}
	}
	n, r := e.cnt.n.Load()-n0, e.cnt.redirects.Load()-r0
	return ExecInfo{Retries: max(0, n-r-int64(len(reqs))), Redirects: r}
}

// issue sends r through c (the cluster client, or a pipeline that sends it later).
func (e *redisExec) issue(ctx context.Context, c redis.Cmdable, r Request) redis.Cmder {
	switch r.Op {
	case OpGet:
		return c.Get(ctx, r.Keys[0])
	case OpPutIfAbsent:
		return c.SetArgs(ctx, r.Keys[0], r.Values[0], redis.SetArgs{Mode: "NX"})
	case OpPut:
		return c.Set(ctx, r.Keys[0], r.Values[0], 0)
	default:
		// MSet copies its arguments, so the scratch slice can be reused.
		e.pairs = e.pairs[:0]
		for i, k := range r.Keys {
			e.pairs = append(e.pairs, k, r.Values[i])
		}
		return c.MSet(ctx, e.pairs...)
	}
}

// outcome turns a request's error into its Outcome: a nil reply is a get's
// miss or a put-if-absent's loss.
func outcome(op Op, err error) Outcome {
	switch {
	case err == nil:
		return Outcome{Hit: true}
	case errors.Is(err, redis.Nil) && (op == OpGet || op == OpPutIfAbsent):
		return Outcome{}
	}
	return Outcome{Err: err}
}
