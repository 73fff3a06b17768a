package main

import (
	"context"
	"strings"
	"testing"
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
