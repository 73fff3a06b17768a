package peer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/resp"
)

// fakePeer is a tiny RESP server on loopback. It answers, in order, on each
// connection:
//
//	ECHO x      bulk x
//	SLEEP ms    +slept, after ms milliseconds (holding back later replies)
//	ERR         -ERR boom
//	HOLD        nothing: the call stays pending
//	CLOSE       closes the connection without answering
type fakePeer struct {
	ln       net.Listener
	accepted atomic.Int32
	open     atomic.Int32
	held     chan struct{}

	mu    sync.Mutex
	conns []net.Conn
}

func newFakePeer(t *testing.T) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePeer{ln: ln, held: make(chan struct{}, 1<<16)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.accepted.Add(1)
			f.open.Add(1)
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			wg.Go(func() {
				defer f.open.Add(-1)
				defer c.Close()
				f.serve(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		f.closeConns()
		wg.Wait()
	})
	return f
}

func (f *fakePeer) addr() string { return f.ln.Addr().String() }

func (f *fakePeer) closeConns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

func (f *fakePeer) serve(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		raw, err := resp.ReadReply(r, nil)
		if err != nil {
			return
		}
		args := parseArgs(raw)
		if len(args) == 0 {
			return
		}
		var out string
		switch args[0] {
		case "ECHO":
			out = "$" + strconv.Itoa(len(args[1])) + "\r\n" + args[1] + "\r\n"
		case "SLEEP":
			ms, _ := strconv.Atoi(args[1])
			time.Sleep(time.Duration(ms) * time.Millisecond)
			out = "+slept\r\n"
		case "ERR":
			out = "-ERR boom\r\n"
		case "HOLD":
			f.held <- struct{}{}
			continue
		case "CLOSE":
			return
		default:
			out = "-ERR unknown\r\n"
		}
		if _, err := c.Write([]byte(out)); err != nil {
			return
		}
	}
}

// parseArgs splits a RESP array of bulks.
func parseArgs(raw []byte) []string {
	lines := strings.Split(string(raw), "\r\n")
	var args []string
	for i := 2; i < len(lines); i += 2 {
		args = append(args, lines[i])
	}
	return args
}

func cmd(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

// within runs fn and fails the test if it does not return within d.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still running after %v", what, d)
	}
}

func TestDoRepliesAndErrorReplies(t *testing.T) {
	f := newFakePeer(t)
	p := NewPool(f.addr(), Options{})
	defer p.Close()
	if p.Addr() != f.addr() {
		t.Errorf("Addr = %q", p.Addr())
	}
	ctx := context.Background()
	reply, err := p.Do(ctx, cmd("ECHO", "hello"))
	if err != nil || string(reply) != bulk("hello") {
		t.Fatalf("ECHO = %q, %v", reply, err)
	}
	// A RESP error is a reply, not a Go error.
	reply, err = p.Do(ctx, cmd("ERR"))
	if err != nil || string(reply) != "-ERR boom\r\n" {
		t.Fatalf("ERR = %q, %v", reply, err)
	}
}

