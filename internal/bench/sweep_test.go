package bench

import (
	"testing"

	"github.com/dhtkv/dht/internal/config"
)

func TestParseSweep(t *testing.T) {
	s, err := ParseSweep("key_range=10,100,1000")
	if err != nil || s.Param != "key_range" || len(s.Values) != 3 || s.String() != "key_range=10,100,1000" {
		t.Fatalf("ParseSweep = %+v, %v", s, err)
	}
	w := config.Default().Workload
	w.KeyMin = 5
	if got := s.Apply(w, 100); got.KeyMin != 5 || got.KeyMax != 105 {
		t.Errorf("key_range=100 from 5 gave [%d, %d)", got.KeyMin, got.KeyMax)
	}
	s, err = ParseSweep("threads=1,2")
	if err != nil || s.Apply(w, 2).Threads != 2 {
		t.Errorf("threads sweep: %+v, %v", s, err)
	}
	for _, bad := range []string{"key_range", "keys=1,2", "threads=0", "threads=a", "threads="} {
		if _, err := ParseSweep(bad); err == nil {
			t.Errorf("ParseSweep(%q) succeeded", bad)
		}
	}
}

func TestCounterTarget(t *testing.T) {
	for _, tc := range []struct {
		n           int64
		count       int
		gen, target int64
	}{{1, 3, 0, 3}, {3, 3, 0, 3}, {4, 3, 1, 6}, {6, 3, 1, 6}, {1, 1, 0, 1}} {
		if gen, target := CounterTarget(tc.n, tc.count); gen != tc.gen || target != tc.target {
			t.Errorf("CounterTarget(%d, %d) = %d, %d; want %d, %d", tc.n, tc.count, gen, target, tc.gen, tc.target)
		}
	}
	if _, err := ParseBarrierMode("dht"); err != nil {
		t.Error(err)
	}
	if _, err := ParseBarrierMode("zookeeper"); err == nil {
		t.Error("ParseBarrierMode accepted zookeeper")
	}
}

func TestClusterState(t *testing.T) {
	if got := ClusterState("cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\n"); got != "ok" {
		t.Errorf("state = %q", got)
	}
	if got := ClusterState("cluster_state:fail\r\n"); got != "fail" {
		t.Errorf("state = %q", got)
	}
	if got := ClusterState(""); got != "" {
		t.Errorf("state of nothing = %q", got)
	}
}
