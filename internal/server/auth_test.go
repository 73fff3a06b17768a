package server

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
)

func withPassword(pw string) func(*config.Config) {
	return func(c *config.Config) { c.Auth.Password = pw }
}

// rawClient is a go-redis client that does not authenticate on its own.
func rawClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, PoolSize: 1, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestPasswordRequired(t *testing.T) {
	addr := startNode(t, withPassword("s3cret"))
	ctx := context.Background()
	c := rawClient(t, addr)
	for _, cmd := range [][]any{{"get", "k"}, {"set", "k", "v"}, {"ping"}, {"info"}, {"cluster", "info"}, {"dbsize"}, {"dht.barrier", "b", "1", "1000"}} {
		wantErr(t, c.Do(ctx, cmd...).Err(), errNoAuth)
	}
	wantErr(t, c.Do(ctx, "hello").Err(), errHelloAuth)
	wantErr(t, c.Do(ctx, "hello", "2").Err(), errHelloAuth)
	wantErr(t, c.Do(ctx, "auth", "wrong").Err(), errWrongPass)
	wantErr(t, c.Do(ctx, "auth", "bob", "s3cret").Err(), errWrongPass)
	wantErr(t, c.Do(ctx, "auth", "a", "b", "c").Err(), "ERR syntax error")
	wantErr(t, c.Do(ctx, "hello", "2", "auth", "default", "wrong").Err(), errWrongPass)
	wantErr(t, c.Do(ctx, "get", "k").Err(), errNoAuth)
	if err := c.Do(ctx, "auth", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET = %q, %v", v, err)
	}
	// A failed AUTH afterwards leaves the connection authenticated, as in Redis.
	wantErr(t, c.Do(ctx, "auth", "wrong").Err(), errWrongPass)
	if err := c.Get(ctx, "k").Err(); err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx, "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "acl_access_denied_auth:4\r\n") {
		t.Fatalf("INFO stats does not count the 4 failed attempts:\n%s", info)
	}

	h := rawClient(t, addr)
	wantErr(t, h.Do(ctx, "hello", "2", "auth").Err(), "ERR Syntax error in HELLO option 'auth'")
	if err := h.Do(ctx, "hello", "2", "auth", "default", "s3cret", "setname", "me").Err(); err != nil {
		t.Fatal(err)
	}
	if name, err := h.Do(ctx, "client", "getname").Text(); err != nil || name != "me" {
		t.Fatalf("CLIENT GETNAME = %q, %v", name, err)
	}
	if v, err := h.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET after HELLO AUTH = %q, %v", v, err)
	}

	// go-redis with the password: HELLO 3 is refused (NOPROTO), then AUTH.
	g := redis.NewClient(&redis.Options{Addr: addr, Password: "s3cret"})
	defer g.Close()
	if v, err := g.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("go-redis with the password: GET = %q, %v", v, err)
	}
	q := rawClient(t, addr)
	if err := q.Do(ctx, "quit").Err(); err != nil {
		t.Fatalf("QUIT before AUTH: %v", err)
	}
}

func TestNoPassword(t *testing.T) {
	addr := startNode(t, nil)
	ctx := context.Background()
	c := rawClient(t, addr)
	wantErr(t, c.Do(ctx, "auth", "x").Err(), errNoPass)
	wantErr(t, c.Do(ctx, "auth", "bob", "x").Err(), errWrongPass)
	for _, cmd := range [][]any{{"auth", "default", "x"}, {"hello", "2", "auth", "default", "x"}, {"get", "k"}} {
		if err := c.Do(ctx, cmd...).Err(); err != nil && err != redis.Nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
}

func TestPeerCommandsNeedTheHandshake(t *testing.T) {
	cfg, err := config.Local(2, freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.ClusterSecret = "cluster-secret"
	s := runServer(t, cfg)
	addr := s.Addr()
	ctx := context.Background()
	c := rawClient(t, addr)
	for _, cmd := range [][]any{{"dht.ping", "n2", "x"}, {"dht.keycount"}} {
		err := c.Do(ctx, cmd...).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "NOPERM ") {
			t.Fatalf("%v from a client: %v, want NOPERM", cmd, err)
		}
	}
	// DHT.RAFT is refused and the connection closed.
	if err := c.Do(ctx, "dht.raft", "n2", "x").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM ") {
		t.Fatalf("DHT.RAFT from a client: %v, want NOPERM", err)
	}

	// A wrong proof, a proof without a nonce, and a replayed proof are refused.
	p := rawClient(t, addr)
	wantErr(t, p.Do(ctx, "dht.authpeer", "n2", "00").Err(), "ERR DHT.AUTHPEER: ask for a nonce first (DHT.AUTHPEER <node>)")
	nonce, err := p.Do(ctx, "dht.authpeer", "n2").Text()
	if err != nil {
		t.Fatal(err)
	}
	wrong := peerProof([]byte("another secret"), "n2", "n1", nonce)
	wantErr(t, p.Do(ctx, "dht.authpeer", "n2", wrong).Err(), "WRONGSECRET DHT.AUTHPEER n2: wrong cluster secret")
	wantErr(t, p.Do(ctx, "dht.keycount").Err(), "NOPERM 'dht.keycount' is a command between the nodes of a cluster; a connection becomes a node's with DHT.AUTHPEER")

	// A good proof opens the connection to the peer commands...
	nonce, err = p.Do(ctx, "dht.authpeer", "n2").Text()
	if err != nil {
		t.Fatal(err)
	}
	proof := peerProof([]byte("cluster-secret"), "n2", "n1", nonce)
	if err := p.Do(ctx, "dht.authpeer", "n2", proof).Err(); err != nil {
		t.Fatal(err)
	}
	if err := p.Do(ctx, "dht.keycount").Err(); err != nil {
		t.Fatalf("DHT.KEYCOUNT after the handshake: %v", err)
	}
	// ... and a captured proof is worth nothing on another connection, whether it
	// asked for a nonce or not.
	r := rawClient(t, addr)
	wantErr(t, r.Do(ctx, "dht.authpeer", "n2", proof).Err(), "ERR DHT.AUTHPEER: ask for a nonce first (DHT.AUTHPEER <node>)")
	if err := r.Do(ctx, "dht.authpeer", "n2").Err(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, r.Do(ctx, "dht.authpeer", "n2", proof).Err(), "WRONGSECRET DHT.AUTHPEER n2: wrong cluster secret")
	if err := r.Do(ctx, "dht.keycount").Err(); err == nil {
		t.Fatal("a replayed proof opened DHT.KEYCOUNT")
	}
	// A node cannot be this node, nor one outside the config.
	for _, name := range []string{"n1", "n9"} {
		if err := r.Do(ctx, "dht.authpeer", name).Err(); err == nil {
			t.Fatalf("DHT.AUTHPEER %s gave a nonce", name)
		}
	}
}

// freePort returns a loopback port, and the next one, that were free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		next, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1)))
		ln.Close()
		if err == nil {
			next.Close()
			return port
		}
	}
	t.Fatal("no two consecutive free ports")
	return 0
}

func TestRefusalLogIsRateLimited(t *testing.T) {
	var r refusalLog
	t0 := time.Now()
	if !r.due("n2", t0) || r.due("n2", t0.Add(time.Second)) || !r.due("n3", t0.Add(time.Second)) || !r.due("n2", t0.Add(refusalLogEvery)) {
		t.Fatal("a refusal is logged once per peer per refusalLogEvery")
	}
}
