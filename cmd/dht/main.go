// Command dht runs a node of the dht distributed hash table, a whole local cluster,
// or the benchmark workload against one.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() { os.Exit(run()) }

// run runs the command line in os.Args and returns the exit code.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "dht:", err)
		return 1
	}
	return 0
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "dht",
		Short: "A distributed hash table that speaks the Redis Cluster protocol",
		Long: `dht is a distributed in-memory key-value store. Its nodes split the 16384
Redis Cluster hash slots between them, so any Redis client (redis-cli -c,
go-redis ClusterClient, redis-benchmark --cluster) can use it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newLocalCmd(), newBenchCmd(), newVersionCmd())
	return root
}
