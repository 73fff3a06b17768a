package cluster

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
)

const digest = "d1"

var (
	ok       = Probe{Digest: digest}
	failed   = Probe{Err: errors.New("i/o timeout")}
	mismatch = Probe{Digest: "other"}
)

// step is one probe and what Observe must report for it.
type step struct {
	peer    string
	probe   Probe
	changed bool
	to      PeerState // checked when changed
	passed  bool      // Transition.BarrierPassed
}

func TestObserveTransitions(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		steps    []step
	}{
		{"first success is up", 3, []step{
			{peer: "a", probe: ok, changed: true, to: Up, passed: true},
			{peer: "a", probe: ok},
		}},
		{"never reached stays unknown", 3, []step{
			{peer: "a", probe: failed}, {peer: "a", probe: failed}, {peer: "a", probe: failed}, {peer: "a", probe: failed},
			{peer: "a", probe: ok, changed: true, to: Up, passed: true},
		}},
		{"down after N failures in a row", 3, []step{
			{peer: "a", probe: ok, changed: true, to: Up, passed: true},
			{peer: "a", probe: failed},
			{peer: "a", probe: failed},
			{peer: "a", probe: failed, changed: true, to: Down},
			{peer: "a", probe: failed},
			{peer: "a", probe: ok, changed: true, to: Up},
		}},
		{"a success resets the failure count", 3, []step{
			{peer: "a", probe: ok, changed: true, to: Up, passed: true},
			{peer: "a", probe: failed}, {peer: "a", probe: failed},
			{peer: "a", probe: ok},
			{peer: "a", probe: failed}, {peer: "a", probe: failed},
			{peer: "a", probe: failed, changed: true, to: Down},
		}},
		{"failures before the first success do not count", 2, []step{
			{peer: "a", probe: failed},
			{peer: "a", probe: ok, changed: true, to: Up, passed: true},
			{peer: "a", probe: failed},
			{peer: "a", probe: failed, changed: true, to: Down},
		}},
		{"failuresToDown below 1 means 1", 0, []step{
			{peer: "a", probe: ok, changed: true, to: Up, passed: true},
			{peer: "a", probe: failed, changed: true, to: Down},
		}},
		{"mismatch and back", 3, []step{
			{peer: "a", probe: mismatch, changed: true, to: Mismatch},
			{peer: "a", probe: mismatch},
			{peer: "a", probe: ok, changed: true, to: Up, passed: true},
			{peer: "a", probe: mismatch, changed: true, to: Mismatch},
		}},
		{"a mismatched peer that stops answering is down at once", 3, []step{
			{peer: "a", probe: mismatch, changed: true, to: Mismatch},
			{peer: "a", probe: failed, changed: true, to: Down},
			{peer: "a", probe: mismatch, changed: true, to: Mismatch},
		}},
		{"mismatch resets failures", 2, []step{
			{peer: "a", probe: ok, changed: true, to: Up, passed: true},
			{peer: "a", probe: failed},
			{peer: "a", probe: mismatch, changed: true, to: Mismatch},
			{peer: "a", probe: ok, changed: true, to: Up},
			{peer: "a", probe: failed},
			{peer: "a", probe: failed, changed: true, to: Down},
		}},
		{"unknown peers are ignored", 1, []step{
			{peer: "zz", probe: ok},
			{peer: "zz", probe: failed},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMembership(digest, []string{"a"}, tt.failures)
			for i, s := range tt.steps {
				before := m.State(s.peer)
				tr, changed := m.Observe(s.peer, s.probe)
				if changed != s.changed {
					t.Fatalf("step %d: changed = %v, want %v (transition %+v)", i, changed, s.changed, tr)
				}
				if !changed {
					if tr != (Transition{}) {
						t.Fatalf("step %d: unchanged but transition %+v", i, tr)
					}
					if got := m.State(s.peer); got != before {
						t.Fatalf("step %d: state moved %v -> %v without a transition", i, before, got)
					}
					continue
				}
				if tr.Peer != s.peer || tr.From != before || tr.To != s.to || tr.BarrierPassed != s.passed {
					t.Fatalf("step %d: transition %+v, want %s %v -> %v passed=%v", i, tr, s.peer, before, s.to, s.passed)
				}
				if got := m.State(s.peer); got != s.to {
					t.Fatalf("step %d: State = %v, want %v", i, got, s.to)
				}
			}
		})
	}
}

func TestTransitionDetail(t *testing.T) {
	m := NewMembership(digest, []string{"a"}, 1)
	tr, _ := m.Observe("a", mismatch)
	if tr.Detail != "peer config digest other, ours d1" {
		t.Errorf("mismatch detail = %q", tr.Detail)
	}
	tr, _ = m.Observe("a", ok)
	if tr.Detail != "" {
		t.Errorf("up detail = %q, want empty", tr.Detail)
	}
	tr, _ = m.Observe("a", failed)
	if tr.To != Down || tr.Detail != "i/o timeout" {
		t.Errorf("down transition = %+v, want the probe error as detail", tr)
	}
}

