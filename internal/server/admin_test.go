package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/dhtkv/dht/internal/config"
)

// adminStatus runs a one-node server with the admin server on ":0" and returns
// the status of GET path, and the admin server's address.
func adminStatus(t *testing.T, pprof bool, path string) (int, net.Addr) {
	t.Helper()
	cfg, err := config.Local(1, freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Admin.PProf = pprof
	s, err := New(Options{Config: cfg, Self: "n1", AdminListen: ":0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	resp, err := http.Get(fmt.Sprintf("http://%s%s", s.AdminAddr(), path))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, s.AdminAddr()
}

func TestAdminOnLoopbackAndPProfOffByDefault(t *testing.T) {
	code, addr := adminStatus(t, false, "/debug/pprof/")
	if code != http.StatusNotFound {
		t.Fatalf("/debug/pprof/ without admin.pprof: %d, want 404", code)
	}
	if ip := addr.(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Fatalf("admin server on %v for \":0\", want loopback", ip)
	}
	if code, _ := adminStatus(t, true, "/debug/pprof/"); code != http.StatusOK {
		t.Fatalf("/debug/pprof/ with admin.pprof: %d, want 200", code)
	}
	if code, _ := adminStatus(t, false, "/metrics"); code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
}
