package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestReplicatedPipelineRepliesInOrder: one connection pipelines, in one go, runs
// of writes and of reads of the group its node leads (which the event loop parks
// the connection for), commands the loop answers at once, and reads and writes of
// keys another node leads (forwarded by a worker), interleaved. Every reply comes
// back, in order, with the value the commands before it left.
func TestReplicatedPipelineRepliesInOrder(t *testing.T) {
	cfg, _ := startCluster(t, 3, replicated)
	waitPreferredLeaders(t, cfg, 15*time.Second)
	local := keysOn(t, 3, 0, 40, "order")
	remote := keysOn(t, 3, 2, 10, "order")
	var req strings.Builder
	var want []string
	send := func(reply string, args ...string) {
		fmt.Fprintf(&req, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
		}
		want = append(want, reply)
	}
	for round := range 20 {
		v := fmt.Sprint(round)
		for _, k := range local {
			send("+OK", "SET", k, v)
		}
		for _, k := range local {
			send("$"+fmt.Sprint(len(v))+"\r\n"+v, "GET", k)
		}
		send("+PONG", "PING")
		for _, k := range remote {
			send("+OK", "SET", k, v)
		}
		send(":1", "EXISTS", local[round%len(local)])
		for _, k := range remote {
			send("$"+fmt.Sprint(len(v))+"\r\n"+v, "GET", k)
		}
		send("$"+fmt.Sprint(len(v))+"\r\n"+v, "GETSET", local[0], v)
		send(":"+fmt.Sprint(len(v)+1), "APPEND", local[1], "x")
		send("$"+fmt.Sprint(len(v)+1)+"\r\n"+v+"x", "GET", local[1])
	}
	conn, err := net.Dial("tcp", cfg.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() { _, _ = conn.Write([]byte(req.String())) }()
	r := bufio.NewReader(conn)
	for i, w := range want {
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := readReply(r)
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i, len(want), err)
		}
		if got != w {
			t.Fatalf("reply %d of %d: %q, want %q", i, len(want), got, w)
		}
	}
}

// readReply reads one simple, error, integer or bulk reply, without its last CRLF.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if !strings.HasPrefix(line, "$") || line == "$-1" {
		return line, nil
	}
	var n int
	if _, err := fmt.Sscanf(line, "$%d", &n); err != nil {
		return "", fmt.Errorf("bulk header %q: %w", line, err)
	}
	body := make([]byte, n+2)
	if _, err := readFull(r, body); err != nil {
		return "", err
	}
	return line + "\r\n" + string(body[:n]), nil
}

func readFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestReplicatedAbandonedPipeline: clients that pipeline writes and reads and hang
// up without reading the replies leave nothing waiting on the node (INFO's
// dht_waiting_commands counts only the INFO that asks), which serves on.
func TestReplicatedAbandonedPipeline(t *testing.T) {
	cfg, _ := startCluster(t, 3, replicated)
	waitPreferredLeaders(t, cfg, 15*time.Second)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: cfg.Nodes[0].Addr, MaxRetries: -1})
	defer c.Close()
	waiting := regexp.MustCompile(`dht_waiting_commands:(\d+)`)
	waitingNow := func() string {
		t.Helper()
		info, err := c.Info(ctx, "clients").Result()
		if err != nil {
			t.Fatal(err)
		}
		m := waiting.FindStringSubmatch(info)
		if m == nil {
			t.Fatalf("no dht_waiting_commands in INFO clients:\n%s", info)
		}
		return m[1]
	}
	local := keysOn(t, 3, 0, 50, "abandon")
	remote := keysOn(t, 3, 1, 50, "abandon")
	for c := range 20 {
		conn, err := net.Dial("tcp", cfg.Nodes[0].Addr)
		if err != nil {
			t.Fatal(err)
		}
		var req strings.Builder
		for i := range 200 {
			k := local[i%len(local)]
			if c%2 == 1 && i%3 == 0 {
				k = remote[i%len(remote)]
			}
			if i%2 == 0 {
				fmt.Fprintf(&req, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\n%d\r\n", len(k), k, c%10)
			} else {
				fmt.Fprintf(&req, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k)
			}
		}
		if _, err := conn.Write([]byte(req.String())); err != nil {
			t.Fatal(err)
		}
		_ = conn.Close()
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// INFO itself waits, on a worker, for the cluster's key count.
		now := waitingNow()
		if now == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dht_waiting_commands:%s 15 s after the clients hung up, want 1 (the INFO itself)", now)
		}
	}
	for _, k := range append(local[:5], remote[:5]...) {
		if err := c.Set(ctx, k, "after", 0).Err(); err != nil {
			t.Fatalf("SET %s after the clients hung up: %v", k, err)
		}
		if got, err := c.Get(ctx, k).Result(); err != nil || got != "after" {
			t.Fatalf("GET %s: %q, %v", k, got, err)
		}
	}
}

// TestReplicatedPipelineSplitMidCommand: a pipeline of writes and reads of the group
// the node leads arrives in pieces, the first ending in the middle of a command, and
// then one with a protocol error: every command before the error is answered, in
// order, and the error comes last.
func TestReplicatedPipelineSplitMidCommand(t *testing.T) {
	cfg, _ := startCluster(t, 3, replicated)
	waitPreferredLeaders(t, cfg, 15*time.Second)
	keys := keysOn(t, 3, 0, 20, "split")
	var req strings.Builder
	var want []string
	for i, k := range keys {
		fmt.Fprintf(&req, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\n%d\r\n", len(k), k, i%10)
		want = append(want, "+OK")
	}
	for i, k := range keys {
		fmt.Fprintf(&req, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k)
		want = append(want, fmt.Sprintf("$1\r\n%d", i%10))
	}
	whole := req.String()
	conn, err := net.Dial("tcp", cfg.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	expect := func(stage string, want []string) {
		t.Helper()
		for i, w := range want {
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			got, err := readReply(r)
			if err != nil || got != w {
				t.Fatalf("%s: reply %d of %d: %q, %v; want %q", stage, i, len(want), got, err, w)
			}
		}
	}
	// The first piece ends inside the first GET: the SETs before it are a run.
	cut := strings.Index(whole, "GET") + 2
	for _, piece := range []string{whole[:cut], whole[cut:]} {
		if _, err := conn.Write([]byte(piece)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	expect("split pipeline", want)
	// Then a run followed by a bulk length no client sends.
	if _, err := conn.Write([]byte(whole[:strings.Index(whole, "*2")] + "*2\r\n$-7\r\n")); err != nil {
		t.Fatal(err)
	}
	expect("run before a protocol error", want[:len(keys)])
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if got, err := readReply(r); err != nil || !strings.HasPrefix(got, "-ERR Protocol error") {
		t.Fatalf("after the run: %q, %v; want the protocol error", got, err)
	}
}
