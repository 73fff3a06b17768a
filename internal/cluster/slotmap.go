package cluster

import (
	"fmt"
	"net"
	"strconv"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/keyspace"
)

// Member is one node as the slot map sees it.
type Member struct {
	// Index is the node's position in the config.
	Index int
	// Name is the config id ("n1").
	Name string
	// ID is the 40-hex cluster id.
	ID string
	// Addr is host:port; Host and Port are its parts.
	Addr string
	Host string
	Port int
	// Ranges are the slots the node owns.
	Ranges []keyspace.Range
}

// SlotMap assigns every slot to one range, and every range to the members that
// replicate it. Range i is replicated by members i, i+1, ..., i+R-1 (wrapping around),
// R being the replication degree; member i is its preferred leader (its owner), so
// that leadership is spread evenly. Each range is one Raft group, numbered as the
// range. It is immutable.
type SlotMap struct {
	members  []Member
	owner    [keyspace.Slots]uint16
	replicas [][]*Member
}

// NewSlotMap splits the slots evenly over the config's nodes, in config order.
func NewSlotMap(cfg config.Config) (*SlotMap, error) {
	ranges, err := keyspace.Split(len(cfg.Nodes))
	if err != nil {
		return nil, fmt.Errorf("slot map: %w", err)
	}
	m := &SlotMap{replicas: make([][]*Member, len(cfg.Nodes))}
	for i, n := range cfg.Nodes {
		host, portStr, err := net.SplitHostPort(n.Addr)
		if err != nil {
			return nil, fmt.Errorf("slot map: node %s: %w", n.Name, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("slot map: node %s: port %q: %w", n.Name, portStr, err)
		}
		m.members = append(m.members, Member{
			Index: i, Name: n.Name, ID: n.ID(), Addr: n.Addr, Host: host, Port: port,
			Ranges: []keyspace.Range{ranges[i]},
		})
		for s := ranges[i].Start; s <= ranges[i].End; s++ {
			m.owner[s] = uint16(i)
		}
	}
	r := min(max(cfg.ReplicationDegree, 1), len(m.members))
	for i := range m.members {
		for j := range r {
			m.replicas[i] = append(m.replicas[i], &m.members[(i+j)%len(m.members)])
		}
	}
	return m, nil
}

// Group returns the range, and so the Raft group, slot belongs to.
func (m *SlotMap) Group(slot int) int { return int(m.owner[slot]) }

// Range returns group g's slots.
func (m *SlotMap) Range(g int) keyspace.Range { return m.members[g].Ranges[0] }

// Replicas returns the members that replicate group g, its preferred leader first.
// The caller must not modify them.
func (m *SlotMap) Replicas(g int) []*Member { return m.replicas[g] }

// Replicated reports whether the ranges have more than one copy.
func (m *SlotMap) Replicated() bool { return len(m.replicas) > 0 && len(m.replicas[0]) > 1 }

// RaftID is the Raft id of the member at index i of the config.
func RaftID(i int) uint64 { return uint64(i) + 1 }

// Owner returns the member that owns slot.
func (m *SlotMap) Owner(slot int) *Member { return &m.members[m.owner[slot]] }

// Members returns every member in config order. The caller must not modify them.
func (m *SlotMap) Members() []Member { return m.members }

// Member returns the member named name.
func (m *SlotMap) Member(name string) (*Member, bool) {
	for i := range m.members {
		if m.members[i].Name == name {
			return &m.members[i], true
		}
	}
	return nil, false
}
