package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/server"
)

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func newServeCmd() *cobra.Command {
	var cfgPath, node, listen, admin, logLevel, dataDir string
	var loops int
	var pprof, inMemory bool
	cmd := &cobra.Command{
		Use:   "serve --config FILE --node ID",
		Short: "Run one node of a cluster",
		Long: `Run one node of the cluster described by the config file; every node loads
the same file. The node listens on its addr from the config (or --listen), and
serves data commands once every node of the config is up and runs the same config
(the startup barrier). SIGINT or SIGTERM drain the clients and stop it.

The node keeps its data in --data-dir (default ./dht-data/<node id>): a
write-ahead log shared by its slot ranges' Raft groups and a snapshot file per
group, synced as persistence.fsync in the config says (always, everysec or no).
After a restart it loads its snapshots, replays its log and catches up with its
groups. --in-memory keeps nothing on disk: a restart loses the node's data (with
replication, the node is then caught up from the others before it may vote).

Clients are served on event loops, one per CPU by default (--event-loops). The
loops spend most of their time in system calls, so unless GOMAXPROCS is set the
node runs with one more P than it has loops: the Go runtime then leaves a loop's P
alone while the loop is in a system call, instead of handing it to another thread.
With persistence.fsync always it runs with one more still, for the log's writer,
which is in an fsync most of the time.`,
		Example: `  dht serve --config examples/cluster.json --node n1
  dht serve --config /etc/dht/cluster.json --node n2 --listen 0.0.0.0:7001 --data-dir /var/lib/dht`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if err := cfg.ResolveSecrets(os.Getenv); err != nil {
				return fmt.Errorf("config %s: %w", cfgPath, err)
			}
			if loops < 0 {
				return fmt.Errorf("--event-loops %d: want 0 (one per CPU) or more", loops)
			}
			if loops == 0 {
				loops = runtime.GOMAXPROCS(0)
			}
			switch {
			case inMemory && cmd.Flags().Changed("data-dir"):
				return fmt.Errorf("--in-memory and --data-dir: choose one")
			case inMemory:
				dataDir = ""
			case dataDir == "":
				dataDir = filepath.Join("dht-data", node)
			}
			if os.Getenv("GOMAXPROCS") == "" {
				procs := loops + 1
				if dataDir != "" && cfg.Persistence.Fsync == config.FsyncAlways {
					// The log's writer is in an fsync most of the time.
					procs++
				}
				runtime.GOMAXPROCS(procs)
			}
			s, err := server.New(server.Options{Config: cfg, Self: node, Listen: listen, AdminListen: admin,
				Logger: log, EventLoops: loops, PProf: pprof, DataDir: dataDir})
			if err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "cluster config file (JSON, or the original properties format)")
	f.StringVar(&node, "node", "", "this node's id in the config")
	f.StringVar(&listen, "listen", "", "address to listen on (default: the node's addr)")
	f.StringVar(&admin, "admin", "", "admin HTTP address for /metrics and /healthz (default: the node's admin_addr)")
	f.BoolVar(&pprof, "pprof", false, "serve Go's profiler under /debug/pprof/ on the admin server (as admin.pprof in the config)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.IntVar(&loops, "event-loops", 0, "event loops serving clients (default: one per CPU the process may use)")
	f.StringVar(&dataDir, "data-dir", "", "directory of the node's write-ahead log and snapshots (default ./dht-data/<node id>)")
	f.BoolVar(&inMemory, "in-memory", false, "keep nothing on disk: a restart loses this node's data")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("node")
	return cmd
}
