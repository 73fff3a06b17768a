package tlsconf

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// handshake runs a TLS handshake between a server and a client configuration over
// a loopback connection and returns each side's error.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.HandshakeContext(ctx)
		if err == nil {
			// TLS 1.3 clients learn of a refused certificate on their first read.
			_, err = s.Write([]byte("ok"))
		}
		done <- err
		a.Close()
	}()
	c := tls.Client(b, ForAddr(client, "127.0.0.1:7001"))
	clientErr = c.HandshakeContext(ctx)
	if clientErr == nil {
		_, clientErr = c.Read(make([]byte, 2))
	}
	b.Close()
	return <-done, clientErr
}

func TestGenerateLocalAndClientAuth(t *testing.T) {
	ours, err := GenerateLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := GenerateLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	client := func(f Files) *tls.Config {
		c, err := Client(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	server := func(auth string) *tls.Config {
		c, err := Server(ours, auth)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		auth   string
		client Files
		ok     bool
	}{
		{"no client certificate asked", ClientAuthNone, Files{CA: ours.CA}, true},
		{"a client trusting another CA", ClientAuthNone, Files{CA: theirs.CA}, false},
		{"request, none shown", ClientAuthRequest, Files{CA: ours.CA}, true},
		{"request, another CA's shown", ClientAuthRequest, Files{CA: ours.CA, Cert: theirs.Cert, Key: theirs.Key}, false},
		{"require, none shown", ClientAuthRequire, Files{CA: ours.CA}, false},
		{"require, ours shown", ClientAuthRequire, ours, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serr, cerr := handshake(t, server(tc.auth), client(tc.client))
			if ok := serr == nil && cerr == nil; ok != tc.ok {
				t.Fatalf("server: %v, client: %v; want success %v", serr, cerr, tc.ok)
			}
		})
	}
	if _, err := Server(ours, "always"); err == nil {
		t.Error("client auth \"always\" was accepted")
	}
	if _, err := Client(Files{CA: ours.Key}); err == nil {
		t.Error("a CA file without a certificate was accepted")
	}
}
