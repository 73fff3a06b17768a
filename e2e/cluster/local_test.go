package cluster_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/redcon"
)

// TestLocalCommand runs `dht local` as a user would: it prints the nodes once the
// cluster is up, survives the death of one node process (and says so), and stops every
// node on SIGINT.
func TestLocalCommand(t *testing.T) {
	base := freeBasePort(t, 3)
	cmd := exec.Command(dht(t), "local", "--nodes", "3", "--base-port", strconv.Itoa(base))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("stderr of dht local:\n%s", stderr.String())
		}
	})

	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	nodeLine := regexp.MustCompile(`^\s+(n\d)\s+(127\.0\.0\.1:\d+)\s+id [0-9a-f]{40}\s+pid (\d+)$`)
	pids := map[string]int{}
	nodeAddrs := map[string]string{}
	deadline := time.After(30 * time.Second)
	for len(pids) < 3 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dht local closed its output early; nodes seen: %v", pids)
			}
			if m := nodeLine.FindStringSubmatch(l); m != nil {
				pids[m[1]], _ = strconv.Atoi(m[3])
				nodeAddrs[m[1]] = m[2]
			}
		case <-deadline:
			t.Fatalf("dht local did not report 3 ready nodes; saw %v", pids)
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	ctx := context.Background()
	c := plainClient(t, nodeAddrs["n1"])
	if err := c.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		t.Fatalf("SET through n1: %v", err)
	}
	// One node process dies: dht local reports it and the others go on.
	if err := syscall.Kill(pids["n3"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "dht local to report n3's exit", func() bool {
		return strings.Contains(stderr.String(), "node process exited") && strings.Contains(stderr.String(), "node=n3")
	})
	// At the default replication degree (3) the groups n3 led fail over: the cluster
	// stays whole and keeps what was written.
	waitState(t, nodeAddrs["n1"], "ok", 10*time.Second)
	if got, err := c.Get(ctx, "greeting").Result(); err != nil || got != "hello" {
		t.Fatalf("GET greeting through n1 after n3 died: %q, %v", got, err)
	}

	// SIGINT stops the rest and dht local exits cleanly.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("dht local after SIGINT: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dht local did not exit within 15s of SIGINT")
	}
	for _, name := range []string{"n1", "n2"} {
		if err := syscall.Kill(pids[name], 0); err == nil {
			t.Errorf("node %s (pid %d) still runs after dht local exited", name, pids[name])
		}
	}
}

// TestLocalOnBusyPorts runs `dht local` where another cluster already answers on
// its ports, all of them or only some: it must fail at once, name the busy port,
// exit non-zero and leave no node process behind.
func TestLocalOnBusyPorts(t *testing.T) {
	for _, tc := range []struct {
		name string
		busy int // index of the busy port among the three
	}{{"same ports", 0}, {"overlapping ports", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			base := freeBasePort(t, 3)
			busyAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(base+tc.busy))
			ln, err := net.Listen("tcp", busyAddr)
			if err != nil {
				t.Fatal(err)
			}
			// The other cluster answers that it is healthy.
			other := redcon.NewServer(busyAddr, func(conn redcon.Conn, cmd redcon.Command) {
				switch strings.ToUpper(string(cmd.Args[0])) {
				case "INFO":
					conn.WriteBulkString("# Server\r\nprocess_id:1\r\n")
				case "CLUSTER":
					conn.WriteBulkString("cluster_state:ok\r\n")
				default:
					conn.WriteString("OK")
				}
			}, nil, nil)
			go func() { _ = other.Serve(ln) }()
			defer other.Close()

			tmp := t.TempDir()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, dht(t), "local", "--nodes", "3", "--base-port", strconv.Itoa(base))
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			var stdout, stderr syncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err = cmd.Run()
			took := time.Since(start)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
				t.Fatalf("dht local: %v, want a non-zero exit\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			if took > 10*time.Second {
				t.Errorf("dht local took %s to fail", took)
			}
			want := fmt.Sprintf("port %d is in use", base+tc.busy)
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
			}
			if strings.Contains(stdout.String(), "ready") {
				t.Errorf("dht local reported a ready cluster:\n%s", stdout.String())
			}
			if left := processesMentioning(t, tmp); len(left) > 0 {
				t.Errorf("processes left behind: %v", left)
			}
		})
	}
}

// processesMentioning returns the command lines of running processes that
// mention s (the node processes of a local cluster name their config file).
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	files, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil || len(files) == 0 {
		t.Log("no /proc: not checking for processes left behind")
		return nil
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
