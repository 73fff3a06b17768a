// Package local runs a whole dht cluster on loopback, every node on its own port:
// either inside this process (Start, behind `dht bench --local`) or as one child
// `dht serve` process per node (StartProcesses, behind `dht local`).
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/server"
)

// Cluster is a running local cluster.
type Cluster struct {
	servers []*server.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu   sync.Mutex
	errs []error
}

// Start starts every node of cfg in this process and returns once all listen. The
// nodes run until ctx ends or Close is called.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger) (*Cluster, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{}
	for _, n := range cfg.Nodes {
		s, err := server.New(server.Options{Config: cfg, Self: n.Name, Logger: log})
		if err != nil {
			for _, started := range c.servers {
				_ = started.Close()
			}
			return nil, fmt.Errorf("local cluster: node %s: %w", n.Name, err)
		}
		c.servers = append(c.servers, s)
	}
	ctx, c.cancel = context.WithCancel(ctx)
	for _, s := range c.servers {
		c.wg.Go(func() {
			if err := s.Run(ctx); err != nil {
				c.mu.Lock()
				c.errs = append(c.errs, err)
				c.mu.Unlock()
			}
		})
	}
	return c, nil
}

// Addrs returns the nodes' client addresses, in config order.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.servers))
	for i, s := range c.servers {
		out[i] = s.Addr().String()
	}
	return out
}

// WaitReady waits until every node reports cluster_state:ok.
func (c *Cluster) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		ready := true
		for _, s := range c.servers {
			ready = ready && s.Healthy()
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local cluster: not ready: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Close stops every node, letting clients finish, and returns their errors.
func (c *Cluster) Close() error {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.errs...)
}
