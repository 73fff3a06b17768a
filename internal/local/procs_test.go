package local

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/config"
)

// freeBasePort returns a port p such that p, ..., p+n-1 were free a moment ago.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if base+n > 55000 {
			continue
		}
		ok := true
		for i := range n {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// fakeNode writes a shell script that stands in for the dht binary: it runs the
// given shell code with the node's name in $node.
func fakeNode(t *testing.T, code string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs /bin/sh")
	}
	path := filepath.Join(t.TempDir(), "fake-dht")
	script := "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --node ] && node=$2; shift; done\n" + code + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func startFake(t *testing.T, n int, code string) (config.Config, *Processes) {
	t.Helper()
	cfg, err := config.Local(n, freeBasePort(t, n))
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartProcesses(cfg, ProcOptions{Binary: fakeNode(t, code), Stderr: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Close()
		for _, pid := range p.Pids() {
			if err := syscall.Kill(pid, 0); err == nil {
				t.Errorf("node process %d still runs after Close", pid)
			}
		}
	})
	return cfg, p
}

func TestStartProcessesRefusesBusyPorts(t *testing.T) {
	base := freeBasePort(t, 3)
	busy, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+1)))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg, err := config.Local(3, base)
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartProcesses(cfg, ProcOptions{Binary: fakeNode(t, "exec sleep 60")})
	if err == nil {
		p.Close()
		t.Fatal("StartProcesses succeeded with a node's port in use")
	}
	want := "port " + strconv.Itoa(base+1) + " is in use"
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "node n2") {
		t.Errorf("err = %v, want it to say %q and name node n2", err, want)
	}
}

// TestWaitReadyFailsWhenANodeExits has the second of three nodes exit while the
// others run without ever being ready: WaitReady must not wait for the first.
func TestWaitReadyFailsWhenANodeExits(t *testing.T) {
	_, p := startFake(t, 3, `if [ "$node" = n2 ]; then echo "n2: listen tcp: bind: address already in use" >&2; exit 3; fi
exec sleep 60`)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := p.WaitReady(ctx)
	if err == nil {
		t.Fatal("WaitReady succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("WaitReady noticed the exit after %s", d)
	}
	for _, want := range []string{"node n2", "exited before the cluster was up", "exit status 3", "bind: address already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "node n1") {
		t.Errorf("err = %v names n1, which still runs", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close reports %v; the exit was reported by WaitReady", err)
	}
}

// TestWaitReadyRefusesAnotherProcess puts a server that claims a healthy cluster
// on a node's port after the node started: it is not the node.
func TestWaitReadyRefusesAnotherProcess(t *testing.T) {
	cfg, p := startFake(t, 1, "exec sleep 60")
	ln, err := net.Listen("tcp", cfg.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := redcon.NewServer(cfg.Nodes[0].Addr, func(conn redcon.Conn, cmd redcon.Command) {
		switch strings.ToUpper(string(cmd.Args[0])) {
		case "INFO":
			conn.WriteBulkString("# Server\r\nprocess_id:1\r\n")
		case "CLUSTER":
			conn.WriteBulkString("cluster_state:ok\r\n")
		default:
			conn.WriteError("ERR unknown command")
		}
	}, nil, nil)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = p.WaitReady(ctx)
	_, port, _ := net.SplitHostPort(cfg.Nodes[0].Addr)
	if err == nil || !strings.Contains(err.Error(), "port "+port+" is in use") || !strings.Contains(err.Error(), "process 1 answers") {
		t.Fatalf("err = %v, want it to say that process 1 answers on port %s", err, port)
	}
}
