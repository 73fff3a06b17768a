package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/bench"
	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/local"
)

// freeBasePort returns a port p such that p, p+1, ..., p+n-1 are free on 127.0.0.1.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if base+n > 55000 {
			continue
		}
		ok := true
		for i := 1; i < n && ok; i++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// runDHT runs the dht command with args and returns its stdout.
func runDHT(ctx context.Context, args ...string) (string, error) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func readResults(t *testing.T, dir string) *bench.Results {
	t.Helper()
	res, err := bench.ReadJSON(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

// startCluster starts an n-node local cluster on free ports, one node process each,
// and returns its config.
func startCluster(t *testing.T, n int) (config.Config, *local.Processes) {
	t.Helper()
	cfg, err := config.Local(n, freeBasePort(t, n))
	if err != nil {
		t.Fatal(err)
	}
	c, err := local.StartProcesses(cfg, local.ProcOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("stopping the local cluster: %v", err)
		}
	})
	if err := c.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	return cfg, c
}

func TestBenchLocalNumbersAddUp(t *testing.T) {
	dir := t.TempDir()
	port := freeBasePort(t, 3)
	out, err := runDHT(t.Context(), "bench", "--local", "3", "--base-port", strconv.Itoa(port),
		"--requests", "300", "--threads", "2", "--out", dir, "--quiet")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"get", "put_if_absent", "verify: ok", "results: " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	res := readResults(t, dir)
	if len(res.Steps) != 1 {
		t.Fatalf("%d steps", len(res.Steps))
	}
	tot := res.Steps[0].Total
	const want = 3 * 2 * 300 // clients x threads x requests
	if tot.Requests != want || tot.OK+tot.Failed != want {
		t.Errorf("requests %d (ok %d + failed %d), want %d", tot.Requests, tot.OK, tot.Failed, want)
	}
	if tot.Failed != 0 {
		t.Errorf("failures on a healthy cluster: %v", tot.Failures)
	}
	for name, pct := range map[string]float64{"get": 60, "put_if_absent": 40} {
		if got := tot.Ops[name].Share * 100; math.Abs(got-pct) > 6 {
			t.Errorf("%s is %.1f%% of requests, want %.0f%% ± 6", name, got, pct)
		}
	}
	pia := tot.Ops["put_if_absent"]
	if pia.Won+pia.Lost != pia.OK || pia.Won == 0 || pia.Won > 1000 {
		t.Errorf("put_if_absent: won %d, lost %d, ok %d", pia.Won, pia.Lost, pia.OK)
	}
	if g := tot.Ops["get"]; g.Hit+g.Miss != g.OK || g.Latency.Count != g.OK || g.Latency.P99 < g.Latency.P50 {
		t.Errorf("get: %+v", g)
	}
	if v := tot.Verify; v == nil || !v.OK() || v.Won != int(pia.Won) {
		t.Errorf("verify = %+v, want ok with %d won keys", v, pia.Won)
	}
	var sum int64
	for _, c := range res.Steps[0].Clients {
		sum += c.Requests
	}
	if len(res.Steps[0].Clients) != 3 || sum != want {
		t.Errorf("%d client reports adding up to %d", len(res.Steps[0].Clients), sum)
	}
	if res.Host.NumCPU == 0 || res.Software.Go == "" || res.Setup.Mode != "local" || len(res.Setup.Nodes) != 3 {
		t.Errorf("host %+v, software %+v, setup %+v", res.Host, res.Software, res.Setup)
	}
	checkPNG(t, filepath.Join(dir, "throughput.png"))
	checkPNG(t, filepath.Join(dir, "latency.png"))
}

