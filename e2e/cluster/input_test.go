package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/config"
)

// rawExchange sends raw bytes on a fresh connection and returns everything the node
// answers until it closes the connection (or 5s pass).
func rawExchange(t *testing.T, addr string, payload []byte) (string, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() { _, _ = conn.Write(payload) }()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	out, err := io.ReadAll(conn)
	closed := err == nil // io.ReadAll returns nil at EOF
	return string(out), closed
}

func TestMalformedInputIsRefusedAndTheNodeStaysUp(t *testing.T) {
	cfg, _ := startCluster(t, 1, func(c *config.Config) {
		c.Limits.MaxBulkLen = 1 << 20
		c.Limits.MaxRequestLen = 4 << 20
		c.Limits.MaxArgs = 1000
		c.Limits.MaxInlineLen = 1024
	})
	addr := cfg.Nodes[0].Addr
	cases := []struct {
		name, payload, want string
	}{
		{"huge bulk length", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$999999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk over the limit", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"too many arguments", "*1001\r\n$3\r\nDEL\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"negative bulk length", "*2\r\n$3\r\nGET\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"not a bulk", "*2\r\n$3\r\nGET\r\n:12\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
		{"inline line too long", strings.Repeat("A", 2000), "-ERR Protocol error: too big inline request\r\n"},
		{"binary garbage", "*\x00\xff\xfe\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"valid command, then garbage", "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$x\r\n", "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, closed := rawExchange(t, addr, []byte(tc.payload))
			if got != tc.want {
				t.Errorf("reply %q, want %q", got, tc.want)
			}
			if !closed {
				t.Error("the node did not close the connection")
			}
		})
	}
	// A request just under the limits is served, and inline commands work.
	big := strings.Repeat("v", 1<<20)
	got, _ := rawExchange(t, addr, fmt.Appendf(nil, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\nSTRLEN big\r\nGET missing\r\nQUIT\r\n", len(big), big))
	if got != "+OK\r\n:1048576\r\n$-1\r\n+OK\r\n" {
		t.Fatalf("valid traffic after the bad clients: %q", got)
	}
	// The node still serves everyone else.
	if v, err := plainClient(t, addr).Get(context.Background(), "big").Result(); err != nil || len(v) != len(big) {
		t.Fatalf("GET big = %d bytes, %v", len(v), err)
	}
}

func TestSlowlorisBulkIsBounded(t *testing.T) {
	cfg, _ := startCluster(t, 1, func(c *config.Config) { c.Limits.IdleTimeout.Duration = 500 * time.Millisecond })
	conn, err := net.Dial("tcp", cfg.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Half a command, then silence: the idle timeout cuts the client off.
	if _, err := conn.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = bufio.NewReader(conn).ReadByte()
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("idle client not cut off: err=%v after %s", err, time.Since(start))
	}
}

// replicationDegrees runs a test on a 3-node cluster without replication and with
// every range on all three nodes.
func replicationDegrees(t *testing.T, test func(t *testing.T, cfg config.Config)) {
	for _, r := range []int{1, 3} {
		t.Run(fmt.Sprint("R=", r), func(t *testing.T) {
			cfg, _ := startCluster(t, 3, func(c *config.Config) { c.ReplicationDegree = r })
			test(t, cfg)
		})
	}
}

func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (apt-get install redis-tools)")
	}
	replicationDegrees(t, func(t *testing.T, cfg config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Nodes[0].Addr)
		run := func(args ...string) string {
			out, err := exec.Command(cli, append([]string{"-c", "-p", port}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
			}
			return strings.TrimSpace(string(out))
		}
		for i := range 20 {
			k := fmt.Sprintf("cli:%d", i)
			if got := run("set", k, "v"+k); got != "OK" {
				t.Fatalf("redis-cli set %s: %q", k, got)
			}
			if got := run("get", k); got != "v"+k {
				t.Fatalf("redis-cli get %s: %q", k, got)
			}
		}
		if got := run("cluster", "keyslot", "{user1000}.following"); got != run("cluster", "keyslot", "{user1000}.followers") {
			t.Fatal("hash tags: {user1000}.following and .followers differ")
		}
		// DBSIZE answers for the slots the node serves as primary; --cluster info
		// adds it up over the primaries.
		if sum := dbsizeSum(context.Background(), t, cfg); sum != 20 {
			t.Fatalf("DBSIZE adds up to %d over the nodes; want 20", sum)
		}
		if info := run("--cluster", "info", cfg.Nodes[0].Addr); !strings.Contains(info, "[OK] 20 keys in ") {
			t.Fatalf("redis-cli --cluster info does not count 20 keys:\n%s", info)
		}
		check := run("--cluster", "check", cfg.Nodes[0].Addr)
		for _, want := range []string{"[OK] All nodes agree about slots configuration.", "[OK] All 16384 slots covered."} {
			if !strings.Contains(check, want) {
				t.Fatalf("redis-cli --cluster check does not say %q:\n%s", want, check)
			}
		}
	})
}

