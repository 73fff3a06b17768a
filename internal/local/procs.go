// Package local runs a whole dht cluster on loopback, as on separate hosts: one child
// `dht serve` process per node, each on its own port (behind `dht local` and
// `dht bench --local`).
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
)

// ProcOptions configure a cluster of node processes.
type ProcOptions struct {
	// Binary is the dht executable to run as `dht serve` (default: this executable).
	Binary string
	// LogLevel is passed to every node (default "warn").
	LogLevel string
	// Stderr receives the nodes' logs (default os.Stderr).
	Stderr io.Writer
	// Log reports node exits.
	Log *slog.Logger
}

// Processes is a local cluster whose nodes are child processes, one `dht serve` per
// node, as on separate hosts. Each node gets an equal share of the machine's CPUs as
// its event loops (at least one).
type Processes struct {
	cfg   config.Config
	dir   string
	procs []*nodeProc
	log   *slog.Logger
}

type nodeProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu       sync.Mutex
	stopping bool
}

// StartProcesses writes cfg to a temporary file and starts one node process per node.
// The nodes run until Close; a node that exits on its own is reported, not restarted.
func StartProcesses(cfg config.Config, opts ProcOptions) (*Processes, error) {
	if opts.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("local cluster: finding the dht executable: %w", err)
		}
		opts.Binary = exe
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "dht-local-")
	if err != nil {
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	path := filepath.Join(dir, "cluster.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	loops := strconv.Itoa(max(1, runtime.NumCPU()/len(cfg.Nodes)))
	p := &Processes{cfg: cfg, dir: dir, log: opts.Log}
	for _, n := range cfg.Nodes {
		cmd := exec.Command(opts.Binary, "serve", "--config", path, "--node", n.Name, "--log-level", opts.LogLevel, "--event-loops", loops)
		cmd.Stdout, cmd.Stderr = opts.Stderr, opts.Stderr
		cmd.SysProcAttr = childAttr()
		if err := cmd.Start(); err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("local cluster: starting node %s: %w", n.Name, err)
		}
		np := &nodeProc{name: n.Name, cmd: cmd, done: make(chan struct{})}
		p.procs = append(p.procs, np)
		go p.wait(np)
	}
	return p, nil
}

func (p *Processes) wait(np *nodeProc) {
	np.err = np.cmd.Wait()
	close(np.done)
	np.mu.Lock()
	stopping := np.stopping
	np.mu.Unlock()
	if !stopping {
		p.log.Warn("node process exited", "node", np.name, "pid", np.cmd.Process.Pid, "status", exitStatus(np.err))
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Addrs returns the nodes' client addresses, in config order.
func (p *Processes) Addrs() []string {
	out := make([]string, len(p.cfg.Nodes))
	for i, n := range p.cfg.Nodes {
		out[i] = n.Addr
	}
	return out
}

// Pids returns the nodes' process ids, in config order.
func (p *Processes) Pids() []int {
	out := make([]int, len(p.procs))
	for i, np := range p.procs {
		out[i] = np.cmd.Process.Pid
	}
	return out
}

// WaitReady waits until every node reports cluster_state:ok, and fails at once if a
// node process exits first.
func (p *Processes) WaitReady(ctx context.Context) error {
	for i, n := range p.cfg.Nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1, DialTimeout: time.Second})
		err := waitOK(ctx, c, p.procs[i])
		c.Close()
		if err != nil {
			return fmt.Errorf("local cluster: node %s: %w", n.Name, err)
		}
	}
	return nil
}

func waitOK(ctx context.Context, c *redis.Client, np *nodeProc) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		select {
		case <-np.done:
			return fmt.Errorf("process exited before the cluster was up: %s", exitStatus(np.err))
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Close stops every node with SIGTERM (they drain their clients), kills any that is
// still running after 10 s, and removes the config file.
func (p *Processes) Close() error {
	defer os.RemoveAll(p.dir)
	for _, np := range p.procs {
		np.mu.Lock()
		np.stopping = true
		np.mu.Unlock()
		_ = np.cmd.Process.Signal(syscall.SIGTERM)
	}
	var errs []error
	deadline := time.After(10 * time.Second)
	for _, np := range p.procs {
		select {
		case <-np.done:
		case <-deadline:
			_ = np.cmd.Process.Kill()
			<-np.done
			errs = append(errs, fmt.Errorf("node %s: killed after not stopping within 10s", np.name))
			continue
		}
		var exit *exec.ExitError
		if np.err != nil && !(errors.As(np.err, &exit) && !exit.Exited()) {
			errs = append(errs, fmt.Errorf("node %s: %w", np.name, np.err))
		}
	}
	return errors.Join(errs...)
}
