// Package cluster holds what a node knows of the cluster: the slot map (which node owns
// which slots) and the health of its peers, including the startup barrier. Everything
// here is pure state; the probing I/O lives in the server.
package cluster

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// PeerState is what a node believes of one peer.
type PeerState int

// Peer states.
const (
	// Unknown: never reached yet.
	Unknown PeerState = iota
	// Up: the last probe succeeded and the peer runs the same config.
	Up
	// Down: the last FailuresToDown probes failed.
	Down
	// Mismatch: the peer answers but runs a different config.
	Mismatch
)

func (s PeerState) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	case Mismatch:
		return "config-mismatch"
	default:
		return "unknown"
	}
}

// Probe is the outcome of one health probe of a peer.
type Probe struct {
	// Err is set when the peer did not answer in time.
	Err error
	// Digest is the config digest the peer answered with.
	Digest string
}

// Transition reports a change of a peer's state, for logging.
type Transition struct {
	Peer     string
	From, To PeerState
	// Detail explains the new state (the probe error, the foreign digest).
	Detail string
	// BarrierPassed is set on the transition that completed the startup barrier.
	BarrierPassed bool
}

// Membership tracks the peers of one node. It is safe for concurrent use.
type Membership struct {
	digest         string
	failuresToDown int

	mu      sync.RWMutex
	peers   map[string]*peerHealth
	passed  atomic.Bool // written under mu; read without it on every command
	version uint64
}

type peerHealth struct {
	state    PeerState
	failures int
}

// NewMembership tracks peers (the other nodes' names). digest is this node's config
// digest; a peer is Down after failuresToDown failed probes in a row.
func NewMembership(digest string, peers []string, failuresToDown int) *Membership {
	m := &Membership{digest: digest, failuresToDown: max(failuresToDown, 1), peers: map[string]*peerHealth{}}
	for _, p := range peers {
		m.peers[p] = &peerHealth{}
	}
	m.passed.Store(len(peers) == 0)
	return m
}

// Observe records a probe of peer and reports whether its state changed.
func (m *Membership) Observe(peer string, p Probe) (Transition, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.observeLocked(peer, p)
}

func (m *Membership) observeLocked(peer string, p Probe) (Transition, bool) {
	h, ok := m.peers[peer]
	if !ok {
		return Transition{}, false
	}
	from := h.state
	to, detail := from, ""
	switch {
	case p.Err != nil:
		h.failures++
		if from == Up && h.failures >= m.failuresToDown {
			to, detail = Down, p.Err.Error()
		}
		if from == Mismatch {
			to, detail = Down, p.Err.Error()
		}
	case p.Digest != m.digest:
		h.failures = 0
		to = Mismatch
		detail = fmt.Sprintf("peer config digest %s, ours %s", p.Digest, m.digest)
	default:
		h.failures = 0
		to = Up
	}
	if to == from {
		return Transition{}, false
	}
	h.state = to
	m.version++
	t := Transition{Peer: peer, From: from, To: to, Detail: detail}
	if !m.passed.Load() && m.allUpLocked() {
		m.passed.Store(true)
		t.BarrierPassed = true
	}
	return t, true
}

// Heard records that peer itself probed this node with digest. Before the peer was
// ever reached that proves it up, so nodes pass the startup barrier within a round
// trip of each other rather than a probe interval. It never revives a Down peer: only
// this node's own probes do, so a peer this node cannot reach stays down.
func (m *Membership) Heard(peer, digest string) (Transition, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.peers[peer]; !ok || h.state != Unknown || digest != m.digest {
		return Transition{}, false
	}
	return m.observeLocked(peer, Probe{Digest: digest})
}

func (m *Membership) allUpLocked() bool {
	for _, h := range m.peers {
		if h.state != Up {
			return false
		}
	}
	return true
}

// BarrierPassed reports whether every peer has been up at once since start: the
// startup barrier. It never goes back to false.
func (m *Membership) BarrierPassed() bool {
	return m.passed.Load()
}

// Healthy reports whether the barrier has passed and every peer is up now: Redis's
// cluster_state:ok.
func (m *Membership) Healthy() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.passed.Load() && m.allUpLocked()
}

// State returns what this node believes of peer.
func (m *Membership) State(peer string) PeerState {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if h, ok := m.peers[peer]; ok {
		return h.state
	}
	return Unknown
}

// NotUp lists, sorted, the peers that are not up.
func (m *Membership) NotUp() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for name, h := range m.peers {
		if h.state != Up {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
