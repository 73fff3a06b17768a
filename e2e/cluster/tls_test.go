package cluster_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/tlsconf"
)

// TestTLSCluster runs a replicated 3-node cluster that serves TLS only, with a
// password and an ACL user, its certificates made for the test: go-redis and
// redis-cli round trips through every node (forwarded to the leaders and replicated
// over TLS between the nodes), plain TCP refused, a client trusting another CA
// refused, a client certificate from another CA refused, and the NOAUTH, WRONGPASS
// and NOPERM replies as Redis words them.
func TestTLSCluster(t *testing.T) {
	files, err := tlsconf.GenerateLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsconf.GenerateLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	appHash := sha256.Sum256([]byte("app-pw"))
	cfg, _ := startCluster(t, 3, func(c *config.Config) {
		c.ReplicationDegree = 3
		c.Auth.Password = "pw"
		c.Auth.Users = []config.User{{Name: "app", PasswordHashes: []string{hex.EncodeToString(appHash[:])},
			Commands: []string{"+@read", "+@write", "-@dangerous", "+cluster|slots"}, Keys: []string{"~app:*"}}}
		c.TLS = config.TLS{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA, ClientAuth: tlsconf.ClientAuthRequest}
	})
	ctx := context.Background()
	clientTLS, err := tlsconf.Client(tlsconf.Files{CA: files.CA})
	if err != nil {
		t.Fatal(err)
	}

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrsOf(cfg), Password: "pw", TLSConfig: clientTLS})
	defer cc.Close()
	for i := range 100 {
		k := fmt.Sprintf("key:%d", i)
		if err := cc.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s through the cluster client: %v", k, err)
		}
	}
	// One node's client reaches every node's keys: forwarded over TLS.
	for _, n := range cfg.Nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr, Password: "pw", TLSConfig: clientTLS, MaxRetries: -1})
		defer c.Close()
		for i := range 100 {
			if v, err := c.Get(ctx, fmt.Sprintf("key:%d", i)).Int(); err != nil || v != i {
				t.Fatalf("GET key:%d on %s = %d, %v", i, n.Name, v, err)
			}
		}
		if n, err := clusterKeys(ctx, c); err != nil || n != 100 {
			t.Fatalf("dht_cluster_keys = %d, %v; want 100", n, err)
		}
	}

	// Pipelined large values: the replies of a run of reads go out as they are made.
	// 8 MiB each way through TLS: more than go-redis's default 3 s read timeout
	// on a busy machine, which this test does not measure.
	one := redis.NewClient(&redis.Options{Addr: cfg.Nodes[0].Addr, Password: "pw", TLSConfig: clientTLS, MaxRetries: -1,
		ReadTimeout: 30 * time.Second})
	defer one.Close()
	big := strings.Repeat("v", 100<<10)
	pipe := one.Pipeline()
	for i := range 40 {
		pipe.Set(ctx, fmt.Sprintf("big:%d", i), big, 0)
	}
	var gets []*redis.StringCmd
	for i := range 40 {
		gets = append(gets, pipe.Get(ctx, fmt.Sprintf("big:%d", i)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("a pipeline of 40 SETs and GETs of 100 KiB: %v", err)
	}
	for i, g := range gets {
		if g.Val() != big {
			t.Fatalf("GET big:%d: %d bytes", i, len(g.Val()))
		}
	}

	anon := redis.NewClient(&redis.Options{Addr: cfg.Nodes[1].Addr, TLSConfig: clientTLS, MaxRetries: -1})
	defer anon.Close()
	wantErr(t, anon.Get(ctx, "key:1").Err(), "NOAUTH Authentication required.")
	wantErr(t, anon.Do(ctx, "auth", "app", "wrong").Err(), "WRONGPASS invalid username-password pair or user is disabled.")
	app := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrsOf(cfg), Username: "app", Password: "app-pw", TLSConfig: clientTLS})
	defer app.Close()
	for _, k := range keysOn(t, 3, 2, 3, "app") {
		if err := app.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s as app: %v", k, err)
		}
	}
	wantErr(t, app.Get(ctx, "key:1").Err(), "NOPERM this user has no permissions to access one of the keys used as arguments")
	wantErr(t, app.Do(ctx, "info").Err(), "NOPERM this user has no permissions to run the 'info' command")
	// Through a node that forwards it: refused where it enters.
	appOne := redis.NewClient(&redis.Options{Addr: cfg.Nodes[0].Addr, Username: "app", Password: "app-pw", TLSConfig: clientTLS, MaxRetries: -1})
	defer appOne.Close()
	far := keysOn(t, 3, 2, 1, "key")[0]
	wantErr(t, appOne.Get(ctx, far).Err(), "NOPERM this user has no permissions to access one of the keys used as arguments")
	wantErr(t, appOne.Do(ctx, "config", "get", "maxmemory").Err(), "NOPERM this user has no permissions to run the 'config|get' command")

	plain := plainClient(t, cfg.Nodes[0].Addr)
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("a plain-TCP client was served by a TLS node")
	}
	otherCA, err := tlsconf.Client(tlsconf.Files{CA: other.CA})
	if err != nil {
		t.Fatal(err)
	}
	stranger := redis.NewClient(&redis.Options{Addr: cfg.Nodes[0].Addr, Password: "pw", TLSConfig: otherCA, MaxRetries: -1})
	defer stranger.Close()
	var verr *tls.CertificateVerificationError
	if err := stranger.Ping(ctx).Err(); !errors.As(err, &verr) {
		t.Fatalf("a client trusting another CA: %v; want a certificate verification error", err)
	}
	otherCert, err := tlsconf.Client(tlsconf.Files{CA: files.CA, Cert: other.Cert, Key: other.Key})
	if err != nil {
		t.Fatal(err)
	}
	forged := redis.NewClient(&redis.Options{Addr: cfg.Nodes[0].Addr, Password: "pw", TLSConfig: otherCert, MaxRetries: -1})
	defer forged.Close()
	if err := forged.Ping(ctx).Err(); err == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
	ours, err := tlsconf.Client(files)
	if err != nil {
		t.Fatal(err)
	}
	withCert := redis.NewClient(&redis.Options{Addr: cfg.Nodes[0].Addr, Password: "pw", TLSConfig: ours, MaxRetries: -1})
	defer withCert.Close()
	if err := withCert.Ping(ctx).Err(); err != nil {
		t.Fatalf("a client certificate from the cluster's CA: %v", err)
	}

	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (apt-get install redis-tools)")
	}
	for i, n := range cfg.Nodes {
		_, port, _ := net.SplitHostPort(n.Addr)
		run := func(args ...string) string {
			base := []string{"--tls", "--cacert", files.CA, "--no-auth-warning", "-c", "-p", port}
			out, err := exec.Command(cli, append(base, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
			}
			return strings.TrimSpace(string(out))
		}
		for j := range 10 {
			k := fmt.Sprintf("cli:%d:%d", i, j)
			if got := run("-a", "pw", "set", k, "v"+k); got != "OK" {
				t.Fatalf("redis-cli set %s on %s: %q", k, n.Name, got)
			}
			if got := run("-a", "pw", "get", k); got != "v"+k {
				t.Fatalf("redis-cli get %s on %s: %q", k, n.Name, got)
			}
		}
		if got := run("--user", "app", "--pass", "app-pw", "get", "key:1"); got != "NOPERM this user has no permissions to access one of the keys used as arguments" {
			t.Fatalf("redis-cli as app, get key:1: %q", got)
		}
		if got := run("get", "key:1"); got != "NOAUTH Authentication required." {
			t.Fatalf("redis-cli without a password: %q", got)
		}
		if got := run("-a", "wrong", "get", "key:1"); !strings.Contains(got, "WRONGPASS invalid username-password pair or user is disabled.") {
			t.Fatalf("redis-cli with a wrong password: %q", got)
		}
		out, err := exec.Command(cli, "-a", "pw", "--no-auth-warning", "-p", port, "ping").CombinedOutput()
		if err == nil && strings.Contains(string(out), "PONG") {
			t.Fatalf("redis-cli without --tls was answered: %q", out)
		}
	}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// TestPeerFromAnotherCAHoldsTheBarrier: a node whose certificate another CA signed
// is not admitted, and the startup barrier says why.
func TestPeerFromAnotherCAHoldsTheBarrier(t *testing.T) {
	ours, err := tlsconf.GenerateLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := tlsconf.GenerateLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, path := testConfig(t, 2, func(c *config.Config) {
		c.TLS = config.TLS{CertFile: ours.Cert, KeyFile: ours.Key, CAFile: ours.CA}
	})
	other := cfg
	other.TLS = config.TLS{CertFile: theirs.Cert, KeyFile: theirs.Key, CAFile: theirs.CA}
	n1 := startNode(t, path, cfg, "n1")
	startNode(t, writeConfig(t, other), other, "n2")
	c := nodeClient(t, cfg, n1.addr)
	want := "n2: TLS: its certificate: x509: certificate signed by unknown authority"
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := c.Set(context.Background(), "k", "v", 0).Err()
		if err != nil && strings.HasPrefix(err.Error(), "CLUSTERDOWN") && strings.Contains(err.Error(), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SET with a peer of another CA = %v; want CLUSTERDOWN saying %q", err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The node records the problem, which the SET's reply gives, a moment before
	// its log line reaches the pipe.
	for !strings.Contains(n1.log.String(), "no TLS connection to the peer") {
		if time.Now().After(deadline) {
			t.Fatalf("n1 did not log the TLS failure:\n%s", n1.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
