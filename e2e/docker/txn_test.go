package docker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// partitionDuringCommits has writers MSET groups of keys, one key on each node,
// whose values split a constant sum and carry the writer's sequence number, while
// readers MGET them; meanwhile the leader of a slot range is cut off the network
// and put back. No reader may see part of a group or a wrong sum, and at the end
// every group holds at least its writer's last acknowledged MSET.
func partitionDuringCommits(c *cluster) {
	const (
		writers = 3
		total   = 300
	)
	t := c.t
	c.startAll()
	ds := c.seed(c.clusterClient(), writers)
	groups := make([][]string, writers)
	for w := range groups {
		for i := range ds.byNode {
			groups[w] = append(groups[w], ds.byNode[i][w])
		}
	}
	v := c.waitLeader(0, electBound, c.all(), -1)
	var clients []*redis.Client
	for _, i := range c.others(v) {
		clients = append(clients, c.client(i))
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	acked := make([]atomic.Int64, writers)
	var wrote, read atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for seq := int64(1); ctx.Err() == nil; seq++ {
				x := rng.IntN(total + 1)
				y := rng.IntN(total - x + 1)
				var args []any
				for i, amount := range []int{x, y, total - x - y} {
					args = append(args, groups[w][i], fmt.Sprintf("%d:%d", seq, amount))
				}
				if err := clients[w%len(clients)].MSet(ctx, args...).Err(); err == nil {
					acked[w].Store(seq)
					wrote.Add(1)
				}
			}
		})
	}
	problems := make(chan string, 100)
	for r := range 2 {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				w := n % writers
				vals, err := clients[r%len(clients)].MGet(ctx, groups[w]...).Result()
				if err != nil {
					continue
				}
				read.Add(1)
				if msg := checkSplit(vals, total); msg != "" {
					select {
					case problems <- fmt.Sprintf("writer %d's keys: %s", w, msg):
					default:
					}
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	t.Logf("cutting off %s, leader of group 0", c.cfg.Nodes[v].Name)
	c.disconnect(v)
	time.Sleep(5 * time.Second)
	c.connect(v)
	c.waitCaughtUp(v, catchUpBound)
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	close(problems)
	for p := range problems {
		t.Error(p)
	}
	if wrote.Load() == 0 || read.Load() == 0 {
		t.Fatalf("%d MSETs acknowledged, %d MGETs answered: the workload did not run", wrote.Load(), read.Load())
	}
	for w := range writers {
		var vals []any
		eventually(t, catchUpBound, "the final MGET", func(ctx context.Context) error {
			var err error
			vals, err = c.client(v).MGet(ctx, groups[w]...).Result()
			return err
		})
		if msg := checkSplit(vals, total); msg != "" {
			t.Errorf("writer %d at the end: %s", w, msg)
		}
		seq, _, _ := strings.Cut(fmt.Sprint(vals[0]), ":")
		if n, _ := strconv.ParseInt(seq, 10, 64); n < acked[w].Load() {
			t.Errorf("writer %d: the keys hold MSET #%d, but #%d was acknowledged", w, n, acked[w].Load())
		}
	}
	t.Logf("%d MSETs acknowledged, %d MGETs checked", wrote.Load(), read.Load())
}

// checkSplit returns what is wrong with the values of one writer's keys: the seed's
// values (no MSET yet), or one MSET's values, whose amounts add up to total.
func checkSplit(vals []any, total int) string {
	var seq string
	sum := 0
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("a key is missing: %v", vals)
		}
		sq, amount, _ := strings.Cut(s, ":")
		if strings.HasPrefix(s, "value-of-") {
			sq, amount = "seed", ""
		}
		if seq != "" && sq != seq {
			return fmt.Sprintf("values of different writes: %v", vals)
		}
		seq = sq
		n, _ := strconv.Atoi(amount)
		sum += n
	}
	if seq != "seed" && sum != total {
		return fmt.Sprintf("sum %d, want %d: %v", sum, total, vals)
	}
	return ""
}
