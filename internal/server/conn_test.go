package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/config"
)

// startNode runs a one-node cluster in this process and returns its address.
func startNode(t testing.TB, edit func(*config.Config)) string {
	t.Helper()
	cfg := oneNodeConfig(t)
	if edit != nil {
		edit(&cfg)
	}
	s := runServer(t, cfg)
	deadline := time.Now().Add(5 * time.Second)
	for !s.Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("the node never passed its barrier")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s.Addr()
}

// oneNodeConfig is the config of a one-node cluster on a free port of 127.0.0.1.
func oneNodeConfig(tb testing.TB) config.Config {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg, err := config.Local(1, port)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// newServer makes node n1 of cfg without running it, for tests and benchmarks that
// call exec directly; it is closed when the test ends.
func newServer(tb testing.TB, cfg config.Config) *Server {
	tb.Helper()
	s, err := New(Options{Config: cfg, Self: "n1"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// runServer runs node n1 of cfg in this process until the test ends.
func runServer(t testing.TB, cfg config.Config) *Server {
	t.Helper()
	s := newServer(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// exchange writes in to a new connection in the given chunk sizes (cycled; none means
// all at once) and reads replies until the node closes the connection or want's
// length has arrived.
func exchange(t *testing.T, addr, in string, want int, chunks ...int) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		p := []byte(in)
		for i := 0; len(p) > 0; i++ {
			n := len(p)
			if len(chunks) > 0 {
				n = min(n, chunks[i%len(chunks)])
			}
			if _, err := conn.Write(p[:n]); err != nil {
				return
			}
			p = p[n:]
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	out := make([]byte, 0, want)
	buf := make([]byte, 4096)
	for len(out) < want {
		n, err := conn.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(out)
}

func TestPipelineInAnyChunking(t *testing.T) {
	addr := startNode(t, nil)
	var in, want strings.Builder
	for i := range 200 {
		k, v := fmt.Sprintf("k%d", i), strings.Repeat("v", i)
		in.WriteString(respCmd("SET", k, v) + respCmd("GET", k) + "PING\r\n")
		fmt.Fprintf(&want, "+OK\r\n$%d\r\n%s\r\n+PONG\r\n", len(v), v)
	}
	for _, chunks := range [][]int{nil, {1}, {2, 3, 5, 7}, {4096}, {13, 1000}} {
		if got := exchange(t, addr, in.String(), want.Len(), chunks...); got != want.String() {
			t.Fatalf("chunks %v: replies differ from the expected ones (%d bytes, want %d)", chunks, len(got), want.Len())
		}
	}
}

// TestRepliesStayInOrderAcrossWaitingCommands: DBSIZE waits (for the read indexes of
// the groups the node leads, in a replicated cluster), so it moves its connection to a worker; the replies of the commands around it must
// still come in order, whatever the chunking.
func TestRepliesStayInOrderAcrossWaitingCommands(t *testing.T) {
	addr := startNode(t, nil)
	const keys = 300
	for run, chunks := range [][]int{nil, {1}, {17, 300}} {
		var in, want strings.Builder
		for i := range keys {
			k := fmt.Sprintf("run%d:key%d", run, i)
			in.WriteString(respCmd("SET", k, k))
			want.WriteString("+OK\r\n")
			if i%3 == 0 {
				in.WriteString(respCmd("DBSIZE"))
				fmt.Fprintf(&want, ":%d\r\n", run*keys+i+1)
			}
			in.WriteString(respCmd("GET", k))
			fmt.Fprintf(&want, "$%d\r\n%s\r\n", len(k), k)
		}
		if got := exchange(t, addr, in.String(), want.Len(), chunks...); got != want.String() {
			t.Fatalf("chunks %v: replies out of order:\n%.300q\nwant\n%.300q", chunks, got, want.String())
		}
	}
}

func TestManyClientsMixingWaitingAndFastCommands(t *testing.T) {
	addr := startNode(t, nil)
	errs := make(chan error, 16)
	for c := range 16 {
		go func() {
			r := rand.New(rand.NewPCG(uint64(c), 1))
			var in, want strings.Builder
			for i := range 100 {
				k := fmt.Sprintf("c%d:%d", c, i)
				in.WriteString(respCmd("SET", k, k) + respCmd("GET", k))
				fmt.Fprintf(&want, "+OK\r\n$%d\r\n%s\r\n", len(k), k)
				if r.IntN(4) == 0 {
					in.WriteString(respCmd("DBSIZE"))
					want.WriteString("?\r\n") // the count depends on the other clients
				}
			}
			errs <- checkShape(addr, in.String(), want.String())
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// checkShape sends in and checks the replies against want, line by line, where a
// line "?" stands for any integer reply.
func checkShape(addr, in, want string) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() { _, _ = io.WriteString(conn, in) }()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	for n, exp := range strings.SplitAfter(want, "\r\n") {
		if exp == "" {
			break
		}
		line, err := r.ReadString('\n')
		if err != nil || line != exp && (exp != "?\r\n" || !strings.HasPrefix(line, ":")) {
			return fmt.Errorf("reply line %d: %q, %v; want %q", n, line, err, exp)
		}
	}
	return nil
}

func TestQuitAfterAWaitingCommand(t *testing.T) {
	addr := startNode(t, nil)
	in := respCmd("DBSIZE") + respCmd("QUIT") + respCmd("PING")
	if got := exchange(t, addr, in, 1<<20); got != ":0\r\n+OK\r\n" {
		t.Fatalf("replies %q; want DBSIZE's and QUIT's, then the connection closed", got)
	}
}

func TestViolationAfterAWaitingCommand(t *testing.T) {
	addr := startNode(t, func(c *config.Config) { c.Limits.MaxBulkLen = 64 })
	in := respCmd("PING") + respCmd("DBSIZE") + respCmd("ECHO", "hi") + "*2\r\n$4\r\nECHO\r\n$65\r\n" + strings.Repeat("x", 67) + respCmd("PING")
	want := "+PONG\r\n:0\r\n$2\r\nhi\r\n-ERR Protocol error: invalid bulk length\r\n"
	if got := exchange(t, addr, in, 1<<20); got != want {
		t.Fatalf("replies %q, want %q and the connection closed", got, want)
	}
}

func TestLineStartingWithDollarIsAnInlineCommand(t *testing.T) {
	addr := startNode(t, nil)
	want := "-ERR unknown command '$5', with args beginning with: 'hello' \r\n+PONG\r\n"
	if got := exchange(t, addr, "$5 hello\r\nPING\r\n", len(want)); got != want {
		t.Fatalf("replies %q, want %q", got, want)
	}
}
