package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/dhtkv/dht/internal/buildinfo"
	"github.com/dhtkv/dht/internal/config"
)

// Results is everything a run measured; it is written as results.json.
type Results struct {
	// RunID identifies the run; every client of the run has the same one.
	RunID string `json:"run_id"`
	// Started is when the run started.
	Started time.Time `json:"started"`
	// Software describes the bench binary.
	Software Software `json:"software"`
	// Host describes the machine this process ran on.
	Host Host `json:"host"`
	// Setup is how the run was set up.
	Setup Setup `json:"setup"`
	// Sweep is the swept parameter, nil if the run did not sweep.
	Sweep *Sweep `json:"sweep,omitempty"`
	// Steps holds one result per swept value, or one for a run without a sweep.
	Steps []StepResult `json:"steps"`
}

// Software describes the bench binary.
type Software struct {
	// Version is dht's version.
	Version string `json:"version"`
	// Go is the Go version it was built with.
	Go string `json:"go"`
}

// Host describes the machine this process ran on.
type Host struct {
	// Hostname is the machine's host name.
	Hostname string `json:"hostname"`
	// OS and Arch are runtime.GOOS and runtime.GOARCH.
	OS   string `json:"os"`
	Arch string `json:"arch"`
	// NumCPU is the number of logical CPUs.
	NumCPU int `json:"num_cpu"`
	// GOMAXPROCS is the number of CPUs the bench's Go runtime used.
	GOMAXPROCS int `json:"gomaxprocs"`
}

// ThisHost returns the facts of this machine and binary.
func ThisHost() (Host, Software) {
	name, err := os.Hostname()
	if err != nil {
		name = "unknown"
	}
	return Host{Hostname: name, OS: runtime.GOOS, Arch: runtime.GOARCH, NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)},
		Software{Version: buildinfo.Version(), Go: runtime.Version()}
}

// Setup is how a run was set up.
type Setup struct {
	// Mode is "local" (dht bench --local), "config" (--config) or "target" (--target).
	Mode string `json:"mode"`
	// Targets are the seed addresses of this process's clients.
	Targets []string `json:"targets"`
	// ConfigDigest is the cluster config's digest, if there is a config.
	ConfigDigest string `json:"config_digest,omitempty"`
	// Nodes are the cluster's nodes, if there is a config (--local or --config).
	Nodes []config.Node `json:"nodes,omitempty"`
	// Clients is the number of clients this process ran.
	Clients int `json:"clients"`
	// BarrierCount is the number of clients of the whole run.
	BarrierCount int `json:"barrier_count"`
	// Barrier is the barrier mode.
	Barrier BarrierMode `json:"barrier"`
	// BarrierTimeout bounds the wait for the cluster and the other clients.
	BarrierTimeout config.Duration `json:"barrier_timeout"`
	// OpTimeout bounds one request.
	OpTimeout config.Duration `json:"op_timeout"`
	// KeyPrefix comes before every key number.
	KeyPrefix string `json:"key_prefix"`
	// Verify says whether the correctness check ran.
	Verify bool `json:"verify"`
	// Workload is the workload (before a sweep changes it).
	Workload config.Workload `json:"workload"`
}

// StepResult is the result of one workload: one sweep value, or the whole run.
type StepResult struct {
	// Value is the swept parameter's value (0 without a sweep).
	Value int64 `json:"value,omitempty"`
	// Workload is the workload the step ran.
	Workload config.Workload `json:"workload"`
	// KeyPrefix is the prefix of the step's keys.
	KeyPrefix string `json:"key_prefix"`
	// Total merges the clients.
	Total Report `json:"total"`
	// Clients holds each client's own report.
	Clients []Report `json:"clients"`
}

// Report is what one client, or all clients together, measured.
type Report struct {
	// Client is the client's id, or -1 for the merged report.
	Client int `json:"client"`
	// Start is when the workload started, End when its last request ended.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// WallSeconds is End - Start.
	WallSeconds float64 `json:"wall_seconds"`
	// Requests is the number of requests that got a reply or an error.
	Requests int64 `json:"requests"`
	// OK and Failed split Requests.
	OK     int64 `json:"ok"`
	Failed int64 `json:"failed"`
	// OpsPerSec is Requests / WallSeconds; OKPerSec is OK / WallSeconds.
	OpsPerSec float64 `json:"ops_per_sec"`
	OKPerSec  float64 `json:"ok_per_sec"`
	// Failures counts the failed requests by reason.
	Failures map[string]int64 `json:"failures"`
	// Retries and Redirects are the client library's extra attempts.
	Retries   int64 `json:"retries"`
	Redirects int64 `json:"redirects"`
	// Ops reports each operation type of the mix.
	Ops map[string]OpReport `json:"ops"`
	// FailedLatency is the latency of the failed requests.
	FailedLatency Latency `json:"failed_latency"`
	// Series is the time series, one sample a second.
	Series []Sample `json:"series"`
	// Verify is the correctness check's result, if it ran.
	Verify *VerifyResult `json:"verify,omitempty"`
	// Interrupted is true when the run was cancelled before it finished.
	Interrupted bool `json:"interrupted,omitempty"`
}

