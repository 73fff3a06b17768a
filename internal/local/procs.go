// Package local runs a whole dht cluster on loopback, as on separate hosts: one child
// `dht serve` process per node, each on its own port (behind `dht local` and
// `dht bench --local`).
package local

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	"github.com/dhtkv/dht/internal/tlsconf"
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
	// DataDir, if set, is where the nodes keep their data, one directory per node
	// under it (kept after Close); empty means a temporary directory that Close
	// removes.
	DataDir string
	// InMemory keeps nothing on disk.
	InMemory bool
	// TLS, when the config has no tls section, gives the cluster one: a throwaway
	// certificate authority and a certificate for 127.0.0.1 in the cluster's
	// temporary directory, gone when the cluster is closed (see Config).
	TLS bool
}

// Processes is a local cluster whose nodes are child processes, one `dht serve` per
// node, as on separate hosts. Each node gets an equal share of the machine's CPUs as
// its event loops (at least one).
type Processes struct {
	cfg   config.Config
	dir   string
	procs []*nodeProc
	log   *slog.Logger

	// exited is closed when the first node process exits, for whatever reason.
	exited     chan struct{}
	exitedOnce sync.Once
}

type nodeProc struct {
	name string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	// log keeps the last line the node wrote to its stdout or stderr.
	log lastLine

	mu       sync.Mutex
	stopping bool
	// early is set when the node exited without Close asking it to.
	early bool
}

// maxLine is the most of a line that lastLine keeps.
const maxLine = 4096

// lastLine is an io.Writer that passes what it is given on to w and keeps the last
// line of it (its last maxLine bytes).
type lastLine struct {
	w io.Writer

	mu      sync.Mutex
	partial []byte
	last    string
}

func (l *lastLine) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.partial = append(l.partial, b...)
	if i := bytes.LastIndexByte(l.partial, '\n'); i >= 0 {
		lines := strings.Split(strings.TrimSpace(string(l.partial[:i])), "\n")
		if s := strings.TrimSpace(lines[len(lines)-1]); s != "" {
			l.last = s
		}
		l.partial = append(l.partial[:0], l.partial[i+1:]...)
	}
	if n := len(l.partial); n > maxLine {
		l.partial = append(l.partial[:0], l.partial[n-maxLine:]...)
	}
	l.mu.Unlock()
	return l.w.Write(b)
}

// String returns the last line written.
func (l *lastLine) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := strings.TrimSpace(string(l.partial)); s != "" {
		return s
	}
	return l.last
}

