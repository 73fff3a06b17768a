package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLocalRefusesNoNodes(t *testing.T) {
	for _, args := range [][]string{
		{"local", "--nodes", "0"},
		{"local", "--nodes", "-1"},
		{"bench", "--local", "0"},
	} {
		out, err := runDHT(context.Background(), args...)
		if err == nil || !strings.Contains(err.Error(), args[1]+" "+args[2]+": a cluster needs at least one node") {
			t.Errorf("dht %v: err = %v, want it refused naming %s\n%s", args, err, args[1], out)
		}
	}
}

// TestBenchLocalOnBusyPort: dht bench --local fails at once, naming the port,
// when another program listens on one of its nodes' ports.
func TestBenchLocalOnBusyPort(t *testing.T) {
	base := freeBasePort(t, 2)
	busy, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+1)))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	out, err := runDHT(ctx, "bench", "--local", "2", "--base-port", strconv.Itoa(base), "--quiet", "--no-charts", "--out", t.TempDir())
	if want := fmt.Sprintf("port %d is in use", base+1); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to say %q\n%s", err, want, out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("dht bench took %s to fail", d)
	}
}