func TestBarrierAndHealth(t *testing.T) {
	m := NewMembership(digest, []string{"c", "a", "b"}, 1)
	check := func(step string, passed, healthy bool, notUp []string) {
		t.Helper()
		if got := m.BarrierPassed(); got != passed {
			t.Errorf("%s: BarrierPassed = %v, want %v", step, got, passed)
		}
		if got := m.Healthy(); got != healthy {
			t.Errorf("%s: Healthy = %v, want %v", step, got, healthy)
		}
		if got := m.NotUp(); !reflect.DeepEqual(got, notUp) {
			t.Errorf("%s: NotUp = %v, want %v", step, got, notUp)
		}
	}
	check("start", false, false, []string{"a", "b", "c"})

	if tr, _ := m.Observe("a", ok); tr.BarrierPassed {
		t.Error("barrier passed with b and c unknown")
	}
	if tr, _ := m.Observe("b", ok); tr.BarrierPassed {
		t.Error("barrier passed with c unknown")
	}
	m.Observe("a", failed) // a goes down before c arrives
	check("a down, c unknown", false, false, []string{"a", "c"})
	if tr, _ := m.Observe("c", ok); tr.BarrierPassed {
		t.Error("barrier passed while a is down: every peer must be up at once")
	}
	check("c up, a down", false, false, []string{"a"})

	tr, changed := m.Observe("a", ok)
	if !changed || !tr.BarrierPassed || tr.Peer != "a" {
		t.Fatalf("last peer up: transition %+v changed=%v, want BarrierPassed", tr, changed)
	}
	check("all up", true, true, nil)

	tr, _ = m.Observe("b", failed)
	if tr.BarrierPassed {
		t.Error("BarrierPassed reported twice")
	}
	check("b down after barrier", true, false, []string{"b"})
	m.Observe("c", mismatch)
	check("c mismatched", true, false, []string{"b", "c"})

	m.Observe("b", ok)
	tr, _ = m.Observe("c", ok)
	if tr.BarrierPassed {
		t.Error("BarrierPassed reported again after recovery")
	}
	check("recovered", true, true, nil)
}

func TestNoPeersPassesAtOnce(t *testing.T) {
	m := NewMembership(digest, nil, 3)
	if !m.BarrierPassed() || !m.Healthy() || len(m.NotUp()) != 0 {
		t.Fatalf("single node: passed=%v healthy=%v notUp=%v", m.BarrierPassed(), m.Healthy(), m.NotUp())
	}
	if m.State("anyone") != Unknown {
		t.Error("State of a stranger is not Unknown")
	}
}

func TestPeerStateString(t *testing.T) {
	for s, want := range map[PeerState]string{Unknown: "unknown", Up: "up", Down: "down", Mismatch: "config-mismatch", PeerState(42): "unknown"} {
		if got := s.String(); got != want {
			t.Errorf("PeerState(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

// TestMembershipConcurrent runs probes and queries at once (for -race) and checks
// that exactly one transition reports the barrier.
func TestMembershipConcurrent(t *testing.T) {
	peers := make([]string, 8)
	for i := range peers {
		peers[i] = fmt.Sprintf("p%d", i)
	}
	m := NewMembership(digest, peers, 2)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		passes int
	)
	for _, p := range peers {
		wg.Go(func() {
			for i := range 200 {
				probe := ok
				if i%7 == 3 {
					probe = failed
				}
				if tr, _ := m.Observe(p, probe); tr.BarrierPassed {
					mu.Lock()
					passes++
					mu.Unlock()
				}
				_ = m.State(p)
				_ = m.NotUp()
				_ = m.Healthy()
			}
			m.Observe(p, ok)
		})
	}
	wg.Wait()
	if passes != 1 {
		t.Errorf("BarrierPassed reported %d times, want once", passes)
	}
	if !m.Healthy() {
		t.Errorf("not healthy after every peer answered: not up %v", m.NotUp())
	}
}

func TestHeardPassesTheBarrierButNeverRevives(t *testing.T) {
	m := NewMembership("d1", []string{"a", "b"}, 2)
	if _, changed := m.Heard("a", "other"); changed {
		t.Fatal("a probe with a foreign digest marked the peer up")
	}
	if _, changed := m.Heard("nobody", "d1"); changed {
		t.Fatal("a probe from an unknown node changed the membership")
	}
	if tr, changed := m.Heard("a", "d1"); !changed || tr.To != Up || tr.BarrierPassed {
		t.Fatalf("Heard(a) = %+v, %v; want a up, barrier still waiting for b", tr, changed)
	}
	if tr, _ := m.Heard("b", "d1"); !tr.BarrierPassed || !m.Healthy() {
		t.Fatalf("Heard(b) = %+v; want the barrier passed", tr)
	}
	// b stops answering this node's probes: it goes down, and its own probes of
	// this node do not bring it back.
	m.Observe("b", Probe{Err: errors.New("timeout")})
	m.Observe("b", Probe{Err: errors.New("timeout")})
	if m.State("b") != Down {
		t.Fatalf("b is %v after 2 failed probes", m.State("b"))
	}
	if _, changed := m.Heard("b", "d1"); changed || m.State("b") != Down {
		t.Fatal("Heard revived a peer this node cannot reach")
	}
	if _, changed := m.Observe("b", Probe{Digest: "d1"}); !changed || m.State("b") != Up {
		t.Fatal("a successful probe did not revive b")
	}
}
