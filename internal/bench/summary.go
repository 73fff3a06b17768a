package bench

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// FormatLatency writes a latency in microseconds with a unit that keeps it short.
func FormatLatency(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.2fms", us/1000)
	}
	return fmt.Sprintf("%.2fs", us/1_000_000)
}

// FormatRate writes a per-second rate with thousands separators.
func FormatRate(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// latencyCell formats a latency of l for a table: "-" if l is empty.
func latencyCell(l Latency, us int64) string {
	if l.Count == 0 {
		return "-"
	}
	return FormatLatency(float64(us))
}

// opNamesIn returns the operation names of a report in Op order.
func opNamesIn(r Report) []string {
	var names []string
	for op := range NumOps {
		if _, ok := r.Ops[op.String()]; ok {
			names = append(names, op.String())
		}
	}
	return names
}

// failureText lists the non-zero failure counts, or "none".
func failureText(f map[string]int64) string {
	var parts []string
	for r := range NumReasons {
		if v := f[r.String()]; v > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// WriteSummary writes the human-readable summary of res.
func WriteSummary(w io.Writer, res *Results) error {
	ew := &errWriter{w: w}
	s := res.Setup
	ew.printf("dht bench run %s (%s, %s): %d client(s) here, %d in the run\n", res.RunID, s.Mode, strings.Join(s.Targets, ","), s.Clients, s.BarrierCount)
	if res.Sweep != nil {
		writeSweepSummary(ew, res)
	} else {
		for _, st := range res.Steps {
			writeStepSummary(ew, st)
		}
	}
	return ew.err
}

func workloadLine(st StepResult) string {
	w := st.Workload
	run := fmt.Sprintf("%d requests/thread", w.Requests)
	if w.Duration.Duration > 0 {
		run = "for " + w.Duration.String()
	}
	line := fmt.Sprintf("workload: %d threads/client, %s, keys %s[%d,%d), %s, values %d B, pipeline %d",
		w.Threads, run, st.KeyPrefix, w.KeyMin, w.KeyMax, FormatMix(w.Mix), w.ValueSize, w.Pipeline)
	if w.Mix.MultiPut > 0 {
		line += fmt.Sprintf(", %d keys/multi_put", w.MultiPutNum)
	}
	return line
}

func writeStepSummary(ew *errWriter, st StepResult) {
	t := st.Total
	ew.printf("%s\n", workloadLine(st))
	ew.printf("wall %.3fs  requests %d  ok %d  failed %d  throughput %s ops/s (ok %s/s)%s\n\n",
		t.WallSeconds, t.Requests, t.OK, t.Failed, FormatRate(t.OpsPerSec), FormatRate(t.OKPerSec), interrupted(t))
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	ew.tab(tw, "op\trequests\tok/s\tp50\tp90\tp99\tp99.9\tmax\tfailed\thit/won\tmiss/lost\t\n")
	for _, name := range opNamesIn(t) {
		o := t.Ops[name]
		l := o.Latency
		hits, misses := "-", "-"
		switch name {
		case OpGet.String():
			hits, misses = fmt.Sprint(o.Hit), fmt.Sprint(o.Miss)
		case OpPutIfAbsent.String():
			hits, misses = fmt.Sprint(o.Won), fmt.Sprint(o.Lost)
		}
		ew.tab(tw, fmt.Sprintf("%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", name, o.Requests, FormatRate(o.OKPerSec),
			latencyCell(l, l.P50), latencyCell(l, l.P90), latencyCell(l, l.P99), latencyCell(l, l.P999), latencyCell(l, l.Max),
			o.Failed, hits, misses))
	}
	ew.flush(tw)
	ew.printf("\nfailures: %s; retries %d, redirects %d\n", failureText(t.Failures), t.Retries, t.Redirects)
	if len(st.Clients) > 1 {
		ew.printf("\n")
		tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
		ew.tab(tw, "client\trequests\tok/s\tp50\tp99\tfailed\twall\t\n")
		for _, c := range st.Clients {
			all := mergedLatency(c)
			ew.tab(tw, fmt.Sprintf("%d\t%d\t%s\t%s\t%s\t%d\t%.3fs\t\n", c.Client, c.Requests, FormatRate(c.OKPerSec),
				latencyCell(all, all.P50), latencyCell(all, all.P99), c.Failed, c.WallSeconds))
		}
		ew.flush(tw)
	}
	ew.printf("%s\n\n", verifyText(t.Verify))
}

// mergedLatency returns the p50 and p99 over all operation types of r, taken
// from the operation with the most requests (an approximation for the client
// table; the per-op table is exact).
func mergedLatency(r Report) Latency {
	var best OpReport
	for _, name := range opNamesIn(r) {
		if o := r.Ops[name]; o.OK > best.OK {
			best = o
		}
	}
	return best.Latency
}

func interrupted(r Report) string {
	if r.Interrupted {
		return "  [interrupted]"
	}
	return ""
}

// verifyText describes a verify result in one line (plus its problems).
func verifyText(v *VerifyResult) string {
	if v == nil {
		return "verify: skipped"
	}
	if v.OK() {
		return fmt.Sprintf("verify: ok (%d keys read back, %d won by put-if-absent)", v.Keys, v.Won)
	}
	s := fmt.Sprintf("verify: FAILED: %d keys read back: %d missing, %d with the wrong value, %d won twice, %d multi-puts partly applied",
		v.Keys, v.Missing, v.WrongValue, v.DoubleWins, v.PartialMultiPuts)
	for _, p := range v.Problems {
		s += "\n  " + p
	}
	return s
}

func writeSweepSummary(ew *errWriter, res *Results) {
	if len(res.Steps) == 0 {
		return
	}
	first := res.Steps[0]
	ew.printf("sweep %s; %s\n\n", res.Sweep, workloadLine(first))
	var ops []string
	for _, st := range res.Steps {
		for _, n := range opNamesIn(st.Total) {
			if !slices.Contains(ops, n) {
				ops = append(ops, n)
			}
		}
	}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := res.Sweep.Param + "\trequests\tok/s\tfailed\t"
	for _, n := range ops {
		head += n + " p50\t" + n + " p99\t"
	}
	ew.tab(tw, head+"verify\t\n")
	for _, st := range res.Steps {
		t := st.Total
		row := fmt.Sprintf("%d\t%d\t%s\t%d\t", st.Value, t.Requests, FormatRate(t.OKPerSec), t.Failed)
		for _, n := range ops {
			l := t.Ops[n].Latency
			row += latencyCell(l, l.P50) + "\t" + latencyCell(l, l.P99) + "\t"
		}
		verdict := "skipped"
		if t.Verify != nil {
			verdict = "ok"
			if !t.Verify.OK() {
				verdict = "FAILED"
			}
		}
		ew.tab(tw, row+verdict+"\t\n")
	}
	ew.flush(tw)
	for _, st := range res.Steps {
		if f := failureText(st.Total.Failures); f != "none" {
			ew.printf("%s=%d failures: %s\n", res.Sweep.Param, st.Value, f)
		}
		if v := st.Total.Verify; v != nil && !v.OK() {
			ew.printf("%s=%d %s\n", res.Sweep.Param, st.Value, verifyText(v))
		}
	}
	ew.printf("\n")
}

// errWriter keeps the first write error, so formatting code can ignore them.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { _, _ = fmt.Fprintf(e, format, args...) }

func (e *errWriter) tab(tw *tabwriter.Writer, s string) { _, _ = io.WriteString(tw, s) }

func (e *errWriter) flush(tw *tabwriter.Writer) {
	if err := tw.Flush(); err != nil && e.err == nil {
		e.err = err
	}
}

// WriteComparison writes, for each step of runs (which must have as many
// steps), every run's successful requests per second and its ratio to the
// baseline run runs[base].
func WriteComparison(w io.Writer, runs []Labeled, base int) error {
	if len(runs) < 2 {
		return errors.New("compare needs at least two runs")
	}
	if base < 0 || base >= len(runs) {
		return fmt.Errorf("baseline %d: there are %d runs", base, len(runs))
	}
	steps := len(runs[0].Results.Steps)
	for _, r := range runs[1:] {
		if len(r.Results.Steps) != steps {
			return fmt.Errorf("%s has %d steps, %s %d", runs[0].Label, steps, r.Label, len(r.Results.Steps))
		}
	}
	param := "run"
	if sw := runs[0].Results.Sweep; sw != nil {
		param = sw.Param
	}
	ew := &errWriter{w: w}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := param + "\t"
	for _, r := range runs {
		head += r.Label + " ok/s\t"
	}
	for i, r := range runs {
		if i != base {
			head += r.Label + "/" + runs[base].Label + "\t"
		}
	}
	ew.tab(tw, head+"\n")
	for s := range steps {
		row := "-\t"
		if runs[0].Results.Sweep != nil {
			row = fmt.Sprintf("%d\t", runs[0].Results.Steps[s].Value)
		}
		for _, r := range runs {
			row += FormatRate(r.Results.Steps[s].Total.OKPerSec) + "\t"
		}
		baseRate := runs[base].Results.Steps[s].Total.OKPerSec
		for i, r := range runs {
			if i == base {
				continue
			}
			ratio := "-"
			if baseRate > 0 {
				ratio = fmt.Sprintf("%.2f", r.Results.Steps[s].Total.OKPerSec/baseRate)
			}
			row += ratio + "\t"
		}
		ew.tab(tw, row+"\n")
	}
	ew.flush(tw)
	return ew.err
}

// MedianRun combines repetitions of the same run (same steps) into one whose
// every step is the repetition with the median successful throughput at that
// step (the lower median for an even count), so one noisy repetition does not
// decide a comparison. The other fields come from the first repetition.
func MedianRun(reps []*Results) (*Results, error) {
	if len(reps) == 0 {
		return nil, errors.New("no results")
	}
	out := *reps[0]
	out.Steps = make([]StepResult, len(reps[0].Steps))
	for i := range out.Steps {
		var cands []StepResult
		for _, r := range reps {
			if len(r.Steps) != len(out.Steps) {
				return nil, fmt.Errorf("run %s has %d steps, run %s %d", r.RunID, len(r.Steps), reps[0].RunID, len(out.Steps))
			}
			cands = append(cands, r.Steps[i])
		}
		slices.SortStableFunc(cands, func(a, b StepResult) int { return cmp.Compare(a.Total.OKPerSec, b.Total.OKPerSec) })
		out.Steps[i] = cands[(len(cands)-1)/2]
	}
	return &out, nil
}