// OpReport reports one operation type.
type OpReport struct {
	// Requests, OK and Failed count the type's requests as in Report.
	Requests int64 `json:"requests"`
	OK       int64 `json:"ok"`
	Failed   int64 `json:"failed"`
	// Failures counts the failed requests by reason.
	Failures map[string]int64 `json:"failures"`
	// OKPerSec is OK divided by the report's wall-clock time.
	OKPerSec float64 `json:"ok_per_sec"`
	// Hit and Miss count the gets that found or did not find their key.
	Hit  int64 `json:"hit,omitempty"`
	Miss int64 `json:"miss,omitempty"`
	// Won and Lost count the put-if-absents that wrote, or found the key present.
	Won  int64 `json:"won,omitempty"`
	Lost int64 `json:"lost,omitempty"`
	// Latency is the latency of the successful requests.
	Latency Latency `json:"latency"`
	// Share is this type's fraction of all requests.
	Share float64 `json:"share"`
}

// Latency summarises a latency histogram; all values are in microseconds.
type Latency struct {
	// Count is the number of recorded requests.
	Count int64 `json:"count"`
	// Min, Mean and Max are the smallest, mean and largest latency.
	Min  int64   `json:"min_us"`
	Mean float64 `json:"mean_us"`
	Max  int64   `json:"max_us"`
	// P50 ... P999 are the 50th, 90th, 99th and 99.9th percentiles.
	P50  int64 `json:"p50_us"`
	P90  int64 `json:"p90_us"`
	P99  int64 `json:"p99_us"`
	P999 int64 `json:"p99_9_us"`
	// Histogram lists the non-empty buckets as [from_us, to_us, count],
	// merged to two significant digits.
	Histogram [][3]int64 `json:"histogram"`
}

// LatencyOf summarises h.
func LatencyOf(h *hdrhistogram.Histogram) Latency {
	l := Latency{Count: h.TotalCount(), Histogram: [][3]int64{}}
	if l.Count == 0 {
		return l
	}
	l.Min, l.Mean, l.Max = h.Min(), h.Mean(), h.Max()
	l.P50, l.P90, l.P99, l.P999 = h.ValueAtQuantile(50), h.ValueAtQuantile(90), h.ValueAtQuantile(99), h.ValueAtQuantile(99.9)
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		// Buckets are kept to two significant digits: JSON stays small and
		// charts lose nothing visible.
		lo, hi := coarseBucket(b.From)
		if n := len(l.Histogram); n > 0 && l.Histogram[n-1][0] == lo {
			l.Histogram[n-1][1] = max(l.Histogram[n-1][1], min(b.To, hi))
			l.Histogram[n-1][2] += b.Count
			continue
		}
		l.Histogram = append(l.Histogram, [3]int64{lo, min(b.To, hi), b.Count})
	}
	return l
}

// coarseBucket returns the range of values that agree with v in their first
// two significant digits: [lo, hi].
func coarseBucket(v int64) (lo, hi int64) {
	if v < 100 {
		return v, v
	}
	unit := int64(1)
	for v/unit >= 100 {
		unit *= 10
	}
	lo = v / unit * unit
	return lo, lo + unit - 1
}

func reasonMap(f [NumReasons]int64) map[string]int64 {
	m := make(map[string]int64, NumReasons)
	for r, v := range f {
		m[Reason(r).String()] = v
	}
	return m
}

// NewReport builds the report of stats measured from start to end. Operation
// types are reported if the mix has them or they were issued.
func NewReport(client int, mix config.Mix, st *Stats, start, end time.Time, series []Sample) Report {
	count, ok, failed := st.Totals()
	r := Report{
		Client: client, Start: start, End: end, WallSeconds: end.Sub(start).Seconds(),
		Requests: count, OK: ok, Failed: failed,
		Failures: reasonMap(st.FailedByReason()), Retries: st.Retries, Redirects: st.Redirects,
		Ops: map[string]OpReport{}, FailedLatency: LatencyOf(st.FailedLatency), Series: series,
	}
	if r.Series == nil {
		r.Series = []Sample{}
	}
	if r.WallSeconds > 0 {
		r.OpsPerSec = float64(count) / r.WallSeconds
		r.OKPerSec = float64(ok) / r.WallSeconds
	}
	for op := range NumOps {
		o := &st.Ops[op]
		if o.Count == 0 && *mixField(&mix, op) == 0 {
			continue
		}
		or := OpReport{Requests: o.Count, OK: o.OK, Failed: o.FailedTotal(), Failures: reasonMap(o.Failed), Latency: LatencyOf(o.Latency)}
		if r.WallSeconds > 0 {
			or.OKPerSec = float64(o.OK) / r.WallSeconds
		}
		if count > 0 {
			or.Share = float64(o.Count) / float64(count)
		}
		switch op {
		case OpGet:
			or.Hit, or.Miss = o.Hit, o.Miss
		case OpPutIfAbsent:
			or.Won, or.Lost = o.Hit, o.Miss
		}
		r.Ops[op.String()] = or
	}
	return r
}

// WriteJSON writes res as dir/results.json, creating dir.
func WriteJSON(dir string, res *Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	path := filepath.Join(dir, "results.json")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	return nil
}

// ReadJSON reads a results.json written by WriteJSON.
func ReadJSON(path string) (*Results, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading results: %w", err)
	}
	var res Results
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("results %s: %w", path, err)
	}
	return &res, nil
}