// TestConcurrentCallers: many goroutines share few connections; each gets its own
// replies, in the order it sent its requests.
func TestConcurrentCallers(t *testing.T) {
	f := newFakePeer(t)
	p := NewPool(f.addr(), Options{Conns: 3, QueueLen: 64})
	defer p.Close()
	const callers, calls = 64, 200
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			for i := range calls {
				want := fmt.Sprintf("caller-%d-call-%d-%s", g, i, strings.Repeat("x", (g*i)%300))
				reply, err := p.Do(ctx, cmd("ECHO", want))
				if err != nil {
					errs <- fmt.Errorf("caller %d call %d: %w", g, i, err)
					return
				}
				if string(reply) != bulk(want) {
					errs <- fmt.Errorf("caller %d call %d: got %.60q, want %.60q", g, i, reply, bulk(want))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.accepted.Load(); n != 3 {
		t.Errorf("the pool opened %d connections, want 3", n)
	}
}

// TestPipelinedOrder: requests issued at once on a single connection, most of them
// queued behind a slow reply, each get their own reply (replies are matched FIFO).
func TestPipelinedOrder(t *testing.T) {
	f := newFakePeer(t)
	p := NewPool(f.addr(), Options{Conns: 1})
	defer p.Close()
	ctx := context.Background()
	// Call 0 is slow; the calls sent after it wait behind it on the connection.
	results := make([]chan string, 100)
	for i := range results {
		results[i] = make(chan string, 1)
		req := cmd("ECHO", strconv.Itoa(i))
		if i == 0 {
			req = cmd("SLEEP", "100")
		}
		go func() {
			reply, err := p.Do(ctx, req)
			if err != nil {
				results[i] <- err.Error()
				return
			}
			results[i] <- string(reply)
		}()
		if i == 0 {
			time.Sleep(10 * time.Millisecond) // let it go out first
		}
	}
	if got := <-results[0]; got != "+slept\r\n" {
		t.Fatalf("call 0 = %q", got)
	}
	for i := 1; i < len(results); i++ {
		if got := <-results[i]; got != bulk(strconv.Itoa(i)) {
			t.Fatalf("call %d = %q", i, got)
		}
	}
}

// TestDeadlineThenLaterCalls: a reply later than the caller's deadline fails that
// call promptly and drops the connection (the peer may be cut off); later calls dial a
// new connection and get their own replies.
func TestDeadlineThenLaterCalls(t *testing.T) {
	f := newFakePeer(t)
	p := NewPool(f.addr(), Options{Conns: 1})
	defer p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	start := time.Now()
	reply, err := p.Do(ctx, cmd("SLEEP", "300"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow call = %q, %v; want DeadlineExceeded", reply, err)
	}
	if !strings.Contains(err.Error(), f.addr()) {
		t.Errorf("error %q does not name the peer", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("slow call returned after %v, not at its deadline", d)
	}

	for i := range 5 {
		want := "after-" + strconv.Itoa(i)
		reply, err := p.Do(context.Background(), cmd("ECHO", want))
		if err != nil || string(reply) != bulk(want) {
			t.Fatalf("call %d after the timeout = %q, %v; want %q", i, reply, err, bulk(want))
		}
	}
	if n := f.accepted.Load(); n != 2 {
		t.Errorf("%d connections: want 2, a timed-out connection is replaced once", n)
	}
}

func TestCanceledBeforeSend(t *testing.T) {
	f := newFakePeer(t)
	p := NewPool(f.addr(), Options{Conns: 1})
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Do(ctx, cmd("ECHO", "x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do with a canceled ctx: %v", err)
	}
	reply, err := p.Do(context.Background(), cmd("ECHO", "y"))
	if err != nil || string(reply) != bulk("y") {
		t.Fatalf("next call = %q, %v", reply, err)
	}
}

// TestServerClosesConn: calls waiting on a connection the peer closes fail at once
// (not at their deadline), and the next call redials.
func TestServerClosesConn(t *testing.T) {
	f := newFakePeer(t)
	p := NewPool(f.addr(), Options{Conns: 1})
	defer p.Close()
	ctx := context.Background() // no deadline: a stuck call would hang

	if _, err := p.Do(ctx, cmd("ECHO", "first")); err != nil {
		t.Fatal(err)
	}
	const pending = 10
	errs := make(chan error, pending+1)
	for range pending {
		go func() {
			_, err := p.Do(ctx, cmd("HOLD"))
			errs <- err
		}()
	}
	for range pending {
		<-f.held // the peer has read every held request
	}
	go func() {
		_, err := p.Do(ctx, cmd("CLOSE"))
		errs <- err
	}()
	within(t, 5*time.Second, "calls pending on a closed connection", func() {
		for range pending + 1 {
			if err := <-errs; err == nil {
				t.Error("a pending call succeeded on a connection the peer closed")
			} else if NotSent(err) {
				t.Errorf("a call the peer had read failed as not sent: %v", err)
			}
		}
	})

	reply, err := p.Do(ctx, cmd("ECHO", "again"))
	if err != nil || string(reply) != bulk("again") {
		t.Fatalf("call after the peer closed the connection = %q, %v", reply, err)
	}
	if n := f.accepted.Load(); n != 2 {
		t.Errorf("%d connections accepted, want 2 (one redial)", n)
	}
}

// TestCallsRacingConnDeath: calls issued while the connection dies under them all
// return, with a reply or an error, well before any deadline.
func TestCallsRacingConnDeath(t *testing.T) {
	f := newFakePeer(t)
	p := NewPool(f.addr(), Options{Conns: 2})
	defer p.Close()
	ctx := context.Background()
	for round := range 50 {
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 20 {
					want := fmt.Sprintf("%d-%d-%d", round, g, i)
					reply, err := p.Do(ctx, cmd("ECHO", want))
					if err == nil && string(reply) != bulk(want) {
						t.Errorf("got %q, want %q", reply, bulk(want))
					}
				}
			})
		}
		go f.closeConns()
		within(t, 5*time.Second, fmt.Sprintf("round %d: calls racing a dying connection", round), wg.Wait)
	}
}

func TestPoolClose(t *testing.T) {
	f := newFakePeer(t)
	p := NewPool(f.addr(), Options{Conns: 2})
	ctx := context.Background()
	const pending = 6
	errs := make(chan error, pending)
	for range pending {
		go func() {
			_, err := p.Do(ctx, cmd("HOLD"))
			errs <- err
		}()
	}
	for range pending {
		<-f.held
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "calls pending at Close", func() {
		for range pending {
			if err := <-errs; !errors.Is(err, ErrClosed) {
				t.Errorf("pending call: err = %v, want ErrClosed", err)
			}
		}
	})
	if _, err := p.Do(ctx, cmd("ECHO", "x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close: err = %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	waitFor(t, "the peer to see the pool's connections close", func() bool { return f.open.Load() == 0 })
	if n := f.accepted.Load(); n != 2 {
		t.Errorf("%d connections accepted, want 2", n)
	}
}

// TestCloseWhileDialing: a Close that races calls dialing a fresh connection leaves
// no connection open.
func TestCloseWhileDialing(t *testing.T) {
	f := newFakePeer(t)
	for range 50 {
		p := NewPool(f.addr(), Options{Conns: 4})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { _, _ = p.Do(context.Background(), cmd("ECHO", "x")) })
		}
		p.Close()
		within(t, 5*time.Second, "calls racing Close", wg.Wait)
	}
	waitFor(t, "every connection to close", func() bool { return f.open.Load() == 0 })
}

func TestDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := NewPool(addr, Options{DialTimeout: time.Second})
	defer p.Close()
	_, err = p.Do(context.Background(), cmd("ECHO", "x"))
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Do to a closed port: %v, want an error naming %s", err, addr)
	}
	if !NotSent(err) {
		t.Fatalf("Do to a closed port: %v, want it marked not sent", err)
	}
	// A failed dial is not cached: the next call dials again.
	if _, err2 := p.Do(context.Background(), cmd("ECHO", "x")); err2 == nil {
		t.Fatal("second Do to a closed port succeeded")
	}
}