func TestBenchLocalMultiPut(t *testing.T) {
	dir := t.TempDir()
	port := freeBasePort(t, 3)
	out, err := runDHT(t.Context(), "bench", "--local", "3", "--base-port", strconv.Itoa(port),
		"--requests", "200", "--threads", "2", "--mix", "get=60,put=20,multi_put=20", "--out", dir, "--quiet", "--no-charts")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	tot := readResults(t, dir).Steps[0].Total
	mp := tot.Ops["multi_put"]
	if tot.Requests != 3*2*200 || mp.Requests == 0 {
		t.Fatalf("requests %d, multi_put %d", tot.Requests, mp.Requests)
	}
	// Three random keys almost never share a slot, nor a node: the MSETs are
	// transactions across nodes, every one acknowledged and found whole.
	if tot.Failed != 0 || mp.OK != mp.Requests || tot.Verify == nil || !tot.Verify.OK() {
		t.Errorf("failed %d (%v), multi_put %d (ok %d), verify %+v", tot.Failed, tot.Failures, mp.Requests, mp.OK, tot.Verify)
	}
	if !strings.Contains(out, "verify: ok") {
		t.Errorf("summary does not show the check:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "throughput.png")); err == nil {
		t.Error("--no-charts wrote charts")
	}
}

func TestBenchTargetDHT(t *testing.T) {
	_, cl := startCluster(t, 3)
	dir := t.TempDir()
	out, err := runDHT(t.Context(), "bench", "--target", strings.Join(cl.Addrs(), ","), "--clients", "2",
		"--requests", "100", "--threads", "2", "--pipeline", "4", "--out", dir, "--quiet")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	res := readResults(t, dir)
	tot := res.Steps[0].Total
	if tot.Requests != 2*2*100 || tot.Failed != 0 || !tot.Verify.OK() {
		t.Errorf("requests %d, failed %d, verify %+v", tot.Requests, tot.Failed, tot.Verify)
	}
	if res.Setup.Mode != "target" || res.Setup.BarrierCount != 2 || res.Setup.Workload.Pipeline != 4 {
		t.Errorf("setup = %+v", res.Setup)
	}
}

func TestBenchSweep(t *testing.T) {
	dir := t.TempDir()
	port := freeBasePort(t, 2)
	out, err := runDHT(t.Context(), "bench", "--local", "2", "--base-port", strconv.Itoa(port),
		"--requests", "100", "--threads", "2", "--sweep", "key_range=10,100", "--out", dir, "--quiet")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	res := readResults(t, dir)
	if len(res.Steps) != 2 || res.Steps[0].Workload.KeyMax != 10 || res.Steps[1].Workload.KeyMax != 100 {
		t.Fatalf("steps = %d", len(res.Steps))
	}
	for _, st := range res.Steps {
		if st.Total.Requests != 2*2*100 || !st.Total.Verify.OK() {
			t.Errorf("step %d: %d requests, verify %+v", st.Value, st.Total.Requests, st.Total.Verify)
		}
	}
	// With 10 keys, at most 10 put-if-absents can win.
	if won := res.Steps[0].Total.Ops["put_if_absent"].Won; won > 10 {
		t.Errorf("key_range=10 won %d keys", won)
	}
	for _, n := range []string{"sweep-throughput.png", "sweep-latency.png", "sweep-failures.png", "throughput.png"} {
		checkPNG(t, filepath.Join(dir, n))
	}
}

// benchHost runs one host's bench client of a multi-client run against cluster addrs.
func benchHost(ctx context.Context, dir string, extra ...string) (*bench.Results, string, error) {
	args := append([]string{"bench", "--requests", "50", "--threads", "2", "--out", dir, "--quiet", "--no-charts"}, extra...)
	out, err := runDHT(ctx, args...)
	if err != nil {
		return nil, out, err
	}
	res, rerr := bench.ReadJSON(filepath.Join(dir, "results.json"))
	return res, out, rerr
}

func TestBenchBarrierWaitsForLateClient(t *testing.T) {
	cfg, _ := startCluster(t, 2)
	path := filepath.Join(t.TempDir(), "cluster.json")
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]*bench.Results, 2)
	for i, node := range []string{"n1", "n2"} {
		wg.Go(func() {
			if i == 1 {
				time.Sleep(700 * time.Millisecond) // the late host
			}
			res, out, err := benchHost(t.Context(), t.TempDir(), "--config", path, "--node", node)
			if err != nil {
				t.Errorf("host %s: %v\n%s", node, err, out)
				return
			}
			results[i] = res
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if results[0].RunID != results[1].RunID {
		t.Errorf("hosts derived different run ids: %s, %s", results[0].RunID, results[1].RunID)
	}
	s0, s1 := results[0].Steps[0].Total.Start, results[1].Steps[0].Total.Start
	if d := s1.Sub(s0).Abs(); d > 250*time.Millisecond {
		t.Errorf("the hosts started %s apart", d)
	}
	for i, r := range results {
		if c := r.Steps[0].Clients; len(c) != 1 || c[0].Client != i || c[0].Requests != 100 {
			t.Errorf("host %d: clients %+v", i, c)
		}
	}
}

func TestBenchBarrierFailsWithoutMissingClient(t *testing.T) {
	_, cl := startCluster(t, 2)
	start := time.Now()
	_, out, err := benchHost(t.Context(), t.TempDir(), "--target", strings.Join(cl.Addrs(), ","),
		"--barrier-count", "2", "--barrier-timeout", "500ms")
	if err == nil || !strings.Contains(err.Error(), "1 of 2 clients arrived") {
		t.Fatalf("err = %v, want the barrier's timeout\n%s", err, out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the missing client was noticed after %s", d)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--local", "3", "--target", "127.0.0.1:1"},
		{"--node", "n1"},
		{"--mix", "get=50"},
		{"--mix", "get=50,del=50"},
		{"--sweep", "keys=1,2"},
		{"--barrier", "zk"},
		{"--local", "2", "--clients", "5"},
		{"--target", "127.0.0.1:1", "--clients", "3", "--barrier-count", "2"},
	} {
		if _, err := runDHT(context.Background(), append([]string{"bench"}, args...)...); err == nil {
			t.Errorf("dht bench %v succeeded", args)
		}
	}
}

// TestBenchFlagErrorsNameTheFlag checks that a workload flag's bad value is
// reported as the flag the user typed, not as the config field it sets.
func TestBenchFlagErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--mix", "get=50"}, []string{"--mix get=50: get+put_if_absent+put+multi_put = 50, must be 100"}},
		{[]string{"--mix", "get=50,del=50"}, []string{`--mix get=50,del=50: unknown operation "del"`}},
		{[]string{"--mix", "get=x"}, []string{`--mix get=x: get="x": percent must be`}},
		{[]string{"--threads", "0", "--mix", "get=100"}, []string{"--threads 0: must be between 1 and 10000"}},
		{[]string{"--pipeline", "0", "--mix", "put=90"}, []string{"--pipeline 0: must be between", "--mix put=90: get+put_if_absent+put+multi_put = 90"}},
	} {
		_, err := runDHT(context.Background(), append([]string{"bench"}, tc.args...)...)
		if err == nil {
			t.Errorf("dht bench %v succeeded", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("dht bench %v: %v\nwant it to say %q", tc.args, err, w)
			}
		}
		if strings.Contains(err.Error(), "workload.") {
			t.Errorf("dht bench %v: %v\nnames a config field, not the flag", tc.args, err)
		}
	}
}

