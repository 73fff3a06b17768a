package bench

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dhtkv/dht/internal/config"
)

// Sweep runs the workload once per value of one parameter.
type Sweep struct {
	// Param is the swept parameter: one of SweepParams.
	Param string `json:"param"`
	// Values are its values, in the order they run.
	Values []int64 `json:"values"`
}

// SweepParams lists the parameters a sweep can vary.
func SweepParams() []string {
	return []string{"key_range", "threads", "pipeline", "value_size", "multi_put_num"}
}

// ParseSweep parses "param=v1,v2,...", e.g. "key_range=10,100,1000,10000".
func ParseSweep(s string) (*Sweep, error) {
	param, list, ok := strings.Cut(s, "=")
	if !ok {
		return nil, fmt.Errorf("sweep %q: want param=value,value,... (params: %s)", s, strings.Join(SweepParams(), ", "))
	}
	param = strings.ReplaceAll(strings.TrimSpace(param), "-", "_")
	known := false
	for _, p := range SweepParams() {
		known = known || p == param
	}
	if !known {
		return nil, fmt.Errorf("sweep %q: unknown parameter %q (params: %s)", s, param, strings.Join(SweepParams(), ", "))
	}
	sw := &Sweep{Param: param}
	for v := range strings.SplitSeq(list, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("sweep %q: %q is not a positive integer", s, v)
		}
		sw.Values = append(sw.Values, n)
	}
	return sw, nil
}

// String writes the sweep as ParseSweep reads it.
func (s *Sweep) String() string {
	vals := make([]string, len(s.Values))
	for i, v := range s.Values {
		vals[i] = strconv.FormatInt(v, 10)
	}
	return s.Param + "=" + strings.Join(vals, ",")
}

// Apply returns w with the swept parameter set to v; key_range keeps KeyMin
// and sets KeyMax = KeyMin + v.
func (s *Sweep) Apply(w config.Workload, v int64) config.Workload {
	switch s.Param {
	case "key_range":
		w.KeyMax = w.KeyMin + v
	case "threads":
		w.Threads = int(v)
	case "pipeline":
		w.Pipeline = int(v)
	case "value_size":
		w.ValueSize = int(v)
	case "multi_put_num":
		w.MultiPutNum = int(v)
	}
	return w
}
