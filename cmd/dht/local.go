package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/local"
)

func newLocalCmd() *cobra.Command {
	var nodes, basePort, replication int
	var routing, logLevel, password, dataDir, fsync string
	var inMemory bool
	var tlsf tlsFlags
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run a whole cluster on 127.0.0.1",
		Long: `Run an N-node cluster on 127.0.0.1, ports base-port, base-port+1, ...: one
'dht serve' process per node, as on separate hosts, each with an equal share of
the CPUs as its event loops. Any Redis client can use it
(redis-cli -c -p 7001). Killing one node's process shows what the others do when
a node dies. Ctrl-C stops them all cleanly.

The nodes keep their data in a temporary directory that goes when the cluster
stops, unless --data-dir names one to keep (a node per subdirectory; run again
with the same --data-dir and the cluster comes back with its data), or
--in-memory keeps nothing on disk.`,
		Example: `  dht local
  dht local --nodes 5 --base-port 8001
  dht local --tls --password secret   # prints the redis-cli command with the throwaway CA
  redis-cli -c -p 7001 set greeting hello`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			if nodes < 1 {
				return fmt.Errorf("--nodes %d: a cluster needs at least one node", nodes)
			}
			cfg, err := config.Local(nodes, basePort)
			if err != nil {
				return err
			}
			cfg.Routing = routing
			if cmd.Flags().Changed("replication-degree") {
				cfg.ReplicationDegree = replication
			}
			if err := localPersistence(&cfg, cmd.Flags(), fsync, dataDir, inMemory); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			cfg.Auth.Password = cmp.Or(password, os.Getenv(config.EnvPassword))
			if tlsf.cert != "" || tlsf.key != "" || tlsf.ca != "" {
				cfg.TLS = config.TLS{CertFile: tlsf.cert, KeyFile: tlsf.key, CAFile: tlsf.ca}
				if err := cfg.Validate(); err != nil {
					return err
				}
			}
			c, err := local.StartProcesses(cfg, local.ProcOptions{LogLevel: logLevel, Log: log, DataDir: dataDir, InMemory: inMemory, TLS: tlsf.on})
			if err != nil {
				return err
			}
			if err := c.WaitReady(cmd.Context()); err != nil {
				return errors.Join(err, c.Close())
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "dht: %d-node cluster ready, each slot range on %d nodes\n", nodes, cfg.ReplicationDegree)
			for i, n := range cfg.Nodes {
				fmt.Fprintf(out, "  %s  %s  id %s  pid %d\n", n.Name, n.Addr, n.ID(), c.Pids()[i])
			}
			auth := ""
			if t := c.Config().TLS; t.Enabled() {
				auth = "--tls --cacert " + t.CAFile + " "
			}
			if cfg.Auth.Password != "" {
				auth += "-a PASSWORD "
			}
			fmt.Fprintf(out, "try: redis-cli -c -p %d %sset greeting hello   (Ctrl-C stops the cluster)\n", basePort, auth)
			<-cmd.Context().Done()
			return c.Close()
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", 3, "number of nodes")
	f.IntVar(&basePort, "base-port", 7001, "port of the first node")
	f.IntVar(&replication, "replication-degree", 3, "copies of each key, each slot range replicated by a Raft group of that many nodes (default 3, or --nodes when fewer)")
	addPersistenceFlags(f, &dataDir, &inMemory, &fsync)
	f.StringVar(&routing, "routing", config.RoutingForward, "forward (relay requests for other nodes' slots) or moved (answer -MOVED)")
	f.StringVar(&password, "password", "", "password clients must AUTH with (default: $"+config.EnvPassword+"; none when unset)")
	tlsf.register(f, "serve TLS only, with a throwaway CA and certificate for 127.0.0.1 in a temporary directory (its ca.crt is printed), gone when the cluster stops")
	f.StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error")
	return cmd
}
