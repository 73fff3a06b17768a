package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
)

// checkPasswordCluster drives a cluster whose password is pw: clients without it
// are refused, clients with it work through any node (forwarded or not), and the
// nodes' peer connections (probes, forwarding, INFO cluster's key count, Raft) work.
func checkPasswordCluster(t *testing.T, cfg config.Config, pw string) {
	t.Helper()
	ctx := context.Background()
	anon := plainClient(t, cfg.Nodes[0].Addr)
	if err := anon.Set(ctx, "k", "v", 0).Err(); err == nil || err.Error() != "NOAUTH Authentication required." {
		t.Fatalf("SET without the password = %v; want NOAUTH", err)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrsOf(cfg), Password: pw})
	defer cc.Close()
	for i := range 100 {
		k := fmt.Sprintf("key:%d", i)
		if err := cc.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s through the cluster client: %v", k, err)
		}
	}
	// A plain client with the password, on n1, reaches the keys of every node.
	c := redis.NewClient(&redis.Options{Addr: cfg.Nodes[0].Addr, Password: pw, MaxRetries: -1})
	defer c.Close()
	for i, k := range keysOn(t, len(cfg.Nodes), len(cfg.Nodes)-1, 5, "far") {
		if err := c.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("forwarded SET %s: %v", k, err)
		}
		if v, err := c.Get(ctx, k).Int(); err != nil || v != i {
			t.Fatalf("forwarded GET %s = %d, %v", k, v, err)
		}
	}
	if n, err := clusterKeys(ctx, c); err != nil || n != 105 {
		t.Fatalf("dht_cluster_keys = %d, %v; want 105", n, err)
	}
}

func TestPasswordCluster(t *testing.T) {
	cfg, _ := startCluster(t, 3, func(c *config.Config) { c.Auth.Password = "correct horse" })
	checkPasswordCluster(t, cfg, "correct horse")
}

func TestPasswordReplicatedClusterWithClusterSecret(t *testing.T) {
	cfg, _ := startCluster(t, 3, func(c *config.Config) {
		c.ReplicationDegree = 3
		c.Auth.Password = "correct horse"
		c.Auth.ClusterSecret = "battery staple"
	})
	checkPasswordCluster(t, cfg, "correct horse")
}

func TestWrongClusterSecretHoldsTheBarrier(t *testing.T) {
	cfg, path := testConfig(t, 2, func(c *config.Config) { c.Auth.ClusterSecret = "ours" })
	other := cfg
	other.Auth.ClusterSecret = "theirs" // the same digest: secrets are not part of it
	otherPath := writeConfig(t, other)
	n1 := startNode(t, path, cfg, "n1")
	n2 := startNode(t, otherPath, other, "n2")
	c := plainClient(t, n1.addr)
	waitPing(t, c)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(n1.log.String(), "peer refused this node's cluster secret") || !strings.Contains(n2.log.String(), "peer refused this node's cluster secret") {
		if time.Now().After(deadline) {
			t.Fatalf("the nodes never reported the wrong cluster secret:\nn1:\n%s\nn2:\n%s", n1.log.String(), n2.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	err := c.Set(context.Background(), "k", "v", 0).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "CLUSTERDOWN") || !strings.Contains(err.Error(), "n2: wrong cluster secret") {
		t.Fatalf("SET with a peer of another secret = %v; want CLUSTERDOWN naming n2 and the wrong secret", err)
	}
	if info, _ := c.ClusterInfo(context.Background()).Result(); !strings.Contains(info, "cluster_state:fail") {
		t.Fatalf("CLUSTER INFO: %q", info)
	}
}