func TestRedisBenchmarkCluster(t *testing.T) {
	rb, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skip("redis-benchmark is not installed (apt-get install redis-tools)")
	}
	replicationDegrees(t, func(t *testing.T, cfg config.Config) {
		_, port, _ := net.SplitHostPort(cfg.Nodes[0].Addr)
		for _, pipeline := range []string{"1", "16"} {
			out, err := exec.Command(rb, "--cluster", "-p", port, "-c", "10", "-n", "3000", "-r", "1000", "-P", pipeline, "-t", "set,get", "--csv").CombinedOutput()
			if err != nil {
				t.Fatalf("redis-benchmark -P %s: %v\n%s", pipeline, err, out)
			}
			text := string(out)
			if strings.Contains(strings.ToLower(text), "error") {
				t.Fatalf("redis-benchmark -P %s reported errors:\n%s", pipeline, text)
			}
			for _, test := range []string{"SET", "GET"} {
				if !regexp.MustCompile(`(?m)^"` + test + `","[0-9.]+"`).MatchString(text) {
					t.Fatalf("no %s result in redis-benchmark -P %s's output:\n%s", test, pipeline, text)
				}
			}
		}
	})
}

// TestPipelinedRepliesAreNotHoardedInMemory: a client that pipelines many reads of a
// large value and does not read the replies must not make the node buffer them all,
// whether the node answers them itself or forwards them to the key's owner.
func TestPipelinedRepliesAreNotHoardedInMemory(t *testing.T) {
	// With 2 nodes, n1 owns slots 0-8191 and n2 8192-16383. The forwarded replies
	// of 1 MiB queue behind each other on the peer connection; on a busy machine
	// that takes longer than the harness's short bound on a forwarded request,
	// and this test is about memory, not time.
	cfg, _ := startCluster(t, 2, func(c *config.Config) { c.Timeouts.PeerRequest.Duration = 10 * time.Second })
	addr := cfg.Nodes[0].Addr
	for _, tc := range []struct{ name, key string }{
		{"served by the node", "big"},     // slot 6392: n1's
		{"forwarded to the owner", "foo"}, // slot 12182: n2's
	} {
		t.Run(tc.name, func(t *testing.T) { checkRepliesNotHoarded(t, addr, tc.key) })
	}
}

// checkRepliesNotHoarded pipelines 300 GETs of a 1 MiB value to addr without reading
// the replies, checks that the node holds far less than that, then reads them all.
func checkRepliesNotHoarded(t *testing.T, addr, key string) {
	ctx := context.Background()
	c := plainClient(t, addr)
	big := strings.Repeat("x", 1<<20)
	if err := c.Set(ctx, key, big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const gets = 300 // 300 MiB of replies
	get := fmt.Sprintf("*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key)
	if _, err := conn.Write([]byte(strings.Repeat(get, gets))); err != nil {
		t.Fatal(err)
	}
	// Forwarded replies trickle in; watch the node long enough for all of them to
	// have arrived had they not been held back.
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`used_memory:(\d+)`).FindStringSubmatch(info)
		if m == nil {
			t.Fatalf("no used_memory in INFO: %q", info)
		}
		used, _ := strconv.ParseInt(m[1], 10, 64)
		if used > 100<<20 {
			t.Fatalf("node holds %d MiB with a client not reading %d MiB of replies; want it bounded", used>>20, gets)
		}
	}
	// The client gets every reply once it reads them, each within a bound that
	// tells a stall from a slow machine.
	r := bufio.NewReaderSize(conn, 1<<16)
	for i := range gets {
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil || line != "$1048576\r\n" {
			t.Fatalf("reply %d: %q, %v", i, line, err)
		}
		if _, err := r.Discard(1<<20 + 2); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
	}
}
