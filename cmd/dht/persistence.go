package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/dhtkv/dht/internal/config"
)

// addPersistenceFlags adds the flags that say where a local cluster keeps its data.
func addPersistenceFlags(f *pflag.FlagSet, dataDir *string, inMemory *bool, fsync *string) {
	f.StringVar(dataDir, "data-dir", "", "keep the local nodes' data here, one subdirectory per node, after they stop (default: a temporary directory, removed at the end)")
	f.BoolVar(inMemory, "in-memory", false, "the local nodes keep nothing on disk")
	f.StringVar(fsync, "fsync", config.FsyncEverysec, "when the nodes' logs are synced to disk: always, everysec or no (persistence.fsync)")
}

// localPersistence checks the persistence flags of a local cluster and puts the
// fsync policy into its config.
func localPersistence(cfg *config.Config, f *pflag.FlagSet, fsync, dataDir string, inMemory bool) error {
	if inMemory && dataDir != "" {
		return fmt.Errorf("--in-memory and --data-dir: choose one")
	}
	if inMemory && f.Changed("fsync") {
		return fmt.Errorf("--fsync %s with --in-memory: nothing is written to disk", fsync)
	}
	cfg.Persistence.Fsync = fsync
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("--fsync %s: %w", fsync, err)
	}
	return nil
}
