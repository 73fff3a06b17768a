// Package cluster_test runs whole dht clusters as real processes on loopback and
// drives them with real Redis clients.
package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/keyspace"
	"github.com/dhtkv/dht/internal/srcwatch"
	"github.com/dhtkv/dht/internal/tlsconf"
)

// binary is the dht binary under test: $DHT_BINARY, or built once by TestMain.
var binary string

// watchSources opens the sources of the binary TestMain built, once a test runs (see
// dht).
var watchSources = sync.OnceValue(func() error {
	if os.Getenv("DHT_BINARY") != "" {
		return nil
	}
	return srcwatch.Open(filepath.Join("..", ".."))
})

// dht returns the dht binary under test. Its first call in a run opens the sources
// TestMain built it from, so that go test's cache runs these tests again once the
// sources change (package srcwatch).
func dht(t testing.TB) string {
	t.Helper()
	if err := watchSources(); err != nil {
		t.Fatal(err)
	}
	return binary
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	binary = os.Getenv("DHT_BINARY")
	if binary == "" {
		dir, err := os.MkdirTemp("", "dht-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "dht")
		build := exec.Command("go", "build", "-race", "-o", binary, "github.com/dhtkv/dht/cmd/dht")
		if os.Getenv("DHT_E2E_NORACE") != "" {
			build = exec.Command("go", "build", "-o", binary, "github.com/dhtkv/dht/cmd/dht")
		}
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building dht:", err)
			return 1
		}
	}
	return m.Run()
}

// freeAddrs returns n loopback addresses whose ports were free a moment ago.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

// freeBasePort returns a port p such that p, p+1, ..., p+n-1 were all free a moment
// ago, for commands that take a base port.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for i := 1; i < n; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if len(lns) == n {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports found", n)
	return 0
}

// testConfig is an n-node loopback config with fast probes, written to a file.
func testConfig(t testing.TB, n int, edit func(*config.Config)) (config.Config, string) {
	t.Helper()
	cfg := config.Default()
	for i, a := range freeAddrs(t, n) {
		cfg.Nodes = append(cfg.Nodes, config.Node{Name: fmt.Sprintf("n%d", i+1), Addr: a})
	}
	cfg.Timeouts.Probe.Duration = 100 * time.Millisecond
	cfg.Timeouts.PeerRequest.Duration = time.Second
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg, writeConfig(t, cfg)
}

func writeConfig(t testing.TB, cfg config.Config) string {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer collects a process's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one dht serve process.
type proc struct {
	name, addr string
	cmd        *exec.Cmd
	log        *syncBuffer
	done       chan struct{}
	err        error
}

// startNode runs `dht serve` for one node; the test's cleanup kills it.
func startNode(t testing.TB, cfgPath string, cfg config.Config, name string, extra ...string) *proc {
	t.Helper()
	n, err := cfg.Node(name)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, addr: n.Addr, log: &syncBuffer{}, done: make(chan struct{})}
	args := append([]string{"serve", "--config", cfgPath, "--node", name, "--log-level", "debug"}, extra...)
	if !slices.Contains(extra, "--in-memory") && !slices.Contains(extra, "--data-dir") {
		// Beside the config: a node restarted in the same test finds its data.
		args = append(args, "--data-dir", filepath.Join(filepath.Dir(cfgPath), "data", name))
	}
	p.cmd = exec.Command(dht(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, p.log.String())
		}
	})
	return p
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// pause stops the process with SIGSTOP and waits until every one of its threads has
// stopped: the kernel stops a multi-threaded process one thread at a time, and on a
// loaded machine its other threads can go on serving for milliseconds after kill
// returns.
func (p *proc) pause(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	tasks := fmt.Sprintf("/proc/%d/task", p.cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		stopped, err := allThreadsStopped(tasks)
		if err != nil {
			t.Fatalf("pausing %s: %v", p.name, err)
		}
		if stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not every thread stopped within 10s of SIGSTOP", p.name)
		}
	}
}

// resume continues a paused process.
func (p *proc) resume(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// allThreadsStopped reports whether every thread listed under a /proc/PID/task
// directory is in state T (stopped).
func allThreadsStopped(tasks string) (bool, error) {
	ents, err := os.ReadDir(tasks)
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		stat, err := os.ReadFile(filepath.Join(tasks, e.Name(), "stat"))
		if err != nil {
			return false, err
		}
		// The state follows the command name, which is in parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) {
			return false, fmt.Errorf("unexpected %s/stat: %q", e.Name(), stat)
		}
		if stat[i+2] != 'T' {
			return false, nil
		}
	}
	return true, nil
}