func TestDefaultRunIDIsShared(t *testing.T) {
	w := config.Default().Workload
	a := defaultRunID("config:x", bench.Setup{BarrierCount: 3, KeyPrefix: "key:", Workload: w}, nil)
	b := defaultRunID("config:x", bench.Setup{BarrierCount: 3, KeyPrefix: "key:", Workload: w}, nil)
	w.Threads++
	c := defaultRunID("config:x", bench.Setup{BarrierCount: 3, KeyPrefix: "key:", Workload: w}, nil)
	if a != b || a == c || len(a) != 12 {
		t.Errorf("run ids %s, %s, %s", a, b, c)
	}
}

func TestBenchCompare(t *testing.T) {
	dir := t.TempDir()
	port := freeBasePort(t, 2)
	var runs []string
	for i := range 2 {
		d := filepath.Join(dir, strconv.Itoa(i))
		if out, err := runDHT(t.Context(), "bench", "--local", "2", "--base-port", strconv.Itoa(port), "--requests", "50",
			"--threads", "1", "--sweep", "threads=1,2", "--out", d, "--quiet", "--no-charts"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		runs = append(runs, d)
	}
	charts := filepath.Join(dir, "charts")
	out, err := runDHT(t.Context(), "bench", "compare", "a="+strings.Join(runs, ","), "b="+runs[0], "--out", charts)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "threads") || !strings.Contains(out, "a/b") {
		t.Errorf("comparison:\n%s", out)
	}
	checkPNG(t, filepath.Join(charts, "sweep-throughput.png"))
}

func TestBenchHelpSaysWhereLocalNodesRun(t *testing.T) {
	out, err := runDHT(context.Background(), "bench", "--help")
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(out), " ")
	if strings.Contains(flat, "inside this process") || !strings.Contains(flat, "With --local the cluster runs on this machine, one dht serve process per node") {
		t.Errorf("dht bench --help does not say that --local runs a dht serve process per node:\n%s", out)
	}
}

// TestBenchLocalWithPassword: bench --local --password starts a cluster that asks
// for the password, and its clients (the barrier's too) give it.
func TestBenchLocalWithPassword(t *testing.T) {
	dir := t.TempDir()
	port := freeBasePort(t, 2)
	out, err := runDHT(t.Context(), "bench", "--local", "2", "--base-port", strconv.Itoa(port), "--password", "s3cret",
		"--requests", "50", "--threads", "2", "--out", dir, "--quiet", "--no-charts")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	tot := readResults(t, dir).Steps[0].Total
	if tot.Requests != 2*2*50 || tot.Failed != 0 || !tot.Verify.OK() {
		t.Fatalf("requests %d, failed %d, verify %+v", tot.Requests, tot.Failed, tot.Verify)
	}
}
