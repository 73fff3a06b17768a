package server

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/resp"
)

func TestDeniedByProtectedMode(t *testing.T) {
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	loop6 := &net.TCPAddr{IP: net.IPv6loopback, Port: 1}
	far := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 1}
	for _, tc := range []struct {
		protected, password bool
		remote              net.Addr
		want                bool
	}{
		{true, false, loop, false},
		{true, false, loop6, false},
		{true, false, far, true},
		{true, true, far, false},
		{false, false, far, false},
	} {
		if got := deniedByProtectedMode(tc.protected, tc.password, tc.remote); got != tc.want {
			t.Errorf("protected %v, password %v, from %v: denied %v, want %v", tc.protected, tc.password, tc.remote, got, tc.want)
		}
	}
}

// nonLoopback returns an IPv4 address of this machine that is not loopback, or
// skips the test.
func nonLoopback(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address")
	return nil
}

// TestProtectedModeRefusesOtherHosts: a node without a password, listening on every
// address, serves a client on loopback but answers DENIED to one that comes from
// another address, unless that client authenticates as a peer from the peer's host.
func TestProtectedModeRefusesOtherHosts(t *testing.T) {
	ip := nonLoopback(t)
	port := freePort(t)
	cfg, err := config.Local(2, port)
	if err != nil {
		t.Fatal(err)
	}
	// n2 lives on this machine's other address: a connection from there may be n2's.
	cfg.Nodes[1].Addr = net.JoinHostPort(ip.String(), strconv.Itoa(port+1))
	s, err := New(Options{Config: cfg, Self: "n1", Listen: net.JoinHostPort("0.0.0.0", strconv.Itoa(port))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for !s.serving.Load() {
		if time.Now().After(deadline) {
			t.Fatal("not serving")
		}
		time.Sleep(5 * time.Millisecond)
	}
	local := rawClient(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err := local.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING from loopback: %v", err)
	}
	farAddr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	want := "-" + errDenied + "\r\n"
	if got := exchange(t, farAddr, "PING\r\nGET k\r\n", len(want)+1); got != want {
		t.Fatalf("PING from %s = %q, want DENIED and the connection closed", ip, got)
	}
	// go-redis sends commands of its own on connecting, which protected mode
	// refuses: speak RESP by hand.
	peer, err := net.Dial("tcp", farAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	r := bufio.NewReader(peer)
	do := func(args ...string) redcon.RESP {
		t.Helper()
		req := redcon.AppendArray(nil, len(args))
		for _, a := range args {
			req = redcon.AppendBulkString(req, a)
		}
		if _, err := peer.Write(req); err != nil {
			t.Fatal(err)
		}
		reply, err := resp.ReadReply(r, nil)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		_, v := redcon.ReadNextRESP(reply)
		return v
	}
	nonce := do("DHT.AUTHPEER", "n2")
	if nonce.Type != redcon.Bulk {
		t.Fatalf("DHT.AUTHPEER n2 from n2's host = %q", nonce.String())
	}
	if v := do("DHT.AUTHPEER", "n2", string(peerProof(nil, "n2", "n1", nonce.String()))); v.Type != redcon.String {
		t.Fatalf("the handshake of n2 from n2's host: %q", v.String())
	}
	if v := do("DHT.KEYCOUNT"); v.Type != redcon.Integer {
		t.Fatalf("DHT.KEYCOUNT after the handshake: %q", v.String())
	}
	// Data commands pass too (the cluster is not up: n2 never was).
	if v := do("GET", "k"); !strings.HasPrefix(v.String(), "CLUSTERDOWN") {
		t.Fatalf("GET after the handshake = %q, want CLUSTERDOWN (not DENIED)", v.String())
	}
}

func TestFromPeerHost(t *testing.T) {
	ctx := context.Background()
	at := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5}
	if !fromPeerHost(ctx, "127.0.0.1", at) || !fromPeerHost(ctx, "localhost", at) {
		t.Fatal("127.0.0.1 is not from 127.0.0.1 or localhost")
	}
	if fromPeerHost(ctx, "192.0.2.9", at) {
		t.Fatal("127.0.0.1 is from 192.0.2.9")
	}
}
