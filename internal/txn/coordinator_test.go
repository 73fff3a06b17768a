package txn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestCommitAcrossGroups(t *testing.T) {
	m := newMemGroups(3, testOptions)
	c := newCoordinator(m)
	res, err := c.Run(t.Context(), puts("g0a", "1", "g1b", "2", "g2c", "3", "g0d", "4"))
	if err != nil || !res.Committed || res.Participants != 3 || res.Attempts != 1 {
		t.Fatalf("Run = %+v, %v; want committed by 3 participants in 1 attempt", res, err)
	}
	for k, want := range map[string]string{"g0a": "1", "g1b": "2", "g2c": "3", "g0d": "4"} {
		if v, _ := m.get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if n := m.locked(); n != 0 {
		t.Errorf("%d transactions still hold locks", n)
	}
	if n := m.records(); n != 0 {
		t.Errorf("%d records left after every participant committed", n)
	}
}

func TestPutNXFindsAKey(t *testing.T) {
	m := newMemGroups(3, testOptions)
	m.set("g1b", "old")
	ops := []Op{{Kind: OpPutNX, Key: []byte("g0a"), Value: []byte("1")}, {Kind: OpPutNX, Key: []byte("g1b"), Value: []byte("2")}}
	res, err := newCoordinator(m).Run(t.Context(), ops)
	if err != nil || res.Committed {
		t.Fatalf("Run = %+v, %v; want not committed", res, err)
	}
	if _, ok := m.get("g0a"); ok {
		t.Error("g0a was written although g1b existed")
	}
	if v, _ := m.get("g1b"); v != "old" {
		t.Errorf("g1b = %q", v)
	}
	if n := m.locked(); n != 0 {
		t.Errorf("%d transactions still hold locks", n)
	}
}

func TestDelCountsWhatExisted(t *testing.T) {
	m := newMemGroups(3, testOptions)
	m.set("g0a", "1")
	m.set("g2c", "3")
	ops := []Op{{Kind: OpDel, Key: []byte("g0a")}, {Kind: OpDel, Key: []byte("g1b")}, {Kind: OpDel, Key: []byte("g2c")}, {Kind: OpDel, Key: []byte("g0a")}}
	res, err := newCoordinator(m).Run(t.Context(), ops)
	if err != nil || !res.Committed || res.Existed != 2 {
		t.Fatalf("Run = %+v, %v; want committed, 2 existed", res, err)
	}
	for _, k := range []string{"g0a", "g2c"} {
		if _, ok := m.get(k); ok {
			t.Errorf("%s still exists", k)
		}
	}
}

func TestReadSeesEveryGroupAndReleases(t *testing.T) {
	m := newMemGroups(3, testOptions)
	m.set("g0a", "1")
	m.set("g2c", "3")
	res, err := newCoordinator(m).Run(t.Context(), reads("g2c", "g0a", "g1b", "g2c"))
	if err != nil || !res.Committed {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	got := fmt.Sprint(bytesStrings(res.Values), res.Found)
	if want := "[3 1  3] [true true false true]"; got != want {
		t.Errorf("read %s, want %s", got, want)
	}
	if n := m.locked(); n != 0 {
		t.Errorf("%d transactions still hold locks", n)
	}
}

func bytesStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

var errDied = errors.New("coordinator died")

// TestCoordinatorDies stops the coordinator at each failpoint, then has the
// participants find its locks stuck and resolve them from the record: what was
// decided stays decided, what was not is aborted.
func TestCoordinatorDies(t *testing.T) {
	for _, tc := range []struct {
		at   Point
		want string
	}{
		{AfterPrepare, "old"},
		{AfterDecision, "new"},
		{AfterFirstCommit, "new"},
	} {
		t.Run(fmt.Sprint(tc.at), func(t *testing.T) {
			m := newMemGroups(3, testOptions)
			for _, k := range []string{"g0a", "g1b", "g2c"} {
				m.set(k, "old")
			}
			c := newCoordinator(m)
			c.Failpoint = func(p Point) error {
				if p == tc.at {
					return errDied
				}
				return nil
			}
			_, err := c.Run(t.Context(), puts("g0a", "new", "g1b", "new", "g2c", "new"))
			if !errors.Is(err, errDied) {
				t.Fatalf("Run: %v, want the failpoint's error", err)
			}
			// Until the timeout, readers meet the locks and nobody resolves them.
			if s := m.stuck(); len(s) != 0 {
				t.Fatalf("stuck before the timeout: %v", s)
			}
			other := newCoordinator(m)
			other.Node = 2
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			_, err = other.Run(ctx, reads("g1b", "g2c"))
			cancel()
			if !errors.Is(err, ErrNotCommitted) {
				t.Fatalf("a read under the dead coordinator's locks: %v, want it to wait", err)
			}
			m.advance(2 * testOptions.Timeout)
			m.recoverAll(t)
			for _, k := range []string{"g0a", "g1b", "g2c"} {
				if v, _ := m.get(k); v != tc.want {
					t.Errorf("%s = %q, want %q", k, v, tc.want)
				}
			}
			if n := m.locked(); n != 0 {
				t.Errorf("%d transactions still hold locks", n)
			}
			// A committed record outlives its dead coordinator until its group's
			// leader finishes the transaction; an aborted one until it is pruned.
			committed := tc.want == "new"
			if n := m.finishAll(t, other); n != boolInt(committed) {
				t.Errorf("%d unfinished transactions, want %d", n, boolInt(committed))
			}
			if n, want := m.records(), boolInt(!committed); n != want {
				t.Errorf("%d records left, want %d", n, want)
			}
			res, err := other.Run(t.Context(), reads("g0a", "g1b", "g2c"))
			if err != nil || fmt.Sprint(bytesStrings(res.Values)) != fmt.Sprintf("[%s %s %s]", tc.want, tc.want, tc.want) {
				t.Errorf("read after recovery: %+v, %v", res, err)
			}
		})
	}
}

// TestLateDecisionLoses: a coordinator that wakes up after its transaction was
// aborted as stuck cannot commit it any more.
func TestLateDecisionLoses(t *testing.T) {
	m := newMemGroups(2, testOptions)
	id := ID{TS: m.clock().UnixNano(), Node: 1, Seq: 1}
	for _, k := range []string{"g0a", "g1b"} {
		r, err := m.Call(t.Context(), Command{Verb: Prepare, Route: []byte(k), ID: id, Record: []byte("g0a"), Ops: puts(k, "x")})
		if err != nil || r.Vote != VoteYes {
			t.Fatalf("prepare %s: %+v, %v", k, r, err)
		}
	}
	m.advance(2 * testOptions.Timeout)
	if st := m.recoverAll(t); len(st) != 2 || st[0] != StatusAborted || st[1] != StatusAborted {
		t.Fatalf("recovered %v, want two aborts", st)
	}
	r, err := m.Call(t.Context(), Command{Verb: Decide, Route: []byte("g0a"), ID: id, Commit: true})
	if err != nil || r.Status != StatusAborted {
		t.Errorf("late decision: %+v, %v; want the record to stay aborted", r, err)
	}
	if _, ok := m.get("g1b"); ok {
		t.Error("an aborted transaction wrote")
	}
}

func TestParticipantDown(t *testing.T) {
	m := newMemGroups(3, testOptions)
	m.setDown(1, true)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := newCoordinator(m).Run(ctx, puts("g0a", "1", "g1b", "2", "g2c", "3"))
	if !errors.Is(err, ErrNotCommitted) {
		t.Fatalf("Run with a group down: %v, want ErrNotCommitted", err)
	}
	if n := m.locked(); n != 0 {
		t.Errorf("%d transactions hold locks in the groups that are up", n)
	}

	// Down after it voted: its locks stay until it is back and finds them stuck.
	m.setDown(1, false)
	c := newCoordinator(m)
	c.Failpoint = func(p Point) error {
		if p == AfterPrepare {
			m.setDown(1, true)
		}
		return nil
	}
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if res, err := c.Run(ctx, puts("g0a", "1", "g1b", "2")); !res.Committed || err == nil {
		t.Fatalf("Run = %+v, %v; want it decided, with group 1 not told", res, err)
	}
	m.setDown(1, false)
	m.advance(2 * testOptions.Timeout)
	m.recoverAll(t)
	a, _ := m.get("g0a")
	b, _ := m.get("g1b")
	if a != "1" || b != "2" {
		t.Errorf("after recovery g0a=%q g1b=%q, want the decided writes", a, b)
	}
	if n := m.locked(); n != 0 {
		t.Errorf("%d transactions still hold locks", n)
	}
}

// youngerHolds has a transaction younger than any a test starts after now lock g1b
// in g, and abort 20 ms later.
func youngerHolds(t *testing.T, g Groups, now time.Time) {
	t.Helper()
	young := ID{TS: now.Add(time.Hour).UnixNano(), Node: 2, Seq: 1}
	r, err := g.Call(t.Context(), Command{Verb: Prepare, Route: []byte("g1b"), ID: young, Record: []byte("g2c"), Ops: puts("g1b", "young")})
	if err != nil || r.Vote != VoteYes {
		t.Fatalf("the younger transaction's prepare = %+v, %v", r, err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = g.Call(context.Background(), Command{Verb: Abort, Route: []byte("g1b"), ID: young})
	}()
}

// TestOlderWaitsForYounger: a transaction that meets a younger one's lock waits for
// it (wait-die) in the same attempt, and counts its waits.
func TestOlderWaitsForYounger(t *testing.T) {
	m := newMemGroups(3, testOptions)
	youngerHolds(t, m, m.clock())
	res, err := newCoordinator(m).Run(t.Context(), puts("g0a", "old", "g1b", "old"))
	if err != nil || !res.Committed || res.Attempts != 1 || res.Waits == 0 {
		t.Fatalf("Run = %+v, %v; want committed in 1 attempt after waiting", res, err)
	}
	if v, _ := m.get("g1b"); v != "old" {
		t.Errorf("g1b = %q, want old", v)
	}
}

// TestWaitDieNoDeadlock runs transactions that take the same keys in opposite
// orders at once: wait-die lets every one of them through.
func TestWaitDieNoDeadlock(t *testing.T) {
	m := newMemGroups(3, testOptions)
	c := newCoordinator(m)
	const workers, each = 6, 30
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				tag := fmt.Sprintf("%d.%d", w, i)
				ops := puts("g0x", tag, "g1y", tag, "g2z", tag)
				if w%2 == 1 {
					ops = puts("g2z", tag, "g1y", tag, "g0x", tag)
				}
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				res, err := c.Run(ctx, ops)
				cancel()
				if err != nil || !res.Committed {
					errs <- fmt.Errorf("%s: %+v, %w", tag, res, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	x, _ := m.get("g0x")
	y, _ := m.get("g1y")
	z, _ := m.get("g2z")
	if x != y || y != z {
		t.Errorf("the keys hold the writes of different transactions: %s %s %s", x, y, z)
	}
}

// TestBankUnderFaults moves money between accounts in different groups while
// commands are lost, their replies lost, applied twice, or applied late (after
// the coordinator gave up waiting for them), and while readers sum
// the accounts. Every read sees the whole sum; at the end, with the stuck
// transactions resolved, no lock is left and every account holds a value written
// at or after its writer's last acknowledged transfer. DHT_TXN_SEEDS runs more
// seeds.
func TestBankUnderFaults(t *testing.T) {
	seeds := 40
	if s, err := strconv.Atoi(os.Getenv("DHT_TXN_SEEDS")); err == nil {
		seeds = s
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { bank(t, seed) })
	}
}

func bank(t *testing.T, seed uint64) {
	const (
		groups    = 4
		pairs     = 3
		total     = 100
		transfers = 40
	)
	m := newMemGroups(groups, testOptions)
	rng := rand.New(rand.NewPCG(seed, 1))
	var rngMu sync.Mutex
	m.fault = func(int, Command) fault {
		rngMu.Lock()
		defer rngMu.Unlock()
		switch r := rng.IntN(100); {
		case r < 3:
			return loseRequest
		case r < 6:
			return loseReply
		case r < 9:
			return repeat
		case r < 12:
			return late
		}
		return deliver
	}
	account := func(pair, side int) string {
		return fmt.Sprintf("g%dp%d", (pair+side*(1+pair%(groups-1)))%groups, pair)
	}
	var keys []string
	for p := range pairs {
		a, b := account(p, 0), account(p, 1)
		m.set(a, strconv.Itoa(total))
		m.set(b, "0")
		keys = append(keys, a, b)
	}
	stop := make(chan struct{})
	var recoverers sync.WaitGroup
	recoverers.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			for _, s := range m.stuck() {
				_, _ = Recover(t.Context(), m, s)
			}
		}
	})
	// written[p] is every balance of pair p's first account written at or after the
	// last acknowledged transfer.
	written := make([][]int, pairs)
	var wg sync.WaitGroup
	for p := range pairs {
		wg.Go(func() {
			c := newCoordinator(m)
			c.Node = uint32(10 + p)
			r := rand.New(rand.NewPCG(seed, uint64(p)))
			for range transfers {
				x := r.IntN(total + 1)
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				res, err := c.Run(ctx, puts(account(p, 0), strconv.Itoa(x), account(p, 1), strconv.Itoa(total-x)))
				cancel()
				switch {
				case err == nil && res.Committed:
					written[p] = []int{x}
				case err == nil:
					t.Errorf("a transfer did not commit, without an error: %+v", res)
				default:
					written[p] = append(written[p], x)
				}
			}
		})
	}
	readerErrs := make(chan error, 100)
	for r := range 2 {
		wg.Go(func() {
			c := newCoordinator(m)
			c.Node = uint32(20 + r)
			for range transfers {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				res, err := c.Run(ctx, reads(keys...))
				cancel()
				if err != nil {
					continue
				}
				for p := range pairs {
					a, _ := strconv.Atoi(string(res.Values[2*p]))
					b, _ := strconv.Atoi(string(res.Values[2*p+1]))
					if a+b != total {
						readerErrs <- fmt.Errorf("pair %d read %d+%d, want a sum of %d", p, a, b, total)
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	recoverers.Wait()
	close(readerErrs)
	for err := range readerErrs {
		t.Error(err)
	}
	m.fault = nil
	m.advance(2 * testOptions.Timeout)
	m.recoverAll(t)
	if n := m.locked(); n != 0 {
		t.Errorf("%d transactions still hold locks", n)
	}
	for p := range pairs {
		av, _ := m.get(account(p, 0))
		bv, _ := m.get(account(p, 1))
		a, _ := strconv.Atoi(av)
		b, _ := strconv.Atoi(bv)
		if a+b != total {
			t.Errorf("pair %d: %d+%d, want a sum of %d", p, a, b, total)
		}
		if written[p] != nil && !containsInt(written[p], a) {
			t.Errorf("pair %d holds %d, not one of %v (the last acknowledged transfer and those after it)", p, a, written[p])
		}
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// releasingGroups are memGroups that tell when a group releases a lock.
type releasingGroups struct {
	*memGroups
	rmu      sync.Mutex
	released map[int]chan struct{}
}

func (g *releasingGroups) Released(route []byte) <-chan struct{} {
	g.rmu.Lock()
	defer g.rmu.Unlock()
	ch := g.released[groupOf(route)]
	if ch == nil {
		ch = make(chan struct{})
		g.released[groupOf(route)] = ch
	}
	return ch
}

func (g *releasingGroups) Call(ctx context.Context, c Command) (Reply, error) {
	r, err := g.memGroups.Call(ctx, c)
	if c.Verb == Commit || c.Verb == Abort {
		g.rmu.Lock()
		if ch := g.released[groupOf(c.Route)]; ch != nil {
			close(ch)
			delete(g.released, groupOf(c.Route))
		}
		g.rmu.Unlock()
	}
	return r, err
}

// TestWaitEndsWithTheRelease: where the groups tell when they release a lock, an
// older transaction that waits for a younger one asks again once the lock is
// released, not after Poll (here far longer than the test's deadline).
func TestWaitEndsWithTheRelease(t *testing.T) {
	m := &releasingGroups{memGroups: newMemGroups(3, testOptions), released: map[int]chan struct{}{}}
	youngerHolds(t, m, m.clock())
	c := &Coordinator{Groups: m, GroupOf: groupOf, Node: 1, Now: m.clock, Poll: time.Hour, Cleanup: time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := c.Run(ctx, puts("g0a", "old", "g1b", "old"))
	if err != nil || !res.Committed || res.Waits == 0 {
		t.Fatalf("Run = %+v, %v; want committed once the younger one let go", res, err)
	}
}