// stop sends sig and waits for the exit.
func (p *proc) stop(t *testing.T, sig os.Signal, within time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("%s did not exit within %s after %v", p.name, within, sig)
		return nil
	}
}

// startCluster starts every node of an n-node cluster and waits for cluster_state:ok.
func startCluster(t *testing.T, n int, edit func(*config.Config)) (config.Config, []*proc) {
	t.Helper()
	cfg, path := testConfig(t, n, edit)
	return cfg, startNodes(t, path, cfg)
}

// startNodes starts every node of cfg, written at path, and waits until each says
// cluster_state:ok.
func startNodes(t *testing.T, path string, cfg config.Config) []*proc {
	t.Helper()
	var procs []*proc
	for _, node := range cfg.Nodes {
		procs = append(procs, startNode(t, path, cfg, node.Name))
	}
	for _, p := range procs {
		waitStateClient(t, nodeClient(t, cfg, p.addr), "ok", 20*time.Second)
	}
	return procs
}

// nodeClient is a client of one node of cfg, with its password and, for a TLS
// cluster, its CA.
func nodeClient(t testing.TB, cfg config.Config, addr string) *redis.Client {
	t.Helper()
	opts := &redis.Options{Addr: addr, Password: cfg.Auth.Password, MaxRetries: -1, DialTimeout: time.Second}
	if cfg.TLS.Enabled() {
		tc, err := tlsconf.Client(cfg.TLS.ClientFiles())
		if err != nil {
			t.Fatal(err)
		}
		opts.TLSConfig = tc
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// waitState waits until the node at addr reports cluster_state:want.
func waitState(t testing.TB, addr, want string, within time.Duration) {
	t.Helper()
	waitStateAuth(t, addr, "", want, within)
}

// waitStateAuth is waitState for a node that asks for a password.
func waitStateAuth(t testing.TB, addr, password, want string, within time.Duration) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	waitStateClient(t, c, want, within)
}

// waitStateClient waits until c's node reports cluster_state:want.
func waitStateClient(t testing.TB, c *redis.Client, want string, within time.Duration) {
	t.Helper()
	addr := c.Options().Addr
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		info, err := c.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:"+want+"\r\n") {
			return
		}
		last = fmt.Sprint(info, err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: cluster_state:%s not reached within %s; last: %s", addr, want, within, last)
}

func addrsOf(cfg config.Config) []string {
	var out []string
	for _, n := range cfg.Nodes {
		out = append(out, n.Addr)
	}
	return out
}

func clusterClient(t *testing.T, cfg config.Config) *redis.ClusterClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrsOf(cfg)})
	t.Cleanup(func() { c.Close() })
	return c
}

func plainClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// clusterKeys returns the whole cluster's key count, as INFO's cluster section on
// c's node gives it.
func clusterKeys(ctx context.Context, c *redis.Client) (int64, error) {
	info, err := c.Info(ctx, "cluster").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "dht_cluster_keys:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no dht_cluster_keys in INFO cluster: %q", info)
}

// dbsizeSum adds up DBSIZE over the nodes of cfg: each answers for the slots it
// serves as primary, so the sum is the cluster's key count.
func dbsizeSum(ctx context.Context, t testing.TB, cfg config.Config) int64 {
	t.Helper()
	var sum int64
	for _, n := range cfg.Nodes {
		size, err := nodeClient(t, cfg, n.Addr).DBSize(ctx).Result()
		if err != nil {
			t.Fatalf("DBSIZE on %s: %v", n.Name, err)
		}
		sum += size
	}
	return sum
}

// keysOn returns count keys whose slots node i of an n-node cluster owns.
func keysOn(t *testing.T, n, i, count int, prefix string) []string {
	t.Helper()
	ranges, err := keyspace.Split(n)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for j := 0; len(keys) < count; j++ {
		k := fmt.Sprintf("%s:%d", prefix, j)
		if ranges[i].Contains(keyspace.SlotOf(k)) {
			keys = append(keys, k)
		}
	}
	return keys
}
