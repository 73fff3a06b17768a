package bench

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart size, and the blank margins around a chart and inside its plot area.
const (
	chartWidth  = 10 * vg.Inch
	chartHeight = 5.5 * vg.Inch
	// chartMargin is the blank border of the image around the chart.
	chartMargin = 3 * vg.Millimeter
	// titlePadding separates the title from the plot below it.
	titlePadding = 2 * vg.Millimeter
	// legendPadding separates the legend from the plot area's borders.
	legendPadding = 2 * vg.Millimeter
)

// Labeled is a run's results with the label charts give it (e.g. "dht" or "redis").
type Labeled struct {
	// Label names the run in legends and tables.
	Label string
	// Results are the run's results.
	Results *Results
}

// WriteCharts writes res's charts into dir: throughput.png and latency.png, and
// for a sweep sweep-throughput.png, sweep-latency.png and sweep-failures.png.
// Latency charts are left out when no request succeeded.
func WriteCharts(dir string, res *Results) error {
	charts := map[string]func() (*plot.Plot, error){
		"throughput.png": func() (*plot.Plot, error) { return ThroughputChart(res) },
		"latency.png":    func() (*plot.Plot, error) { return LatencyChart(res) },
	}
	if res.Sweep != nil {
		runs := []Labeled{{Label: res.Setup.Mode, Results: res}}
		for name, f := range SweepCharts(runs) {
			charts[name] = f
		}
	}
	return saveCharts(dir, charts)
}

// SweepCharts returns the sweep charts of runs, which must sweep the same
// parameter, keyed by file name.
func SweepCharts(runs []Labeled) map[string]func() (*plot.Plot, error) {
	return map[string]func() (*plot.Plot, error){
		"sweep-throughput.png": func() (*plot.Plot, error) { return SweepThroughputChart(runs) },
		"sweep-latency.png":    func() (*plot.Plot, error) { return SweepLatencyChart(runs) },
		"sweep-failures.png":   func() (*plot.Plot, error) { return SweepFailuresChart(runs) },
	}
}

// errNoData is returned by a chart with nothing to draw; saveCharts skips it.
var errNoData = errors.New("no successful requests to chart")

