package bench

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/config"
)

// memPlan is a plan of n clients sharing one memStore and barrier.
func memPlan(n int, w config.Workload, sweep *Sweep) Plan {
	store := newMemStore()
	store.barrier = newMemBarrier()
	var clients []ClientTarget
	for i := range n {
		clients = append(clients, ClientTarget{ID: i, Addrs: []string{"mem"}})
	}
	return Plan{
		RunID: "testrun",
		Setup: Setup{Mode: "test", Targets: []string{"mem"}, Clients: n, BarrierCount: n, Barrier: BarrierDHT,
			BarrierTimeout: config.Duration{Duration: time.Second}, KeyPrefix: "key:", Verify: true, Workload: w},
		Clients:        clients,
		Sweep:          sweep,
		SampleInterval: 20 * time.Millisecond,
		NewStore:       func(ClientTarget, config.Workload) Store { return store },
	}
}

func TestRunMergesClients(t *testing.T) {
	w := smallWorkload()
	w.Requests = 300
	p := memPlan(3, w, nil)
	var mu sync.Mutex
	var last int64
	p.Progress = func(step int, done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if total != 3*4*300 || done < last {
			t.Errorf("progress %d of %d after %d", done, total, last)
		}
		last = done
	}
	res, err := Run(t.Context(), p, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 1 || len(res.Steps[0].Clients) != 3 {
		t.Fatalf("steps %d, clients %d", len(res.Steps), len(res.Steps[0].Clients))
	}
	tot := res.Steps[0].Total
	if tot.Requests != 3*4*300 || tot.OK != tot.Requests || tot.Client != -1 {
		t.Errorf("total: %d requests, %d ok, client %d", tot.Requests, tot.OK, tot.Client)
	}
	if tot.OKPerSec <= 0 || tot.WallSeconds <= 0 || tot.Verify == nil || !tot.Verify.OK() {
		t.Errorf("total = %+v", tot)
	}
	if g := tot.Ops["get"]; g.Hit+g.Miss != g.OK || g.Share < 0.5 || g.Share > 0.7 {
		t.Errorf("get: %+v", g)
	}
	if pia := tot.Ops["put_if_absent"]; pia.Won+pia.Lost != pia.OK || pia.Won > 1000 {
		t.Errorf("put_if_absent: won %d lost %d ok %d (1000 keys)", pia.Won, pia.Lost, pia.OK)
	}
	if _, ok := tot.Ops["multi_put"]; ok {
		t.Error("multi_put reported though not in the mix")
	}

	dir := t.TempDir()
	if err := WriteJSON(dir, res); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Steps[0].Total.Requests != tot.Requests || back.Steps[0].Total.Ops["get"].Latency.P99 != tot.Ops["get"].Latency.P99 {
		t.Error("results.json does not round-trip")
	}
	if err := WriteCharts(dir, res); err != nil {
		t.Fatal(err)
	}
	checkPNGs(t, dir, "throughput.png", "latency.png")

	var out bytes.Buffer
	if err := WriteSummary(&out, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"run testrun", "put_if_absent", "verify: ok", "failures: none", "client"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunSweep(t *testing.T) {
	w := smallWorkload()
	w.Requests, w.Threads = 50, 2
	w.Mix = config.Mix{Get: 60, Put: 20, MultiPut: 20}
	sweep, err := ParseSweep("key_range=10,100,1000")
	if err != nil {
		t.Fatal(err)
	}
	p := memPlan(2, w, sweep)
	p.NewStore = func(ClientTarget, config.Workload) Store {
		s := newMemStore()
		s.fail = func(r Request) error {
			if r.Op == OpMultiPut {
				return replyError("CROSSSLOT x")
			}
			return nil
		}
		return s
	}
	res, err := Run(t.Context(), p, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 3 {
		t.Fatalf("%d steps, want 3", len(res.Steps))
	}
	for i, st := range res.Steps {
		if st.Value != sweep.Values[i] || st.Workload.KeyMax != sweep.Values[i] || st.KeyPrefix != StepKeyPrefix("key:", true, i) {
			t.Errorf("step %d: value %d, keys %s[0,%d)", i, st.Value, st.KeyPrefix, st.Workload.KeyMax)
		}
		if st.Total.Failures["crossslot"] == 0 || st.Total.Failures["crossslot"] != st.Total.Failed {
			t.Errorf("step %d: failures %v of %d", i, st.Total.Failures, st.Total.Failed)
		}
	}
	dir := t.TempDir()
	if err := WriteCharts(dir, res); err != nil {
		t.Fatal(err)
	}
	checkPNGs(t, dir, "throughput.png", "latency.png", "sweep-throughput.png", "sweep-latency.png", "sweep-failures.png")
	var out bytes.Buffer
	if err := WriteSummary(&out, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "key_range") || !strings.Contains(out.String(), "crossslot") {
		t.Errorf("sweep summary:\n%s", out.String())
	}
	cmp := filepath.Join(dir, "cmp")
	if err := os.Mkdir(cmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteCompareCharts(cmp, []Labeled{{"a", res}, {"b", res}}); err != nil {
		t.Fatal(err)
	}
	checkPNGs(t, cmp, "sweep-throughput.png", "sweep-latency.png", "sweep-failures.png")
}

func checkPNGs(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
			t.Errorf("%s is %v", n, b)
		}
	}
}

func TestFormatting(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := FormatRate(in); got != want {
			t.Errorf("FormatRate(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{250: "250µs", 1500: "1.50ms", 2_500_000: "2.50s"} {
		if got := FormatLatency(in); got != want {
			t.Errorf("FormatLatency(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestMedianRunAndComparison(t *testing.T) {
	mk := func(rates ...float64) *Results {
		r := &Results{RunID: "r", Sweep: &Sweep{Param: "key_range", Values: []int64{10, 100}}}
		for i, v := range rates {
			r.Steps = append(r.Steps, StepResult{Value: r.Sweep.Values[i], Total: Report{OKPerSec: v}})
		}
		return r
	}
	med, err := MedianRun([]*Results{mk(100, 5), mk(300, 7), mk(200, 6)})
	if err != nil {
		t.Fatal(err)
	}
	if med.Steps[0].Total.OKPerSec != 200 || med.Steps[1].Total.OKPerSec != 6 {
		t.Errorf("medians = %v, %v; want 200, 6", med.Steps[0].Total.OKPerSec, med.Steps[1].Total.OKPerSec)
	}
	if _, err := MedianRun([]*Results{mk(1, 2), mk(1)}); err == nil {
		t.Error("MedianRun accepted runs with different steps")
	}
	var out bytes.Buffer
	if err := WriteComparison(&out, []Labeled{{"dht", mk(200, 90)}, {"redis", mk(100, 100)}}, 1); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"key_range", "dht/redis", "2.00", "0.90"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, out.String())
		}
	}
}

func TestChartsWithoutSuccess(t *testing.T) {
	w := smallWorkload()
	w.Requests, w.Threads = 20, 1
	p := memPlan(1, w, nil)
	p.NewStore = func(ClientTarget, config.Workload) Store {
		s := newMemStore()
		s.fail = func(Request) error { return replyError("CLUSTERDOWN The cluster is down") }
		return s
	}
	res, err := Run(t.Context(), p, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if f := res.Steps[0].Total.Failures["clusterdown"]; f != 20 {
		t.Errorf("clusterdown failures = %d, want 20", f)
	}
	dir := t.TempDir()
	if err := WriteCharts(dir, res); err != nil {
		t.Fatal(err)
	}
	checkPNGs(t, dir, "throughput.png")
	if _, err := os.Stat(filepath.Join(dir, "latency.png")); err == nil {
		t.Error("latency.png drawn without a successful request")
	}
}