// StartProcesses writes cfg to a temporary file and starts one node process per node.
// The nodes run until Close; a node that exits on its own is reported, not restarted.
// It fails, naming the ports, when a node's port is already in use.
func StartProcesses(cfg config.Config, opts ProcOptions) (*Processes, error) {
	if err := checkPorts(cfg); err != nil {
		return nil, err
	}
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
	if opts.TLS && !cfg.TLS.Enabled() {
		files, err := tlsconf.GenerateLocal(dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("local cluster: %w", err)
		}
		cfg.TLS = config.TLS{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	path := filepath.Join(dir, "cluster.json")
	// The config may hold the password: only this user reads it.
	if err := os.WriteFile(path, b, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	loops := strconv.Itoa(max(1, runtime.NumCPU()/len(cfg.Nodes)))
	p := &Processes{cfg: cfg, dir: dir, log: opts.Log, exited: make(chan struct{})}
	for _, n := range cfg.Nodes {
		args := []string{"serve", "--config", path, "--node", n.Name, "--log-level", opts.LogLevel, "--event-loops", loops}
		if opts.InMemory {
			args = append(args, "--in-memory")
		} else {
			args = append(args, "--data-dir", filepath.Join(cmp.Or(opts.DataDir, filepath.Join(dir, "data")), n.Name))
		}
		cmd := exec.Command(opts.Binary, args...)
		np := &nodeProc{name: n.Name, addr: n.Addr, cmd: cmd, done: make(chan struct{}), log: lastLine{w: opts.Stderr}}
		cmd.Stdout, cmd.Stderr = &np.log, &np.log
		cmd.SysProcAttr = childAttr()
		if err := cmd.Start(); err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("local cluster: starting node %s: %w", n.Name, err)
		}
		p.procs = append(p.procs, np)
		go p.wait(np)
	}
	return p, nil
}

// checkPorts fails when the port of a node is taken, naming it: the node could
// not listen on it, and whatever holds it might answer in the node's place.
func checkPorts(cfg config.Config) error {
	var busy []string
	var errs []error
	for _, n := range cfg.Nodes {
		l, err := net.Listen("tcp", n.Addr)
		if err != nil {
			_, port, _ := net.SplitHostPort(n.Addr)
			busy = append(busy, port)
			errs = append(errs, fmt.Errorf("node %s: %w", n.Name, err))
			continue
		}
		l.Close()
	}
	if len(busy) == 0 {
		return nil
	}
	what := "port " + busy[0] + " is"
	if len(busy) > 1 {
		what = "ports " + strings.Join(busy, ", ") + " are"
	}
	return fmt.Errorf("local cluster: %s in use by another program or cluster; choose other ports (--base-port):\n%w", what, errors.Join(errs...))
}

func (p *Processes) wait(np *nodeProc) {
	np.err = np.cmd.Wait()
	np.mu.Lock()
	np.early = !np.stopping
	np.mu.Unlock()
	close(np.done)
	p.exitedOnce.Do(func() { close(p.exited) })
	if np.early {
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

// Config is the cluster's config, with the tls section ProcOptions.TLS made.
func (p *Processes) Config() config.Config { return p.cfg }

// Pids returns the nodes' process ids, in config order.
func (p *Processes) Pids() []int {
	out := make([]int, len(p.procs))
	for i, np := range p.procs {
		out[i] = np.cmd.Process.Pid
	}
	return out
}

// WaitReady waits until every node reports cluster_state:ok from the node process
// this cluster started (a node's INFO names its process id, so that another
// program answering on a node's port is not taken for the node). It fails at once
// when a node process exits first, or when another process answers on a node's
// port.
func (p *Processes) WaitReady(ctx context.Context) error {
	var tc *tls.Config
	if p.cfg.TLS.Enabled() {
		var err error
		if tc, err = tlsconf.Client(p.cfg.TLS.ClientFiles()); err != nil {
			return fmt.Errorf("local cluster: %w", err)
		}
	}
	clients := make([]*redis.Client, len(p.procs))
	for i, np := range p.procs {
		clients[i] = redis.NewClient(&redis.Options{Addr: np.addr, Password: p.cfg.Auth.Password, MaxRetries: -1, DialTimeout: time.Second, TLSConfig: tc})
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	ready := make([]bool, len(p.procs))
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.exited:
			return p.exitError()
		default:
		}
		var waiting []string
		for i, np := range p.procs {
			if ready[i] {
				continue
			}
			ok, err := np.ready(ctx, clients[i])
			if err != nil {
				return fmt.Errorf("local cluster: node %s: %w", np.name, err)
			}
			if ready[i] = ok; !ok {
				waiting = append(waiting, np.name)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-p.exited:
			return p.exitError()
		case <-ctx.Done():
			return fmt.Errorf("local cluster: not ready, waiting for nodes %s: %w", strings.Join(waiting, ", "), ctx.Err())
		case <-t.C:
		}
	}
}

// ready tells whether the node answers c as this node process, with cluster_state:ok.
// It fails when another process answers on the node's address.
func (np *nodeProc) ready(ctx context.Context, c *redis.Client) (bool, error) {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return false, nil
	}
	pid, ok := infoField(info, "process_id")
	if !ok {
		return false, nil
	}
	if own := strconv.Itoa(np.cmd.Process.Pid); pid != own {
		_, port, _ := net.SplitHostPort(np.addr)
		return false, fmt.Errorf("port %s is in use: process %s answers on %s, not the node's process %s", port, pid, np.addr, own)
	}
	state, err := c.ClusterInfo(ctx).Result()
	return err == nil && strings.Contains(state, "cluster_state:ok"), nil
}

// infoField returns the value of field in an INFO reply.
func infoField(info, field string) (string, bool) {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, true
		}
	}
	return "", false
}

// exitError describes the node processes that have exited, with the last line each
// logged.
func (p *Processes) exitError() error {
	var errs []error
	for _, np := range p.procs {
		select {
		case <-np.done:
		default:
			continue
		}
		err := fmt.Errorf("node %s (%s) exited before the cluster was up: %s", np.name, np.addr, exitStatus(np.err))
		if last := np.log.String(); last != "" {
			err = fmt.Errorf("%w; its last log line: %s", err, last)
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("local cluster: %w", errors.Join(errs...))
}

// Close stops every node with SIGTERM (they drain their clients), kills any that is
// still running after 10 s, and removes the config file. It reports the nodes that
// did not stop cleanly, but not those that had exited before (which were reported
// when they did).
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
		np.mu.Lock()
		early := np.early
		np.mu.Unlock()
		var exit *exec.ExitError
		if !early && np.err != nil && !(errors.As(np.err, &exit) && !exit.Exited()) {
			errs = append(errs, fmt.Errorf("node %s: %w", np.name, np.err))
		}
	}
	return errors.Join(errs...)
}
