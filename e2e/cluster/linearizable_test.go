package cluster_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/lincheck"
)

// TestLinearizableHealthyCluster runs the linearizability workload against a
// healthy 3-node cluster through go-redis ClusterClients, checks the history
// and reads every key back. With no faults every operation must succeed. A
// failure leaves a visualization in the test's artifact directory (kept with
// go test -artifacts).
func TestLinearizableHealthyCluster(t *testing.T) {
	cfg, _ := startCluster(t, 3, nil)
	addrs := addrsOf(cfg)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ctx := context.Background()

	h, err := lincheck.Run(ctx, lincheck.Config{
		NewClient:     func(int) redis.UniversalClient { return lincheck.NewClusterClient(addrs) },
		Clients:       8,
		Keys:          lincheck.SpreadKeys("lin:", 20),
		Duration:      3 * time.Second,
		MaxOps:        100_000,
		Logger:        log,
		ProgressEvery: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := h.Stats()
	if st.FailedReads+st.UnknownWrites > 0 || st.Reads < 100 || st.Writes < 100 {
		t.Fatalf("seed %d: %+v; want every operation to succeed, at least 100 of each", h.Seed, st)
	}

	checker := lincheck.Checker{Dir: t.ArtifactDir(), Timeout: 30 * time.Second, Logger: log}
	start := time.Now()
	if err := checker.Check(h); err != nil {
		t.Fatalf("%v\n(go test -artifacts keeps the visualization)", err)
	}
	t.Logf("checked %d ops in %s", len(h.Ops), time.Since(start).Round(time.Millisecond))

	rc := lincheck.NewClusterClient(addrs)
	defer rc.Close()
	readCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := checker.CheckDurable(readCtx, rc, h); err != nil {
		t.Fatalf("%v\n(go test -artifacts keeps the visualization)", err)
	}
}
