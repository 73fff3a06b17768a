package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/dhtkv/dht/internal/bench"
	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/local"
)

// benchFlags are the flags of dht bench.
type benchFlags struct {
	local       int
	basePort    int
	replication int
	dataDir     string
	inMemory    bool
	fsync       string
	configPath  string
	node        string
	targets     []string

	clients      int
	barrierCount int
	clientID     int
	runID        string
	barrier      string
	barrierWait  time.Duration
	opTimeout    time.Duration
	password     string
	tls          tlsFlags

	keyMin, keyMax int64
	requests       int
	threads        int
	valueSize      int
	mix            string
	multiPutNum    int
	pipeline       int
	duration       time.Duration
	keyPrefix      string
	sweep          string

	out      string
	noVerify bool
	noCharts bool
	quiet    bool
	logLevel string
}

func newBenchCmd() *cobra.Command {
	var fl benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run the benchmark workload against a dht cluster (or any Redis Cluster)",
		Long: `Run the original assignment's benchmark: bench clients wait until the cluster
reports cluster_state:ok, meet at a distributed barrier, then each runs --threads
threads issuing --requests operations (or running for --duration) drawn from the
--mix over keys uniform in [--key-min, --key-max). Keys are "<key-prefix><n>"
("key:17"); values are --value-size bytes naming the run, client, thread and
sequence number of the write.

Where it runs:
  --local N                 start an N-node cluster (one dht serve process per
                            node, 127.0.0.1, ports --base-port...) and run one
                            client per node;
                            the default when no other mode is given (N = 3)
  --config FILE --node ID   run the one client of host ID against a running
                            cluster; all hosts' clients (one per node of the
                            config) meet at the barrier
  --config FILE             run the clients of all nodes of the config here
  --target ADDR,...         run --clients clients against any Redis Cluster;
                            on several hosts add --barrier-count (clients of
                            all hosts) and a distinct --client-id per host

With --local the cluster runs on this machine, one dht serve process per node,
and shares its CPUs with the clients; the other modes measure a cluster
running elsewhere.

The barrier is dht's DHT.BARRIER command, served by the node owning the
barrier's key. Real Redis has no such command: with --barrier auto (the
default) the clients then fall back to a counter barrier on plain commands
(INCR, then GET every millisecond until all have arrived), which works across
hosts too but releases clients up to about a millisecond apart. A single
client skips the barrier. A client that does not arrive within
--barrier-timeout makes the others fail with the number that arrived.

Measured: throughput (completed requests / wall-clock time), latency per
operation (HDR histograms: p50, p90, p99, p99.9, max), failed requests by
reason (error_reply, timeout, clusterdown, crossslot, redirect, connection),
the client library's retries and redirects, put-if-absent won/lost, get
hit/miss, and a time series every second. A multi_put is one MSET of
multi_put_num keys drawn from the whole key range, so its keys are on several
nodes (a cluster without cross-node MSET fails most with CROSSSLOT, counted as
such). With --pipeline N every request of a batch is charged the batch's round
trip.

At the end every client reads back the keys it saw acknowledged: each must
exist, each key it won with put-if-absent must hold the winning value (or, if
the mix has put or multi_put, a value of this run), and no multi_put may have
landed partly (one of its keys holding its value while another holds what the
same thread wrote before it). --no-verify skips this.

Results go to --out: results.json (setup, host, per-client and merged
reports, histograms, series) and PNG charts (throughput.png, latency.png; for
--sweep sweep-throughput.png, sweep-latency.png, sweep-failures.png). A sweep
runs the workload once per value; each step uses fresh keys
("<key-prefix>s<step>:<n>").`,
		Example: `  # the default: a local 3-node cluster, 3 clients x 8 threads, 60% get / 40% put-if-absent
  dht bench

  # the second assignment's mix: multi_put is an MSET across nodes, atomic
  dht bench --local 3 --mix get=60,put=20,multi_put=20

  # throughput against the key range, charted
  dht bench --local 3 --sweep key_range=10,100,1000,10000

  # one host of a multi-host run (every host runs the same command with its own --node)
  dht bench --config cluster.json --node n2

  # a real Redis Cluster, 3 clients, for a side-by-side figure
  dht bench --target 127.0.0.1:8101,127.0.0.1:8102,127.0.0.1:8103 --clients 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd, fl)
		},
	}
	cmd.AddCommand(newBenchCompareCmd())
	f := cmd.Flags()
	f.IntVar(&fl.local, "local", 0, "start an N-node local cluster and run one client per node (default 3 when no --config or --target)")
	f.IntVar(&fl.basePort, "base-port", 7001, "port of the first node of --local")
	f.IntVar(&fl.replication, "replication-degree", 3, "copies of each key in the --local cluster (default 3, or --local when fewer)")
	addPersistenceFlags(f, &fl.dataDir, &fl.inMemory, &fl.fsync)
	f.StringVar(&fl.configPath, "config", "", "cluster config file; its workload section sets the workload's defaults")
	f.StringVar(&fl.node, "node", "", "with --config: run only the client of this node")
	f.StringSliceVar(&fl.targets, "target", nil, "seed addresses of a running Redis Cluster (dht or Redis)")

	f.IntVar(&fl.clients, "clients", 0, "bench clients in this process (default: one per node; 1 with --target)")
	f.IntVar(&fl.barrierCount, "barrier-count", 0, "clients of the whole run, on all hosts, that meet at the barrier (default: one per node of the config, or --clients)")
	f.IntVar(&fl.clientID, "client-id", -1, "id of this process's first client (default: the node's index with --node, else 0)")
	f.StringVar(&fl.runID, "run-id", "", "run id naming the barrier; all clients of a run need the same one (default: derived from the config and workload)")
	f.StringVar(&fl.barrier, "barrier", string(bench.BarrierAuto), "barrier: auto, dht (DHT.BARRIER), counter (INCR/GET, any Redis) or none")
	f.DurationVar(&fl.barrierWait, "barrier-timeout", 0, "how long to wait for the cluster and the other clients (default: the config's timeouts.barrier, 60s)")
	f.StringVar(&fl.password, "password", "", "password of the cluster's default user (default: $"+config.EnvPassword+", else the config's auth section); with --local, the password the local cluster asks for")
	fl.tls.register(f, "with --local, the local cluster serves TLS with a throwaway CA, as dht local --tls; else talk TLS to the cluster (the config's tls section does too)")
	f.DurationVar(&fl.opTimeout, "op-timeout", 3*time.Second, "timeout of one request; a request past it fails as timeout")

	d := config.Default().Workload
	f.Int64Var(&fl.keyMin, "key-min", d.KeyMin, "lowest key number (inclusive)")
	f.Int64Var(&fl.keyMax, "key-max", d.KeyMax, "highest key number (exclusive)")
	f.IntVar(&fl.requests, "requests", d.Requests, "requests per client thread")
	f.IntVar(&fl.threads, "threads", d.Threads, "client threads per client")
	f.IntVar(&fl.valueSize, "value-size", d.ValueSize, "size of written values in bytes")
	f.StringVar(&fl.mix, "mix", bench.FormatMix(d.Mix), "operation mix in percent: get, put_if_absent (SET NX), put (SET), multi_put (MSET)")
	f.IntVar(&fl.multiPutNum, "multi-put-num", d.MultiPutNum, "keys per multi_put")
	f.IntVar(&fl.pipeline, "pipeline", d.Pipeline, "requests each thread sends per round trip")
	f.DurationVar(&fl.duration, "duration", 0, "run each thread this long instead of --requests requests")
	f.StringVar(&fl.keyPrefix, "key-prefix", "key:", "prefix of every key")
	f.StringVar(&fl.sweep, "sweep", "", "run once per value of a parameter: key_range, threads, pipeline, value_size or multi_put_num (e.g. key_range=10,100,1000)")

	f.StringVar(&fl.out, "out", "", "results directory (default bench-results/<run-id>-<time>)")
	f.BoolVar(&fl.noVerify, "no-verify", false, "skip the correctness check at the end")
	f.BoolVar(&fl.noCharts, "no-charts", false, "write results.json only, no PNG charts")
	f.BoolVar(&fl.quiet, "quiet", false, "no progress bar")
	f.StringVar(&fl.logLevel, "log-level", "warn", "debug, info, warn or error")
	return cmd
}

// benchSetup is what the flags resolve to: the cluster config (for --local and
// --config), the workload, and the plan's clients.
type benchSetup struct {
	cfg   config.Config
	local bool
	plan  bench.Plan
	mode  bench.BarrierMode
}

// resolveBench turns the flags into a plan, without any I/O but reading the config file.
func resolveBench(fs *pflag.FlagSet, fl benchFlags) (benchSetup, error) {
	var s benchSetup
	modes := 0
	for _, set := range []bool{fl.local > 0 || fs.Changed("local"), fl.configPath != "", len(fl.targets) > 0} {
		if set {
			modes++
		}
	}
	if modes > 1 {
		return s, errors.New("--local, --config and --target are exclusive")
	}
	if fl.node != "" && fl.configPath == "" {
		return s, errors.New("--node needs --config")
	}
	mode, err := bench.ParseBarrierMode(fl.barrier)
	if err != nil {
		return s, err
	}
	s.mode = mode
	setup := bench.Setup{Barrier: mode, OpTimeout: config.Duration{Duration: fl.opTimeout}, KeyPrefix: fl.keyPrefix, Verify: !fl.noVerify}
	var clients []bench.ClientTarget
	var identity string
	switch {
	case fl.configPath != "":
		s.cfg, err = config.Load(fl.configPath)
		if err != nil {
			return s, err
		}
		setup.Mode, setup.ConfigDigest = "config", s.cfg.Digest()
		identity = "config:" + s.cfg.Digest()
		setup.BarrierCount = len(s.cfg.Nodes)
		if fl.node != "" {
			if fs.Changed("clients") && fl.clients != 1 {
				return s, errors.New("--node runs exactly one client; drop --clients")
			}
			i := slices.IndexFunc(s.cfg.Nodes, func(n config.Node) bool { return n.Name == fl.node })
			if i < 0 {
				_, err := s.cfg.Node(fl.node)
				return s, err
			}
			id := i
			if fl.clientID >= 0 {
				id = fl.clientID
			}
			clients = []bench.ClientTarget{{ID: id, Addrs: []string{s.cfg.Nodes[i].Addr}}}
		} else {
			for i, n := range s.cfg.Nodes {
				clients = append(clients, bench.ClientTarget{ID: max(fl.clientID, 0) + i, Addrs: []string{n.Addr}})
			}
		}
	case len(fl.targets) > 0:
		setup.Mode = "target"
		s.cfg = config.Default()
		identity = "target:" + fmt.Sprint(fl.targets)
		n := max(fl.clients, 1)
		for i := range n {
			// Rotate the seeds so that the clients poll different nodes' state.
			k := i % len(fl.targets)
			seeds := append(slices.Clone(fl.targets[k:]), fl.targets[:k]...)
			clients = append(clients, bench.ClientTarget{ID: max(fl.clientID, 0) + i, Addrs: seeds})
		}
		setup.BarrierCount = n
	default:
		n := fl.local
		if fs.Changed("local") && n < 1 {
			return s, fmt.Errorf("--local %d: a cluster needs at least one node", n)
		}
		if n == 0 {
			n = 3
		}
		s.cfg, err = config.Local(n, fl.basePort)
		if err != nil {
			return s, fmt.Errorf("--local %d --base-port %d: %w", n, fl.basePort, err)
		}
		if fs.Changed("replication-degree") {
			s.cfg.ReplicationDegree = fl.replication
			if err := s.cfg.Validate(); err != nil {
				return s, fmt.Errorf("--replication-degree %d: %w", fl.replication, err)
			}
		}
		if err := localPersistence(&s.cfg, fs, fl.fsync, fl.dataDir, fl.inMemory); err != nil {
			return s, err
		}
		s.local = true
		setup.Mode = "local"
		identity = "local:" + s.cfg.Digest()
		for i, node := range s.cfg.Nodes {
			clients = append(clients, bench.ClientTarget{ID: i, Addrs: []string{node.Addr}})
		}
		setup.BarrierCount = n
	}
	if fs.Changed("clients") && setup.Mode != "target" && fl.clients != len(clients) {
		return s, fmt.Errorf("--clients is for --target; with --%s there is one client per node (%d)", setup.Mode, len(clients))
	}
	if fl.barrierCount > 0 {
		setup.BarrierCount = fl.barrierCount
	}
	if setup.BarrierCount < len(clients) {
		return s, fmt.Errorf("--barrier-count %d is less than the %d clients of this process", setup.BarrierCount, len(clients))
	}
	if mode == bench.BarrierNone {
		setup.BarrierCount = len(clients)
	}
	setup.Clients = len(clients)
	for _, c := range clients {
		setup.Targets = append(setup.Targets, c.Addrs[0])
	}

	w, err := benchWorkload(fs, fl, s.cfg.Workload)
	if err != nil {
		return s, err
	}
	setup.Workload = w
	if setup.Mode != "target" {
		setup.Nodes = s.cfg.Nodes
	}
	setup.BarrierTimeout = s.cfg.Timeouts.Barrier
	if fl.barrierWait > 0 {
		setup.BarrierTimeout = config.Duration{Duration: fl.barrierWait}
	}
	var sweep *bench.Sweep
	if fl.sweep != "" {
		if sweep, err = bench.ParseSweep(fl.sweep); err != nil {
			return s, err
		}
		for _, v := range sweep.Values {
			if err := sweep.Apply(w, v).Validate(); err != nil {
				return s, fmt.Errorf("--sweep %s=%d: %w", sweep.Param, v, err)
			}
		}
	}
	runID := fl.runID
	if runID == "" {
		runID = defaultRunID(identity, setup, sweep)
	}
	s.plan = bench.Plan{RunID: runID, Setup: setup, Clients: clients, Sweep: sweep}
	return s, nil
}

// benchWorkload applies the workload flags the user set to base (the config's workload).
func benchWorkload(fs *pflag.FlagSet, fl benchFlags, base config.Workload) (config.Workload, error) {
	w := base
	set := fs.Changed
	if set("key-min") {
		w.KeyMin = fl.keyMin
	}
	if set("key-max") {
		w.KeyMax = fl.keyMax
	}
	if set("requests") {
		w.Requests = fl.requests
	}
	if set("threads") {
		w.Threads = fl.threads
	}
	if set("value-size") {
		w.ValueSize = fl.valueSize
	}
	if set("mix") {
		m, err := bench.ParseMix(fl.mix)
		if err != nil {
			return w, fmt.Errorf("--mix %s: %w", fl.mix, err)
		}
		w.Mix = m
	}
	if set("multi-put-num") {
		w.MultiPutNum = fl.multiPutNum
	}
	if set("pipeline") {
		w.Pipeline = fl.pipeline
	}
	if set("duration") {
		w.Duration = config.Duration{Duration: fl.duration}
	}
	if err := w.Validate(); err != nil {
		return w, flagProblems(fs, err)
	}
	return w, nil
}

// flagProblems rewrites the problems of workload fields that a flag set (the
// flag named as the field: --mix for workload.mix) to name the flag the user
// typed instead of the config field.
func flagProblems(fs *pflag.FlagSet, err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return err
	}
	var errs []error
	for _, e := range j.Unwrap() {
		var fe *config.FieldError
		if errors.As(e, &fe) {
			name := strings.ReplaceAll(strings.TrimPrefix(fe.Field, "workload."), "_", "-")
			if f := fs.Lookup(name); f != nil && fs.Changed(name) {
				e = fmt.Errorf("--%s %s: %s", name, f.Value, strings.TrimPrefix(fe.Problem, f.Value.String()+": "))
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// defaultRunID derives the run id from what every client of the run shares:
// the cluster's identity, the workload, the sweep and the barrier count. Hosts
// running the same command against the same config compute the same id.
func defaultRunID(identity string, setup bench.Setup, sweep *bench.Sweep) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%d|%s|", identity, setup.BarrierCount, setup.KeyPrefix)
	// Encoding a Workload cannot fail.
	_ = json.NewEncoder(h).Encode(setup.Workload)
	if sweep != nil {
		fmt.Fprint(h, sweep.String())
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func runBench(cmd *cobra.Command, fl benchFlags) error {
	log, err := newLogger(fl.logLevel)
	if err != nil {
		return err
	}
	s, err := resolveBench(cmd.Flags(), fl)
	if err != nil {
		return err
	}
	if err := s.cfg.ResolveSecrets(os.Getenv); err != nil {
		return err
	}
	if fl.password != "" {
		s.cfg.Auth.Password = fl.password
	}
	ctx := cmd.Context()
	if s.local {
		// The cluster outlives an interrupt until the clients have stopped
		// (the deferred Close), so that stopping it is not counted as failures.
		cl, err := local.StartProcesses(s.cfg, local.ProcOptions{Log: log, DataDir: fl.dataDir, InMemory: fl.inMemory, TLS: fl.tls.on})
		if err != nil {
			return err
		}
		s.cfg = cl.Config()
		defer func() {
			if err := cl.Close(); err != nil {
				log.Warn("stopping the local cluster", "err", err)
			}
		}()
		readyCtx, cancel := context.WithTimeout(ctx, s.plan.Setup.BarrierTimeout.Duration)
		err = cl.WaitReady(readyCtx)
		cancel()
		if err != nil {
			return err
		}
		for i, a := range cl.Addrs() {
			s.plan.Clients[i].Addrs = []string{a}
		}
	}
	clientTLS, err := fl.tls.client(s.cfg.TLS)
	if err != nil {
		return err
	}
	plan := s.plan
	plan.NewStore = func(c bench.ClientTarget, w config.Workload) bench.Store {
		return bench.NewRedisStore(bench.RedisOptions{Addrs: c.Addrs, PoolSize: w.Threads, OpTimeout: fl.opTimeout, Barrier: s.mode, Password: s.cfg.Auth.Password, TLS: clientTLS}, log)
	}
	var bar *progressbar.ProgressBar
	if !fl.quiet && term.IsTerminal(int(os.Stderr.Fd())) {
		bar = newProgress(plan)
		plan.Progress = func(step int, done, total int64) { showProgress(bar, plan, step, done, total) }
	}
	res, runErr := bench.Run(ctx, plan, log)
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
	if len(res.Steps) == 0 {
		return runErr
	}
	out := fl.out
	if out == "" {
		out = filepath.Join("bench-results", res.RunID+"-"+res.Started.Format("20060102-150405"))
	}
	if err := writeBenchResults(out, res, !fl.noCharts); err != nil {
		return errors.Join(runErr, err)
	}
	if err := bench.WriteSummary(cmd.OutOrStdout(), res); err != nil {
		return errors.Join(runErr, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "results: %s\n", out)
	if errors.Is(runErr, context.Canceled) {
		return fmt.Errorf("interrupted; partial results in %s", out)
	}
	if runErr != nil {
		return runErr
	}
	for _, st := range res.Steps {
		if v := st.Total.Verify; v != nil && !v.OK() {
			return fmt.Errorf("verify failed: %d keys missing, %d with the wrong value, %d won twice, %d multi-puts partly applied (see %s)",
				v.Missing, v.WrongValue, v.DoubleWins, v.PartialMultiPuts, out)
		}
	}
	return nil
}

func writeBenchResults(dir string, res *bench.Results, charts bool) error {
	if err := bench.WriteJSON(dir, res); err != nil {
		return err
	}
	if !charts {
		return nil
	}
	return bench.WriteCharts(dir, res)
}

// newProgress returns a progress bar on stderr for the plan's first step.
func newProgress(p bench.Plan) *progressbar.ProgressBar {
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("req"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetDescription(stepDescription(p, 0)),
	)
}

func stepDescription(p bench.Plan, step int) string {
	if p.Sweep == nil {
		return "bench"
	}
	return fmt.Sprintf("%s=%d", p.Sweep.Param, p.Sweep.Values[step])
}

// showProgress moves the bar to done of total requests of step.
func showProgress(bar *progressbar.ProgressBar, p bench.Plan, step int, done, total int64) {
	if desc := stepDescription(p, step); bar.State().Description != desc {
		bar.Reset()
		bar.Describe(desc)
	}
	if total > 0 && bar.GetMax64() != total {
		bar.ChangeMax64(total)
	}
	_ = bar.Set64(done)
}

func newBenchCompareCmd() *cobra.Command {
	var out, baseline string
	cmd := &cobra.Command{
		Use:   "compare LABEL=RESULTS[,RESULTS...] LABEL=RESULTS[,RESULTS...]...",
		Short: "Compare the results of several runs step by step, with charts",
		Long: `Compare runs written by dht bench (results.json, or the directory holding it).
Prints each run's successful requests per second at every sweep step and its
ratio to the baseline run (--baseline, default the last one); with --out, also draws the runs'
sweep charts on common axes (the runs must sweep the same parameter). Several
comma-separated results under one label are repetitions of the same run: each
step then shows the repetition with the median throughput.`,
		Example: `  dht bench compare dht=bench-results/dht redis=bench-results/redis --out docs/bench
  dht bench compare dht=r/dht-1,r/dht-2,r/dht-3 redis=r/redis-1,r/redis-2,r/redis-3`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			runs, err := loadLabeled(args)
			if err != nil {
				return err
			}
			base := len(runs) - 1
			if baseline != "" {
				base = slices.IndexFunc(runs, func(r bench.Labeled) bool { return r.Label == baseline })
				if base < 0 {
					return fmt.Errorf("--baseline %q is none of the labels", baseline)
				}
			}
			if err := bench.WriteComparison(cmd.OutOrStdout(), runs, base); err != nil {
				return err
			}
			if out == "" {
				return nil
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			return bench.WriteCompareCharts(out, runs)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory for the comparison charts (sweep-throughput.png, sweep-latency.png, sweep-failures.png)")
	cmd.Flags().StringVar(&baseline, "baseline", "", "label of the run the others are divided by (default: the last)")
	return cmd
}

// loadLabeled reads LABEL=PATH[,PATH...] arguments; several paths are
// repetitions of one run, combined by bench.MedianRun.
func loadLabeled(args []string) ([]bench.Labeled, error) {
	var runs []bench.Labeled
	for _, a := range args {
		label, paths, ok := strings.Cut(a, "=")
		if !ok || label == "" || paths == "" {
			return nil, fmt.Errorf("%q: want LABEL=RESULTS[,RESULTS...]", a)
		}
		var reps []*bench.Results
		for path := range strings.SplitSeq(paths, ",") {
			if st, err := os.Stat(path); err == nil && st.IsDir() {
				path = filepath.Join(path, "results.json")
			}
			res, err := bench.ReadJSON(path)
			if err != nil {
				return nil, err
			}
			reps = append(reps, res)
		}
		res, err := bench.MedianRun(reps)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		runs = append(runs, bench.Labeled{Label: label, Results: res})
	}
	return runs, nil
}
