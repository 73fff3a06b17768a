package server

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/tlsconf"
)

// startTLSNode runs a one-node cluster serving TLS with a fresh CA and returns its
// address and the CA's files.
func startTLSNode(t *testing.T, edit func(*config.Config)) (string, tlsconf.Files) {
	t.Helper()
	files, err := tlsconf.GenerateLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr := startNode(t, func(c *config.Config) {
		c.TLS = config.TLS{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA}
		if edit != nil {
			edit(c)
		}
	})
	return addr, files
}

// tlsClient is a go-redis client over TLS, trusting files.CA and showing files.Cert
// if set, that authenticates with password if set.
func tlsClient(t *testing.T, addr string, files tlsconf.Files, password string) *redis.Client {
	t.Helper()
	tc, err := tlsconf.Client(files)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tlsconf.ForAddr(tc, addr), Password: password, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTLSRoundTrip(t *testing.T) {
	addr, files := startTLSNode(t, withPassword("pw"))
	ctx := context.Background()
	wantErr(t, tlsClient(t, addr, tlsconf.Files{CA: files.CA}, "").Get(ctx, "k").Err(), errNoAuth)
	c := tlsClient(t, addr, tlsconf.Files{CA: files.CA}, "pw")
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// A pipeline bigger than one read, with a command that waits (DBSIZE) among them.
	pipe := c.Pipeline()
	big := strings.Repeat("x", 100<<10)
	for i := range 200 {
		pipe.Set(ctx, "k", big[:i*400], 0)
	}
	n := pipe.DBSize(ctx)
	get := pipe.Get(ctx, "k")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if n.Val() != 1 || len(get.Val()) != 199*400 {
		t.Fatalf("DBSIZE %d, GET %d bytes", n.Val(), len(get.Val()))
	}
}

func TestTLSRefusesPlainTCPAndOtherCAs(t *testing.T) {
	addr, files := startTLSNode(t, withPassword("pw"))
	ctx := context.Background()
	plain := redis.NewClient(&redis.Options{Addr: addr, Password: "pw", Protocol: 2, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("a plain-TCP client was served by a TLS node")
	}
	other, err := tlsconf.GenerateLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	err = tlsClient(t, addr, tlsconf.Files{CA: other.CA}, "pw").Ping(ctx).Err()
	var unknown *tls.CertificateVerificationError
	if err == nil || !errors.As(err, &unknown) {
		t.Fatalf("a client trusting another CA: err = %v, want an unknown authority", err)
	}
	if err := tlsClient(t, addr, tlsconf.Files{CA: files.CA}, "").Ping(ctx).Err(); err == nil || err.Error() != errNoAuth {
		t.Fatalf("the right CA: PING = %v, want %s", err, errNoAuth)
	}
}

func TestTLSClientCertificates(t *testing.T) {
	addr, files := startTLSNode(t, func(c *config.Config) { c.TLS.ClientAuth = tlsconf.ClientAuthRequire })
	ctx := context.Background()
	if err := tlsClient(t, addr, tlsconf.Files{CA: files.CA}, "").Ping(ctx).Err(); err == nil {
		t.Fatal("a client without a certificate was served with client_auth require")
	}
	other, err := tlsconf.GenerateLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := tlsClient(t, addr, tlsconf.Files{CA: files.CA, Cert: other.Cert, Key: other.Key}, "").Ping(ctx).Err(); err == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
	if err := tlsClient(t, addr, files, "").Ping(ctx).Err(); err != nil {
		t.Fatalf("a client certificate from the cluster's CA: %v", err)
	}
}

// TestTLSLimitsAndQuit: a TLS client that breaks a protocol limit is answered and
// disconnected, as a plain one; QUIT closes after its reply.
func TestTLSLimitsAndQuit(t *testing.T) {
	addr, files := startTLSNode(t, func(c *config.Config) { c.Limits.MaxArgs = 3 })
	tc, err := tlsconf.Client(tlsconf.Files{CA: files.CA})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ in, want string }{
		{"PING\r\n*4\r\n$3\r\nSET\r\n", "+PONG\r\n-ERR Protocol error: "},
		{"PING\r\nQUIT\r\nPING\r\n", "+PONG\r\n+OK\r\n"},
	} {
		conn, err := tls.Dial("tcp", addr, tlsconf.ForAddr(tc, addr))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(tt.in)); err != nil {
			t.Fatal(err)
		}
		var got []byte
		b := make([]byte, 512)
		for {
			n, err := conn.Read(b)
			got = append(got, b[:n]...)
			if err != nil {
				break
			}
		}
		conn.Close()
		if !strings.HasPrefix(string(got), tt.want) {
			t.Errorf("%q: got %q, want it to start with %q (and the connection closed)", tt.in, got, tt.want)
		}
	}
}

// TestTLSIdleAndMaxClients: the idle cutoff closes an idle TLS client, and a TLS
// client past limits.max_clients is told so, as plain ones are.
func TestTLSIdleAndMaxClients(t *testing.T) {
	addr, files := startTLSNode(t, func(c *config.Config) {
		c.Limits.IdleTimeout.Duration = 200 * time.Millisecond
		c.Limits.MaxClients = 1
	})
	tc, err := tlsconf.Client(tlsconf.Files{CA: files.CA})
	if err != nil {
		t.Fatal(err)
	}
	first, err := tls.Dial("tcp", addr, tlsconf.ForAddr(tc, addr))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_ = first.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	if n, err := first.Read(b); err != nil || string(b[:n]) != "+PONG\r\n" {
		t.Fatalf("PING: %q, %v", b[:n], err)
	}
	second, err := tls.Dial("tcp", addr, tlsconf.ForAddr(tc, addr))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_ = second.SetDeadline(time.Now().Add(5 * time.Second))
	if n, _ := second.Read(b); string(b[:n]) != "-ERR max number of clients reached\r\n" {
		t.Fatalf("a client past max_clients read %q", b[:n])
	}
	// Idle past the cutoff: the node closes the connection.
	if n, err := first.Read(b); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("an idle TLS client was not closed: read %q, %v", b[:n], err)
	}
}
