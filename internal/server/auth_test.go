package server

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
)

func withPassword(pw string) func(*config.Config) {
	return func(c *config.Config) { c.Auth.Password = pw }
}

// rawClient is a go-redis client that does not authenticate on its own.
func rawClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, PoolSize: 1})
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
