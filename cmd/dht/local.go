package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/local"
)

func newLocalCmd() *cobra.Command {
	var nodes, basePort int
	var routing, logLevel string
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run a whole cluster on 127.0.0.1 in one process",
		Long: `Run an N-node cluster on 127.0.0.1, ports base-port, base-port+1, ...
Any Redis client can use it (redis-cli -c -p 7001). Ctrl-C stops it cleanly.`,
		Example: `  dht local
  dht local --nodes 5 --base-port 8001
  redis-cli -c -p 7001 set greeting hello`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			cfg, err := config.Local(nodes, basePort)
			if err != nil {
				return err
			}
			cfg.Routing = routing
			if err := cfg.Validate(); err != nil {
				return err
			}
			c, err := local.Start(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			if err := c.WaitReady(cmd.Context()); err != nil {
				return fmt.Errorf("%w (%v)", err, c.Close())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dht: %d-node cluster ready on %v\n", nodes, c.Addrs())
			fmt.Fprintf(cmd.OutOrStdout(), "try: redis-cli -c -p %d set greeting hello\n", basePort)
			<-cmd.Context().Done()
			return c.Close()
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", 3, "number of nodes")
	f.IntVar(&basePort, "base-port", 7001, "port of the first node")
	f.StringVar(&routing, "routing", config.RoutingForward, "forward (relay requests for other nodes' slots) or moved (answer -MOVED)")
	f.StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error")
	return cmd
}