// saveCharts renders charts into dir.
func saveCharts(dir string, charts map[string]func() (*plot.Plot, error)) error {
	var errs []error
	for name, f := range charts {
		p, err := f()
		if errors.Is(err, errNoData) {
			continue
		}
		if err == nil {
			err = savePNG(p, filepath.Join(dir, name))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("chart %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// savePNG draws p with a blank margin around it, and its legend kept off the
// plot area's borders, into a PNG file at path.
func savePNG(p *plot.Plot, path string) error {
	p.Legend.XOffs, p.Legend.YOffs = -legendPadding, -legendPadding
	if p.Legend.Left {
		p.Legend.XOffs = legendPadding
	}
	if !p.Legend.Top {
		p.Legend.YOffs = legendPadding
	}
	img := vgimg.PngCanvas{Canvas: vgimg.New(chartWidth, chartHeight)}
	p.Draw(draw.Crop(draw.New(img), chartMargin, -chartMargin, chartMargin, -chartMargin))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = titlePadding
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

// lineStyle is how a line looks: its colour and point shape (indices into
// plotutil's palettes) and whether it is dashed.
type lineStyle struct {
	color, shape int
	dashed       bool
	// noPoints draws the line alone, without a glyph at each point.
	noPoints bool
}

// styled returns the style with colour and shape i.
func styled(i int, dashed bool) lineStyle { return lineStyle{color: i, shape: i, dashed: dashed} }

// addLine adds a line (with points when it has few) in style st.
func addLine(p *plot.Plot, label string, xys plotter.XYs, st lineStyle) error {
	if len(xys) == 0 {
		return nil
	}
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("line %s: %w", label, err)
	}
	l.Color = plotutil.Color(st.color)
	l.Width = vg.Points(1.5)
	if st.dashed {
		l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	}
	pts.Color = l.Color
	pts.Shape = plotutil.Shape(st.shape)
	if len(xys) > 30 || st.noPoints {
		pts.Radius = 0
	}
	p.Add(l, pts)
	p.Legend.Add(label, l, pts)
	return nil
}

// headroom raises the y axis' top so that the legend, drawn in the top right
// corner, covers no data: by a quarter on a linear axis, sixfold on a log axis.
func headroom(p *plot.Plot) {
	if _, log := p.Y.Scale.(plot.LogScale); log {
		p.Y.Max *= 6
		return
	}
	p.Y.Max += (p.Y.Max - p.Y.Min) / 4
}

// logTicks marks a log axis at 1, 2 and 5 times each power of ten.
func logTicks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for dec := math.Pow10(int(math.Floor(math.Log10(lo)))); dec <= hi; dec *= 10 {
		for m := 1; m < 10; m++ {
			v := dec * float64(m)
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// logY puts the y axis on a log scale.
func logY(p *plot.Plot) {
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.TickerFunc(logTicks)
}

// ThroughputChart plots successful requests per second over time: the whole
// run's, each client's (when there are several and no sweep), and the failed
// requests per second if any failed.
func ThroughputChart(res *Results) (*plot.Plot, error) {
	p := newPlot("Throughput over time, run "+res.RunID, "time since the barrier (s)", "requests / s")
	style := 0
	for _, st := range res.Steps {
		label := whose(res, st) + ", ok"
		if res.Sweep != nil {
			label = fmt.Sprintf("%s=%d, ok", res.Sweep.Param, st.Value)
		}
		if err := addLine(p, label, seriesXY(st.Total.Series, func(s Sample) float64 { return s.OKPerSec }), stepStyle(style, false)); err != nil {
			return nil, err
		}
		style++
		if st.Total.Failed > 0 {
			if err := addLine(p, label[:len(label)-2]+"failed", seriesXY(st.Total.Series, func(s Sample) float64 { return float64(s.Failed) / s.Seconds }), stepStyle(style, true)); err != nil {
				return nil, err
			}
			style++
		}
		if res.Sweep == nil && len(st.Clients) > 1 {
			for _, c := range st.Clients {
				if err := addLine(p, fmt.Sprintf("client %d, ok", c.Client), seriesXY(c.Series, func(s Sample) float64 { return s.OKPerSec }), stepStyle(style, true)); err != nil {
					return nil, err
				}
				style++
			}
		}
	}
	p.X.Min, p.Y.Min = 0, 0
	headroom(p)
	return p, nil
}

// whose says whose requests a step's totals count: all clients of the run, or
// only those of this process when the run had clients on other hosts too.
func whose(res *Results, st StepResult) string {
	s := res.Setup
	switch {
	case s.Clients >= s.BarrierCount:
		return "all clients"
	case len(st.Clients) == 1:
		return fmt.Sprintf("client %d of the run's %d", st.Clients[0].Client, s.BarrierCount)
	default:
		return fmt.Sprintf("%d of the run's %d clients", s.Clients, s.BarrierCount)
	}
}

// seriesXY draws a time series as steps: each sample is a horizontal segment
// over its interval. A last interval shorter than half the first (the few
// requests of the last threads to finish) is drawn together with the one before
// it, as their rate over both: drawn on its own, a stub of a tenth of a second
// would show as a cliff.
func seriesXY(series []Sample, y func(Sample) float64) plotter.XYs {
	if n := len(series); n > 1 && series[n-1].Seconds < series[0].Seconds/2 {
		last, prev := series[n-1], series[n-2]
		prev.T = last.T
		prev.Seconds += last.Seconds
		prev.Ops += last.Ops
		prev.Failed += last.Failed
		prev.LatencyUS += last.LatencyUS
		prev.finish()
		series = append(slices.Clip(series[:n-2]), prev)
	}
	xys := make(plotter.XYs, 0, 2*len(series))
	end := 0.0
	for _, s := range series {
		if s.Seconds > 0 {
			// Merged intervals of several clients may overlap a little: each
			// starts where the one drawn before it ended.
			v := y(s)
			xys = append(xys, plotter.XY{X: max(s.T-s.Seconds, end), Y: v}, plotter.XY{X: s.T, Y: v})
			end = s.T
		}
	}
	return xys
}

// stepStyle is the style of the i-th time series.
func stepStyle(i int, dashed bool) lineStyle {
	return lineStyle{color: i, shape: i, dashed: dashed, noPoints: true}
}

// Percentile points of the latency chart's x axis: x = -log10(1 - q), so 90%,
// 99% and 99.9% are evenly spaced.
func ninesX(q float64) float64 { return -math.Log10(1 - q) }

// Spectrum returns the latency distribution of l as points (ninesX(q), latency
// in ms) at each histogram bucket's upper end: the latency percentile curve.
// The last bucket's quantile is 1; it is drawn at the resolution limit of the
// count, ninesX(1 - 1/count).
func Spectrum(l Latency) plotter.XYs {
	if l.Count == 0 {
		return nil
	}
	limit := math.Log10(float64(l.Count))
	var xys plotter.XYs
	var cum int64
	for _, b := range l.Histogram {
		cum += b[2]
		x := limit
		if q := float64(cum) / float64(l.Count); q < 1 {
			x = min(ninesX(q), limit)
		}
		y := float64(max(b[1], 1)) / 1000
		if n := len(xys); n > 0 && xys[n-1].X == x {
			xys[n-1].Y = y
			continue
		}
		xys = append(xys, plotter.XY{X: x, Y: y})
	}
	return xys
}

// ninesTicks labels the latency chart's x axis with percentiles.
func ninesTicks(_, hi float64) []plot.Tick {
	ticks := []plot.Tick{{Value: 0, Label: "0%"}, {Value: ninesX(0.5), Label: "50%"}}
	labels := []string{"90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"}
	for i, l := range labels {
		if v := float64(i + 1); v <= math.Ceil(hi) {
			ticks = append(ticks, plot.Tick{Value: v, Label: l})
		}
	}
	return ticks
}

// LatencyChart plots the latency percentile curve of each operation type of
// the last step: how many requests took at most how long.
func LatencyChart(res *Results) (*plot.Plot, error) {
	if len(res.Steps) == 0 {
		return nil, errNoData
	}
	st := res.Steps[len(res.Steps)-1]
	title := "Latency by percentile, run " + res.RunID
	if res.Sweep != nil {
		title += fmt.Sprintf(" (%s=%d)", res.Sweep.Param, st.Value)
	}
	if w := whose(res, st); w != "all clients" {
		title += ", " + w
	}
	p := newPlot(title, "percentile", "latency (ms, log scale)")
	p.X.Tick.Marker = plot.TickerFunc(ninesTicks)
	logY(p)
	i := 0
	for _, name := range opNamesIn(st.Total) {
		l := st.Total.Ops[name].Latency
		if l.Count == 0 {
			continue
		}
		label := fmt.Sprintf("%s (p50 %s, p99 %s, p99.9 %s, max %s)", name,
			FormatLatency(float64(l.P50)), FormatLatency(float64(l.P99)), FormatLatency(float64(l.P999)), FormatLatency(float64(l.Max)))
		if err := addLine(p, label, Spectrum(l), styled(i, false)); err != nil {
			return nil, err
		}
		i++
	}
	if i == 0 {
		return nil, errNoData
	}
	// The curve rises to the right, so the bottom right corner is free for the
	// legend and the y axis can end just above the slowest request.
	p.X.Min = 0
	p.Y.Max *= 1.2
	p.Legend.Top = false
	return p, nil
}

// sweepAxis sets up the x axis of a sweep chart: log scale for key ranges and
// for values spanning two orders of magnitude.
func sweepAxis(p *plot.Plot, runs []Labeled) {
	var vals []int64
	for _, r := range runs {
		vals = append(vals, r.Results.Sweep.Values...)
	}
	if len(vals) == 0 {
		return
	}
	lo, hi := slices.Min(vals), slices.Max(vals)
	if runs[0].Results.Sweep.Param == "key_range" || hi >= 100*lo {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.TickerFunc(logTicks)
	}
}

// checkSweeps checks that runs are sweeps of one parameter.
func checkSweeps(runs []Labeled) (string, error) {
	if len(runs) == 0 {
		return "", errors.New("no runs")
	}
	var param string
	for _, r := range runs {
		if r.Results.Sweep == nil {
			return "", fmt.Errorf("run %s (%s) is not a sweep", r.Results.RunID, r.Label)
		}
		if param != "" && r.Results.Sweep.Param != param {
			return "", fmt.Errorf("runs sweep different parameters: %s and %s", param, r.Results.Sweep.Param)
		}
		param = r.Results.Sweep.Param
	}
	return param, nil
}

func sweepXY(st []StepResult, y func(StepResult) (float64, bool)) plotter.XYs {
	var xys plotter.XYs
	for _, s := range st {
		if v, ok := y(s); ok {
			xys = append(xys, plotter.XY{X: float64(s.Value), Y: v})
		}
	}
	return xys
}

// SweepThroughputChart plots successful requests per second against the swept parameter.
func SweepThroughputChart(runs []Labeled) (*plot.Plot, error) {
	param, err := checkSweeps(runs)
	if err != nil {
		return nil, err
	}
	p := newPlot("Throughput against "+param, param, "successful requests / s")
	sweepAxis(p, runs)
	for i, r := range runs {
		xys := sweepXY(r.Results.Steps, func(s StepResult) (float64, bool) { return s.Total.OKPerSec, true })
		if err := addLine(p, r.Label, xys, styled(i, false)); err != nil {
			return nil, err
		}
	}
	p.Y.Min = 0
	headroom(p)
	return p, nil
}

// SweepLatencyChart plots each operation type's p50 (solid) and p99 (dashed)
// latency against the swept parameter.
func SweepLatencyChart(runs []Labeled) (*plot.Plot, error) {
	param, err := checkSweeps(runs)
	if err != nil {
		return nil, err
	}
	p := newPlot("Latency against "+param, param, "latency (ms, log scale)")
	sweepAxis(p, runs)
	logY(p)
	style, lines := 0, 0
	for ri, r := range runs {
		for op := range NumOps {
			name := op.String()
			pick := func(q func(Latency) int64) func(StepResult) (float64, bool) {
				return func(s StepResult) (float64, bool) {
					o, ok := s.Total.Ops[name]
					if !ok || o.Latency.Count == 0 {
						return 0, false
					}
					return float64(max(q(o.Latency), 1)) / 1000, true
				}
			}
			p50 := sweepXY(r.Results.Steps, pick(func(l Latency) int64 { return l.P50 }))
			if len(p50) == 0 {
				continue
			}
			p99 := sweepXY(r.Results.Steps, pick(func(l Latency) int64 { return l.P99 }))
			prefix := name
			if len(runs) > 1 {
				prefix = r.Label + " " + name
			}
			// One colour per run (or per operation for a single run), one
			// point shape per operation; p99 is dashed.
			st := lineStyle{color: ri, shape: int(op)}
			if len(runs) == 1 {
				st.color = style
			}
			if err := addLine(p, prefix+" p50", p50, st); err != nil {
				return nil, err
			}
			st.dashed = true
			if err := addLine(p, prefix+" p99", p99, st); err != nil {
				return nil, err
			}
			style++
			lines++
		}
	}
	if lines == 0 {
		return nil, errNoData
	}
	headroom(p)
	return p, nil
}

// SweepFailuresChart plots failed requests (in total and by reason) against
// the swept parameter.
func SweepFailuresChart(runs []Labeled) (*plot.Plot, error) {
	param, err := checkSweeps(runs)
	if err != nil {
		return nil, err
	}
	p := newPlot("Failed requests against "+param, param, "failed requests")
	sweepAxis(p, runs)
	style := 0
	for _, r := range runs {
		prefix := ""
		if len(runs) > 1 {
			prefix = r.Label + " "
		}
		total := sweepXY(r.Results.Steps, func(s StepResult) (float64, bool) { return float64(s.Total.Failed), true })
		if err := addLine(p, prefix+"all failures", total, styled(style, false)); err != nil {
			return nil, err
		}
		style++
		for reason := range NumReasons {
			xys := sweepXY(r.Results.Steps, func(s StepResult) (float64, bool) { return float64(s.Total.Failures[reason.String()]), true })
			if !slices.ContainsFunc(xys, func(xy plotter.XY) bool { return xy.Y > 0 }) {
				continue
			}
			if err := addLine(p, prefix+reason.String(), xys, styled(style, true)); err != nil {
				return nil, err
			}
			style++
		}
	}
	p.Y.Min, p.Y.Max = 0, max(p.Y.Max, 1)
	headroom(p)
	return p, nil
}

// WriteCompareCharts writes the sweep charts of several labelled runs, drawn
// on the same axes, into dir.
func WriteCompareCharts(dir string, runs []Labeled) error {
	if _, err := checkSweeps(runs); err != nil {
		return err
	}
	return saveCharts(dir, SweepCharts(runs))
}
