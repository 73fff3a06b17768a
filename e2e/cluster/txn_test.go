package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
)

// TestMultiKeyCommandsAcrossNodes: the multi-key commands whose keys live on every
// node answer as Redis would answer them for keys of one slot, through any node:
// with replication, with a log of one member per range, and with no log at all.
func TestMultiKeyCommandsAcrossNodes(t *testing.T) {
	replicationDegrees(t, checkMultiKeyCommands)
	t.Run("in memory", func(t *testing.T) {
		cfg, path := testConfig(t, 3, func(c *config.Config) { c.ReplicationDegree = 1 })
		for _, n := range cfg.Nodes {
			startNode(t, path, cfg, n.Name, "--in-memory")
		}
		for _, n := range cfg.Nodes {
			waitState(t, n.Addr, "ok", 15*time.Second)
		}
		checkMultiKeyCommands(t, cfg)
	})
}

func checkMultiKeyCommands(t *testing.T, cfg config.Config) {
	ctx := t.Context()
	var keys []string
	for i := range 3 {
		keys = append(keys, keysOn(t, 3, i, 1, "multi")...)
	}
	a, b, c := keys[0], keys[1], keys[2]
	via := plainClient(t, cfg.Nodes[1].Addr)
	cc := clusterClient(t, cfg)
	check := func(what string, got, want any, err error) {
		t.Helper()
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s = %v, %v; want %v", what, got, err, want)
		}
	}
	r1, err := via.MSet(ctx, a, "1", b, "2", c, "3").Result()
	check("MSET", r1, "OK", err)
	vals, err := cc.MGet(ctx, a, b, c, "nokey").Result()
	check("MGET", vals, []any{"1", "2", "3", nil}, err)
	n, err := via.Exists(ctx, a, b, c, a, "nokey").Result()
	check("EXISTS", n, 4, err)
	n, err = via.Touch(ctx, a, c, "nokey").Result()
	check("TOUCH", n, 2, err)
	ok, err := via.MSetNX(ctx, "fresh", "x", a, "9").Result()
	check("MSETNX over an existing key", ok, false, err)
	if err := via.Get(ctx, "fresh").Err(); err != redis.Nil {
		t.Fatalf("MSETNX that found a key wrote another: %v", err)
	}
	n, err = via.Del(ctx, a, b, "nokey", a).Result()
	check("DEL", n, 2, err)
	n, err = via.Unlink(ctx, b, c).Result()
	check("UNLINK", n, 1, err)
	ok, err = via.MSetNX(ctx, a, "x", b, "y", c, "z").Result()
	check("MSETNX", ok, true, err)
	vals, err = via.MGet(ctx, a, b, c).Result()
	check("MGET after MSETNX", vals, []any{"x", "y", "z"}, err)

	info, err := via.Info(ctx, "transactions").Result()
	if err != nil || !strings.Contains(info, "txn_committed:") || strings.Contains(info, "txn_committed:0\r\n") {
		t.Errorf("INFO transactions counts no commit:\n%s (%v)", info, err)
	}
	for _, field := range []string{"txn_retries:", "txn_waits:", "txn_steps_through_raft:"} {
		if !strings.Contains(info, field) {
			t.Errorf("INFO transactions has no %s:\n%s", field, info)
		}
	}
	// Where every node holds a replica of every group, the coordinator sends the
	// steps for groups it does not lead through Raft, not as requests.
	through := strings.Contains(info, "txn_steps_through_raft:0\r\n")
	if every := cfg.ReplicationDegree == len(cfg.Nodes); every == through {
		t.Errorf("replication degree %d of %d nodes, yet INFO transactions says:\n%s", cfg.ReplicationDegree, len(cfg.Nodes), info)
	}
}

