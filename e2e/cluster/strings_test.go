package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestCountersAndKeyCommandsThroughAnyNode: INCR from many clients at once, through
// any node (forwarded to the owner) or routed by a cluster client, loses no
// increment; key commands on two keys of one slot are forwarded whole, and keys of two
// slots get CROSSSLOT.
func TestCountersAndKeyCommandsThroughAnyNode(t *testing.T) {
	cfg, _ := startCluster(t, 3, nil)
	ctx := context.Background()
	cc := clusterClient(t, cfg)
	var counters []string
	for owner := range 3 {
		counters = append(counters, keysOn(t, 3, owner, 1, fmt.Sprintf("counter%d", owner))...)
	}
	const workers, each = 6, 100
	var wg sync.WaitGroup
	for w := range workers {
		c := plainClient(t, cfg.Nodes[w%3].Addr)
		wg.Go(func() {
			for range each {
				for _, k := range counters {
					var err error
					if w%2 == 0 {
						err = c.Incr(ctx, k).Err()
					} else {
						err = cc.IncrBy(ctx, k, 2).Err()
					}
					if err != nil {
						t.Errorf("INCR %s: %v", k, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	want := int64(workers / 2 * each * (1 + 2))
	for _, k := range counters {
		if got, err := cc.Get(ctx, k).Int64(); err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", k, got, err, want)
		}
	}

	// Two keys of a slot that n3 owns, through n1.
	via1 := plainClient(t, cfg.Nodes[0].Addr)
	tag := "{" + keysOn(t, 3, 2, 1, "doc")[0] + "}"
	a, b := tag+".a", tag+".b"
	if err := via1.Set(ctx, a, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := via1.Copy(ctx, a, b, 0, false).Result(); err != nil || n != 1 {
		t.Fatalf("COPY = %d, %v", n, err)
	}
	if err := via1.Rename(ctx, b, b+"2").Err(); err != nil {
		t.Fatalf("RENAME: %v", err)
	}
	if got, err := cc.Get(ctx, b+"2").Result(); err != nil || got != "v" {
		t.Fatalf("GET of the renamed copy = %q, %v", got, err)
	}
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	if ok, err := via1.ExpireAt(ctx, a, at).Result(); err != nil || !ok {
		t.Fatalf("EXPIREAT = %v, %v", ok, err)
	}
	if got, err := via1.ExpireTime(ctx, a).Result(); err != nil || got != time.Duration(at.Unix())*time.Second {
		t.Fatalf("EXPIRETIME = %v, %v; want %d s", got, err, at.Unix())
	}
	if err := via1.Rename(ctx, "{a}x", "{b}x").Err(); err == nil || err.Error() != "CROSSSLOT Keys in request don't hash to the same slot" {
		t.Fatalf("RENAME across slots: %v", err)
	}
}