// TestSlotIndexWraps: the round-robin counter wraps without a negative index (which
// would panic where int is 32 bits).
func TestSlotIndexWraps(t *testing.T) {
	f := newFakePeer(t)
	p := NewPool(f.addr(), Options{Conns: 3})
	defer p.Close()
	p.next.Store(math.MaxUint32 - 2)
	for i := range 6 {
		if _, err := p.Do(context.Background(), cmd("ECHO", "x")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkDoParallel(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r, w := bufio.NewReader(c), bufio.NewWriter(c)
				for {
					if _, err := resp.ReadReply(r, nil); err != nil {
						return
					}
					w.WriteString("+OK\r\n")
					if r.Buffered() == 0 {
						if w.Flush() != nil {
							return
						}
					}
				}
			}()
		}
	}()
	p := NewPool(ln.Addr().String(), Options{Conns: 2})
	defer p.Close()
	req := cmd("SET", "key", "value")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			reply, err := p.Do(context.Background(), req)
			if err != nil || !bytes.Equal(reply, []byte("+OK\r\n")) {
				b.Errorf("%q, %v", reply, err)
				return
			}
		}
	})
}

// TestShortQueueDoesNotStall: with room for only two unanswered calls, a burst of
// callers still gets through: the writer sends what it has buffered before waiting for
// room, so the replies that make room can come back.
func TestShortQueueDoesNotStall(t *testing.T) {
	f := newFakePeer(t)
	p := NewPool(f.addr(), Options{Conns: 1, QueueLen: 2})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			want := "burst-" + strconv.Itoa(i)
			reply, err := p.Do(ctx, cmd("ECHO", want))
			if err != nil || string(reply) != bulk(want) {
				errs <- fmt.Errorf("call %d = %q, %v", i, reply, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDoReturnsOnlyOnceTheRequestIsReleased sends a request too big for the
// socket buffers to a peer that never reads, so the writer is still writing it
// when the deadline passes. Do must not return before the writer is done with
// the request: callers reuse its buffer at once (the raft link encodes its next
// batch into it). Run with -race, which reports the reuse below otherwise.
func TestDoReturnsOnlyOnceTheRequestIsReleased(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // never read
		}
	}()
	p := NewPool(ln.Addr().String(), Options{Conns: 1})
	defer p.Close()
	req := []byte("*2\r\n$4\r\nECHO\r\n$33554432\r\n" + strings.Repeat("x", 32<<20) + "\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := p.Do(ctx, req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do to a peer that never reads: %v, want the deadline", err)
	}
	for i := range req {
		req[i] = 'y' // the caller's next request
	}
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the pool never connected")
	}
}

// TestOnDial: the hook runs once on each new connection, before the first request,
// and a failing hook fails the request and leaves no connection behind.
func TestOnDial(t *testing.T) {
	f := newFakePeer(t)
	var dials atomic.Int32
	p := NewPool(f.addr(), Options{Conns: 1, OnDial: func(_ context.Context, nc net.Conn) error {
		dials.Add(1)
		if _, err := nc.Write(cmd("ECHO", "hook")); err != nil {
			return err
		}
		reply, err := resp.ReadReply(bufio.NewReader(nc), nil)
		if err != nil {
			return err
		}
		if string(reply) != bulk("hook") {
			return fmt.Errorf("hook got %q", reply)
		}
		return nil
	}})
	defer p.Close()
	for range 3 {
		if reply, err := p.Do(context.Background(), cmd("ECHO", "x")); err != nil || string(reply) != bulk("x") {
			t.Fatalf("ECHO after the hook = %q, %v", reply, err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("hook ran %d times on one connection", n)
	}

	refused := errors.New("refused")
	q := NewPool(f.addr(), Options{OnDial: func(context.Context, net.Conn) error { return refused }})
	defer q.Close()
	if _, err := q.Do(context.Background(), cmd("ECHO", "x")); !errors.Is(err, refused) {
		t.Fatalf("Do with a failing hook: %v, want it to wrap the hook's error", err)
	}
}