// TestMultiKeyAtomicWhileANodeRestarts has writers MSET groups of keys on every node
// (each group's values split a constant sum and carry the writer's sequence number)
// while readers MGET them, and kills and restarts a node meanwhile. No reader sees
// part of a group or a wrong sum, and at the end every group holds at least its
// writer's last acknowledged MSET.
func TestMultiKeyAtomicWhileANodeRestarts(t *testing.T) {
	const (
		writers = 4
		total   = 300
	)
	cfg, path := testConfig(t, 3, replicated)
	procs := startNodes(t, path, cfg)
	groups := make([][]string, writers)
	for w := range writers {
		for i := range 3 {
			groups[w] = append(groups[w], keysOn(t, 3, i, writers, "acct")[w])
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Writers 0 and 3 send their MSETs to the node that is killed, so that some
	// transactions lose their coordinator half-way.
	clients := []*redis.Client{plainClient(t, cfg.Nodes[2].Addr), plainClient(t, cfg.Nodes[0].Addr), plainClient(t, cfg.Nodes[1].Addr)}
	acked := make([]atomic.Int64, writers)
	var wrote, read atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for seq := int64(1); ctx.Err() == nil; seq++ {
				x, y := rng.IntN(total+1), 0
				y = rng.IntN(total - x + 1)
				var args []any
				for i, amount := range []int{x, y, total - x - y} {
					args = append(args, groups[w][i], fmt.Sprintf("%d:%d", seq, amount))
				}
				if err := clients[w%3].MSet(ctx, args...).Err(); err == nil {
					acked[w].Store(seq)
					wrote.Add(1)
				}
			}
		})
	}
	errs := make(chan error, 100)
	for r := range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				w := int(read.Load()) % writers
				vals, err := clients[1+r].MGet(ctx, groups[w]...).Result()
				if err != nil {
					continue
				}
				read.Add(1)
				if msg := checkGroup(vals, total); msg != "" {
					select {
					case errs <- fmt.Errorf("writer %d's keys: %s", w, msg):
					default:
					}
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	procs[2].kill()
	time.Sleep(3 * time.Second)
	procs[2] = startNode(t, path, cfg, cfg.Nodes[2].Name)
	waitState(t, procs[2].addr, "ok", 20*time.Second)
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if wrote.Load() == 0 || read.Load() == 0 {
		t.Fatalf("%d MSETs acknowledged, %d MGETs answered: the workload did not run", wrote.Load(), read.Load())
	}
	c := plainClient(t, cfg.Nodes[2].Addr)
	for w := range writers {
		vals, err := c.MGet(t.Context(), groups[w]...).Result()
		if err != nil {
			t.Fatalf("final MGET: %v", err)
		}
		if msg := checkGroup(vals, total); msg != "" {
			t.Errorf("writer %d at the end: %s", w, msg)
		}
		seq, _, _ := strings.Cut(fmt.Sprint(vals[0]), ":")
		if n, _ := strconv.ParseInt(seq, 10, 64); n < acked[w].Load() {
			t.Errorf("writer %d: the keys hold MSET #%d, but #%d was acknowledged", w, n, acked[w].Load())
		}
	}
	// The transactions the dead coordinator left behind are resolved by the
	// groups' leaders: no lock and no committed record stays.
	for _, n := range cfg.Nodes {
		waitTxnDrained(t, plainClient(t, n.Addr), 20*time.Second)
	}
	t.Logf("%d MSETs acknowledged, %d MGETs checked", wrote.Load(), read.Load())
}

// waitTxnDrained waits until the node holds no transaction's locks, and no record of
// a committed transaction that is not finished.
func waitTxnDrained(t *testing.T, c *redis.Client, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		info, err := c.Info(t.Context(), "transactions").Result()
		if err == nil && strings.Contains(info, "txn_prepared_here:0\r\n") && strings.Contains(info, "txn_unfinished_here:0\r\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("transactions still held after %v:\n%s (%v)", within, info, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkGroup returns what is wrong with the values of one writer's keys: they must
// all be missing (never written) or all carry one sequence number, with amounts
// that add up to total.
func checkGroup(vals []any, total int) string {
	if vals[0] == nil {
		for _, v := range vals {
			if v != nil {
				return fmt.Sprintf("partly written: %v", vals)
			}
		}
		return ""
	}
	var seq string
	sum := 0
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("partly written: %v", vals)
		}
		sq, amount, _ := strings.Cut(s, ":")
		if seq != "" && sq != seq {
			return fmt.Sprintf("values of different MSETs: %v", vals)
		}
		seq = sq
		n, _ := strconv.Atoi(amount)
		sum += n
	}
	if sum != total {
		return fmt.Sprintf("sum %d, want %d: %v", sum, total, vals)
	}
	return ""
}

// TestMultiKeyFiveNodesThreeCopies: at R = 3 on five nodes each node holds three of
// the five ranges, so a coordinator sends a transaction's steps through Raft to the
// groups it holds a replica of, and as requests to the leaders of the two others.
// MSETs over all five ranges, through every node in turn, land whole.
func TestMultiKeyFiveNodesThreeCopies(t *testing.T) {
	cfg, _ := startCluster(t, 5, replicated)
	ctx := t.Context()
	var keys []string
	for i := range 5 {
		keys = append(keys, keysOn(t, 5, i, 2, "five")...)
	}
	for round := range 25 {
		via := plainClient(t, cfg.Nodes[round%5].Addr)
		var args []any
		for j, k := range keys {
			args = append(args, k, fmt.Sprintf("%d.%d", round, j))
		}
		if err := via.MSet(ctx, args...).Err(); err != nil {
			t.Fatalf("round %d: MSET through %s: %v", round, cfg.Nodes[round%5].Name, err)
		}
		vals, err := plainClient(t, cfg.Nodes[(round+2)%5].Addr).MGet(ctx, keys...).Result()
		if err != nil {
			t.Fatalf("round %d: MGET: %v", round, err)
		}
		for j, v := range vals {
			if want := fmt.Sprintf("%d.%d", round, j); v != want {
				t.Fatalf("round %d: %s = %v after the MSET, want %s", round, keys[j], v, want)
			}
		}
	}
	through := 0
	for _, n := range cfg.Nodes {
		info, err := plainClient(t, n.Addr).Info(ctx, "transactions").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "txn_steps_through_raft:"); ok {
				k, _ := strconv.Atoi(v)
				through += k
			}
		}
	}
	if through == 0 {
		t.Error("no transaction step went through Raft, though every node holds three of the five ranges")
	}
}
