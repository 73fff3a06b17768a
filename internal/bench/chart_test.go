package bench

import (
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotter"
)

// sample is a merged-style sample of ops requests over the interval ending at t.
func sample(t, seconds float64, ops int64) Sample {
	s := Sample{T: t, Seconds: seconds, Ops: ops}
	s.finish()
	return s
}

func okRate(s Sample) float64 { return s.OKPerSec }

// TestSeriesXYPartialLastInterval: a last interval of a tenth of a second is drawn
// together with the one before it, at their joint rate over their joint length,
// not as a stub at its own (much lower) rate; a last interval of more than half
// the others keeps its own.
func TestSeriesXYPartialLastInterval(t *testing.T) {
	stub := []Sample{sample(1, 1, 1000), sample(2, 1, 1000), sample(2.1, 0.1, 20)}
	got := seriesXY(stub, okRate)
	want := plotter.XYs{{X: 0, Y: 1000}, {X: 1, Y: 1000}, {X: 1, Y: 1020 / 1.1}, {X: 2.1, Y: 1020 / 1.1}}
	if !sameXYs(got, want) {
		t.Errorf("with a 0.1 s stub: %v\nwant %v", got, want)
	}

	long := []Sample{sample(1, 1, 1000), sample(1.6, 0.6, 300)}
	got = seriesXY(long, okRate)
	want = plotter.XYs{{X: 0, Y: 1000}, {X: 1, Y: 1000}, {X: 1, Y: 500}, {X: 1.6, Y: 500}}
	if !sameXYs(got, want) {
		t.Errorf("with a 0.6 s last interval: %v\nwant %v", got, want)
	}
	if stub[2].Ops != 20 || len(stub) != 3 {
		t.Errorf("seriesXY changed its argument: %+v", stub)
	}
}

// TestSeriesXYNeverGoesBack: merged intervals of clients that ended a little
// apart overlap; the steps are drawn one after the other all the same.
func TestSeriesXYNeverGoesBack(t *testing.T) {
	merged := MergeSeries(
		[]Sample{sample(1, 1, 500), sample(2.05, 1.05, 520)},
		[]Sample{sample(1.01, 1.01, 500), sample(2.01, 1, 500), sample(2.7, 0.69, 300)},
	)
	xys := seriesXY(merged, okRate)
	for i := 1; i < len(xys); i++ {
		if xys[i].X < xys[i-1].X {
			t.Fatalf("x goes back from %v to %v: %v", xys[i-1].X, xys[i].X, xys)
		}
	}
}

func sameXYs(a, b plotter.XYs) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i].X-b[i].X) > 1e-9 || math.Abs(a[i].Y-b[i].Y) > 1e-9 {
			return false
		}
	}
	return true
}

// latencyOf returns a latency whose requests took 1 ms to max ms.
func latencyOf(maxMS int64) Latency {
	l := Latency{Min: 1000, Max: maxMS * 1000, P50: 2000, P99: maxMS * 900, P999: maxMS * 1000}
	for ms := int64(1); ms <= maxMS; ms++ {
		n := int64(1000) >> min(ms, 10)
		l.Histogram = append(l.Histogram, [3]int64{ms*1000 - 999, ms * 1000, max(n, 1)})
		l.Count += max(n, 1)
	}
	return l
}

func chartResults(clients, inRun int) *Results {
	st := StepResult{Total: Report{Client: -1, Ops: map[string]OpReport{"get": {OK: 1, Latency: latencyOf(17)}},
		Series: []Sample{sample(1, 1, 1000), sample(2, 1, 1000)}}}
	for i := range clients {
		st.Clients = append(st.Clients, Report{Client: 2 + i, Series: st.Total.Series})
	}
	return &Results{RunID: "r", Setup: Setup{Mode: "config", Clients: clients, BarrierCount: inRun}, Steps: []StepResult{st}}
}

// TestLatencyChartFitsTheData: the y axis ends a little above the slowest request,
// not at the next power of ten and beyond.
func TestLatencyChartFitsTheData(t *testing.T) {
	p, err := LatencyChart(chartResults(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if p.Y.Max < 17 || p.Y.Max > 25 {
		t.Errorf("y axis ends at %v ms; the slowest request took 17 ms", p.Y.Max)
	}
}

// TestChartsSayWhoseRequests: a chart of one host's client of a multi-host run
// says so, instead of "all clients".
func TestChartsSayWhoseRequests(t *testing.T) {
	for _, tc := range []struct {
		clients, inRun int
		want           string
	}{
		{1, 5, "client 2 of the run's 5"},
		{2, 5, "2 of the run's 5 clients"},
		{3, 3, "all clients"},
	} {
		res := chartResults(tc.clients, tc.inRun)
		if got := whose(res, res.Steps[0]); got != tc.want {
			t.Errorf("%d clients here, %d in the run: %q, want %q", tc.clients, tc.inRun, got, tc.want)
		}
		p, err := LatencyChart(res)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want != "all clients" && !strings.HasSuffix(p.Title.Text, ", "+tc.want) {
			t.Errorf("latency chart title %q does not say %q", p.Title.Text, tc.want)
		}
	}
}

// TestChartsHaveMargins: nothing is drawn in the outermost pixels of a chart,
// the title's top included.
func TestChartsHaveMargins(t *testing.T) {
	dir := t.TempDir()
	if err := WriteCharts(dir, chartResults(3, 3)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"throughput.png", "latency.png"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		const edge = 8 // pixels: 3 mm are 11 at 96 dpi
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				inside := x >= b.Min.X+edge && x < b.Max.X-edge && y >= b.Min.Y+edge && y < b.Max.Y-edge
				if !inside && color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y < 250 {
					t.Fatalf("%s: pixel (%d, %d) in the margin is drawn on", name, x, y)
				}
			}
		}
	}
}
