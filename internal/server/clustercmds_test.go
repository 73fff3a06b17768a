package server

import (
	"fmt"
	"slices"
	"testing"

	"github.com/dhtkv/dht/internal/cluster"
	"github.com/dhtkv/dht/internal/keyspace"
)

// firstRoles reads entries as redis-py's NodesManager reads CLUSTER SLOTS: a node
// keeps the role of the first entry that names it, "primary" when it is the entry's
// first node, else "replica".
func firstRoles(entries []slotsEntry) map[string]string {
	roles := make(map[string]string)
	for _, e := range entries {
		for i, m := range e.nodes {
			if _, ok := roles[m.Name]; ok {
				continue
			}
			roles[m.Name] = "replica"
			if i == 0 {
				roles[m.Name] = "primary"
			}
		}
	}
	return roles
}

// ringHolders returns n members and, for each of n ranges, its holders as the slot
// map places them at replication degree r (range g on members g..g+r-1), led by
// leader(g).
func ringHolders(n, r int, leader func(g int) int) ([]cluster.Member, [][]*cluster.Member) {
	members := make([]cluster.Member, n)
	for i := range members {
		members[i] = cluster.Member{Index: i, Name: fmt.Sprint("n", i+1), Host: "127.0.0.1", Port: 7001 + i}
	}
	holders := make([][]*cluster.Member, n)
	for g := range n {
		lead := &members[leader(g)]
		holders[g] = []*cluster.Member{lead}
		for j := range r {
			if m := &members[(g+j)%n]; m != lead {
				holders[g] = append(holders[g], m)
			}
		}
	}
	return members, holders
}

func TestSlotsEntries(t *testing.T) {
	preferred := func(g int) int { return g }
	for _, tc := range []struct {
		name   string
		n, r   int
		leader func(g int) int
		// primaries are the nodes redis-py must take for primaries.
		primaries []string
		// shortSlots is how many slots may list fewer replicas than they have.
		shortSlots int
	}{
		{"R=1", 3, 1, preferred, []string{"n1", "n2", "n3"}, 0},
		{"R=3 of 3", 3, 3, preferred, []string{"n1", "n2", "n3"}, 2},
		{"R=2 of 3", 3, 2, preferred, []string{"n1", "n2", "n3"}, 2},
		{"R=3 of 5", 5, 3, preferred, []string{"n1", "n2", "n3", "n4", "n5"}, 4},
		// n1 leads nothing after a failover; n2 leads two ranges.
		{"R=3, one node leads nothing", 3, 3, func(g int) int { return max(g, 1) }, []string{"n2", "n3"}, 1},
		{"one range", 1, 1, preferred, []string{"n1"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ranges, err := keyspace.Split(tc.n)
			if err != nil {
				t.Fatal(err)
			}
			_, holders := ringHolders(tc.n, tc.r, tc.leader)
			entries := slotsEntries(ranges, holders)

			covered := make([]int, keyspace.Slots)
			short := 0
			for _, e := range entries {
				if e.start > e.end {
					t.Fatalf("empty entry %d-%d", e.start, e.end)
				}
				for s := e.start; s <= e.end; s++ {
					covered[s]++
					g := slices.IndexFunc(ranges, func(r keyspace.Range) bool { return r.Contains(s) })
					if e.nodes[0] != holders[g][0] {
						t.Fatalf("slot %d: served by %s, want %s", s, e.nodes[0].Name, holders[g][0].Name)
					}
					for _, m := range e.nodes {
						if !slices.Contains(holders[g], m) {
							t.Fatalf("slot %d: lists %s, which does not hold it", s, m.Name)
						}
					}
					if len(e.nodes) < len(holders[g]) {
						short++
					}
				}
			}
			for s, c := range covered {
				if c != 1 {
					t.Fatalf("slot %d is in %d entries", s, c)
				}
			}
			if short > tc.shortSlots {
				t.Errorf("%d slots list fewer replicas than they have; want at most %d", short, tc.shortSlots)
			}
			var primaries []string
			for name, role := range firstRoles(entries) {
				if role == "primary" {
					primaries = append(primaries, name)
				}
			}
			slices.Sort(primaries)
			if !slices.Equal(primaries, tc.primaries) {
				t.Errorf("a client that keeps a node's first role takes %v for primaries; want %v", primaries, tc.primaries)
			}
		})
	}
}
