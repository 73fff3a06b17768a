package server

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"
)

// arrivedAt returns how many callers wait at barrier name, or -1 if it does not exist.
func (b *barriers) arrivedAt(name string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if br, ok := b.m[name]; ok {
		return br.arrived
	}
	return -1
}

func waitArrived(t *testing.T, b *barriers, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.arrivedAt(name) != n {
		if time.Now().After(deadline) {
			t.Fatalf("barrier %q: %d arrived, want %d", name, b.arrivedAt(name), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBarrierReleasesTogether: nobody leaves before the last arrival, then everybody
// does.
func TestBarrierReleasesTogether(t *testing.T) {
	b := newBarriers()
	const n = 5
	results := make(chan error, n)
	for range n - 1 {
		go func() { results <- b.arrive(context.Background(), "start", n, time.Minute) }()
	}
	waitArrived(t, b, "start", n-1)
	select {
	case err := <-results:
		t.Fatalf("a caller left before everyone arrived: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := b.arrive(context.Background(), "start", n, time.Minute); err != nil {
		t.Fatalf("last arrival: %v", err)
	}
	for i := range n - 1 {
		select {
		case err := <-results:
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d waiters released", i, n-1)
		}
	}
	if got := b.arrivedAt("start"); got != -1 {
		t.Errorf("released barrier still held (%d arrived)", got)
	}
}

func TestBarrierOfOne(t *testing.T) {
	b := newBarriers()
	if err := b.arrive(context.Background(), "solo", 1, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if len(b.m) != 0 {
		t.Errorf("barriers left: %v", b.m)
	}
}

// TestBarrierTimeout: the caller who gives up reports how many had arrived, and its
// arrival is withdrawn.
func TestBarrierTimeout(t *testing.T) {
	b := newBarriers()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	other := make(chan error, 1)
	go func() { other <- b.arrive(ctx, "x", 3, time.Hour) }()
	waitArrived(t, b, "x", 1)

	start := time.Now()
	err := b.arrive(context.Background(), "x", 3, 30*time.Millisecond)
	if err == nil || err.Error() != "barrier 'x': 2 of 3 clients arrived within 30ms" {
		t.Fatalf("timed-out arrival: %v", err)
	}
	if d := time.Since(start); d < 30*time.Millisecond || d > 5*time.Second {
		t.Errorf("timed out after %v, want about 30ms", d)
	}
	if got := b.arrivedAt("x"); got != 1 {
		t.Fatalf("after one caller gave up, %d arrived, want 1", got)
	}

	// Its place is free again: two more arrivals complete the barrier.
	done := make(chan error, 1)
	go func() { done <- b.arrive(context.Background(), "x", 3, time.Hour) }()
	waitArrived(t, b, "x", 2)
	if err := b.arrive(context.Background(), "x", 3, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []chan error{other, done} {
		if err := <-ch; err != nil {
			t.Errorf("waiter: %v", err)
		}
	}
}

func TestBarrierAllTimeOutThenReuse(t *testing.T) {
	b := newBarriers()
	if err := b.arrive(context.Background(), "y", 2, 5*time.Millisecond); err == nil || err.Error() != "barrier 'y': 1 of 2 clients arrived within 5ms" {
		t.Fatalf("lone arrival: %v", err)
	}
	if got := b.arrivedAt("y"); got != -1 {
		t.Fatalf("barrier kept after everyone left: %d arrived", got)
	}
	// A new barrier under the same name may want a different count.
	if err := b.arrive(context.Background(), "y", 1, time.Second); err != nil {
		t.Fatalf("reuse with another count: %v", err)
	}
}

func TestBarrierCountMismatch(t *testing.T) {
	b := newBarriers()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	go func() { first <- b.arrive(ctx, "z", 3, time.Hour) }()
	waitArrived(t, b, "z", 1)

	err := b.arrive(context.Background(), "z", 2, time.Hour)
	if err == nil || err.Error() != "barrier 'z' is waiting for 3 clients, not 2" {
		t.Fatalf("mismatched count: %v", err)
	}
	if got := b.arrivedAt("z"); got != 1 {
		t.Fatalf("a refused arrival was counted: %d arrived", got)
	}
	cancel()
	if err := <-first; err == nil || err.Error() != "barrier 'z': node shutting down" {
		t.Fatalf("canceled waiter: %v", err)
	}
	if got := b.arrivedAt("z"); got != -1 {
		t.Fatalf("barrier kept after its only waiter left: %d arrived", got)
	}
}

func TestBarrierReuseAfterRelease(t *testing.T) {
	b := newBarriers()
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for range 3 {
			wg.Go(func() { errs <- b.arrive(context.Background(), "loop", 3, 10*time.Second) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	if len(b.m) != 0 {
		t.Fatalf("barriers left: %v", b.m)
	}
}

func TestBarrierNamesAreIndependent(t *testing.T) {
	b := newBarriers()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := make(chan error, 1)
	go func() { a <- b.arrive(ctx, "a", 2, time.Hour) }()
	waitArrived(t, b, "a", 1)
	if err := b.arrive(context.Background(), "b", 1, time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a:
		t.Fatalf("barrier a released by barrier b: %v", err)
	default:
	}
	if err := b.arrive(context.Background(), "a", 2, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-a; err != nil {
		t.Fatal(err)
	}
}

// TestBarrierStress: many groups meet at once under racing timeouts; every group of
// full size is released, and nothing is left behind.
func TestBarrierStress(t *testing.T) {
	b := newBarriers()
	var wg sync.WaitGroup
	for g := range 50 {
		name := "g" + strconv.Itoa(g)
		for range 4 {
			wg.Go(func() {
				if err := b.arrive(context.Background(), name, 4, 10*time.Second); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			})
		}
		// A group that never fills up times out.
		wg.Go(func() { _ = b.arrive(context.Background(), name+"-short", 2, time.Millisecond) })
	}
	wg.Wait()
	if len(b.m) != 0 {
		t.Fatalf("barriers left: %v", b.m)
	}
}

func TestParseBarrier(t *testing.T) {
	tests := []struct {
		count, ms string
		want      int
		wantDur   time.Duration
		err       string
	}{
		{"3", "1000", 3, time.Second, ""},
		{"1", "1", 1, time.Millisecond, ""},
		{"100000", "3600000", 100000, time.Hour, ""},
		{"0", "1000", 0, 0, "ERR barrier count must be an integer between 1 and 100000"},
		{"100001", "1000", 0, 0, "ERR barrier count must be an integer between 1 and 100000"},
		{"-1", "1000", 0, 0, "ERR barrier count must be an integer between 1 and 100000"},
		{"x", "1000", 0, 0, "ERR barrier count must be an integer between 1 and 100000"},
		{"3", "0", 0, 0, "ERR barrier timeout must be a number of milliseconds between 1 and 3600000"},
		{"3", "-5", 0, 0, "ERR barrier timeout must be a number of milliseconds between 1 and 3600000"},
		{"3", "3600001", 0, 0, "ERR barrier timeout must be a number of milliseconds between 1 and 3600000"},
		{"3", "1.5", 0, 0, "ERR barrier timeout must be a number of milliseconds between 1 and 3600000"},
		// Large enough that ms*1e6 overflows int64 and wraps negative.
		{"3", "9223372036855", 0, 0, "ERR barrier timeout must be a number of milliseconds between 1 and 3600000"},
		{"3", "18446744073709", 0, 0, "ERR barrier timeout must be a number of milliseconds between 1 and 3600000"},
	}
	for _, tt := range tests {
		args := [][]byte{[]byte("DHT.BARRIER"), []byte("name"), []byte(tt.count), []byte(tt.ms)}
		count, d, err := parseBarrier(args)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("parseBarrier(%s, %s) = %d, %v, %v; want error %q", tt.count, tt.ms, count, d, err, tt.err)
			}
			if got := barrierWait(args); got != 0 {
				t.Errorf("barrierWait(%s, %s) = %v for invalid arguments", tt.count, tt.ms, got)
			}
			continue
		}
		if err != nil || count != tt.want || d != tt.wantDur {
			t.Errorf("parseBarrier(%s, %s) = %d, %v, %v; want %d, %v", tt.count, tt.ms, count, d, err, tt.want, tt.wantDur)
		}
		if got := barrierWait(args); got != tt.wantDur {
			t.Errorf("barrierWait(%s, %s) = %v, want %v", tt.count, tt.ms, got, tt.wantDur)
		}
	}
}
