package cluster

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/keyspace"
)

func TestSlotMapThreeNodes(t *testing.T) {
	cfg, err := config.Local(3, 7001)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewSlotMap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	members := m.Members()
	if len(members) != 3 {
		t.Fatalf("%d members", len(members))
	}
	want := []keyspace.Range{{Start: 0, End: 5460}, {Start: 5461, End: 10922}, {Start: 10923, End: 16383}}
	for i, mb := range members {
		n := cfg.Nodes[i]
		if mb.Index != i || mb.Name != n.Name || mb.ID != n.ID() || mb.Addr != n.Addr || mb.Host != "127.0.0.1" || mb.Port != 7001+i {
			t.Errorf("member %d = %+v, does not match node %+v", i, mb, n)
		}
		if !reflect.DeepEqual(mb.Ranges, []keyspace.Range{want[i]}) {
			t.Errorf("member %d ranges = %v, want [%v] (the redis-cli layout)", i, mb.Ranges, want[i])
		}
	}
	for _, tc := range []struct {
		slot int
		name string
	}{{0, "n1"}, {5460, "n1"}, {5461, "n2"}, {10922, "n2"}, {10923, "n3"}, {keyspace.Slots - 1, "n3"}} {
		if got := m.Owner(tc.slot).Name; got != tc.name {
			t.Errorf("Owner(%d) = %s, want %s", tc.slot, got, tc.name)
		}
	}
	// A key's owner is the member whose range holds the key's slot.
	for _, key := range []string{"foo", "bar", "{user1}.a", "{user1}.b", ""} {
		slot := keyspace.Slot([]byte(key))
		if o := m.Owner(slot); !o.Ranges[0].Contains(slot) {
			t.Errorf("key %q: slot %d owned by %s whose range is %v", key, slot, o.Name, o.Ranges)
		}
	}
}

// TestSlotMapCoversEverySlotOnce checks, for several cluster sizes, that every slot has
// exactly one owner and that Owner agrees with the members' ranges.
func TestSlotMapCoversEverySlotOnce(t *testing.T) {
	for _, n := range []int{1, 2, 5, 7, 100, 1000} {
		cfg := config.Default()
		for i := range n {
			cfg.Nodes = append(cfg.Nodes, config.Node{Name: "n" + strconv.Itoa(i), Addr: "h" + strconv.Itoa(i) + ":7000"})
		}
		m, err := NewSlotMap(cfg)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		seen := make([]int, keyspace.Slots)
		for i, mb := range m.Members() {
			for _, r := range mb.Ranges {
				if r.Len() == 0 {
					t.Errorf("n=%d: member %d has an empty range %v", n, i, r)
				}
				for s := r.Start; s <= r.End; s++ {
					seen[s]++
					if o := m.Owner(s); o.Index != i {
						t.Fatalf("n=%d: Owner(%d) = member %d, but member %d's range %v holds it", n, s, o.Index, i, r)
					}
				}
			}
		}
		for s, c := range seen {
			if c != 1 {
				t.Fatalf("n=%d: slot %d has %d owners", n, s, c)
			}
		}
	}
}

func TestSlotMapMember(t *testing.T) {
	cfg, _ := config.Local(2, 7001)
	m, err := NewSlotMap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mb, ok := m.Member("n2")
	if !ok || mb.Index != 1 || mb.Port != 7002 {
		t.Fatalf("Member(n2) = %+v, %v", mb, ok)
	}
	if mb != &m.Members()[1] {
		t.Error("Member does not point into the map's members")
	}
	if m.Owner(keyspace.Slots-1) != mb {
		t.Error("Owner and Member disagree on the same member")
	}
	if mb, ok := m.Member("n3"); ok || mb != nil {
		t.Fatalf("Member(n3) = %+v, %v, want nil, false", mb, ok)
	}
}

func TestSlotMapIPv6(t *testing.T) {
	cfg := config.Default()
	cfg.Nodes = []config.Node{{Name: "a", Addr: "[::1]:7001"}}
	m, err := NewSlotMap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mb := m.Members()[0]
	if mb.Host != "::1" || mb.Port != 7001 || mb.Addr != "[::1]:7001" {
		t.Fatalf("member = %+v", mb)
	}
	if r := mb.Ranges; len(r) != 1 || r[0] != (keyspace.Range{Start: 0, End: keyspace.Slots - 1}) {
		t.Fatalf("single node ranges = %v", r)
	}
}

func TestSlotMapErrors(t *testing.T) {
	_, err := NewSlotMap(config.Default())
	if !errors.Is(err, keyspace.ErrSplitCount) {
		t.Errorf("no nodes: err = %v, want ErrSplitCount", err)
	}
	for _, addr := range []string{"nohostport", "h:port"} {
		cfg := config.Default()
		cfg.Nodes = []config.Node{{Name: "bad", Addr: addr}}
		_, err := NewSlotMap(cfg)
		if err == nil || !strings.Contains(err.Error(), "node bad") {
			t.Errorf("addr %q: err = %v, want an error naming the node", addr, err)
		}
	}
}

func TestSlotMapReplicas(t *testing.T) {
	cfg, err := config.Local(5, 7001)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ReplicationDegree = 3
	m, err := NewSlotMap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Replicated() {
		t.Fatal("R=3 map says it is not replicated")
	}
	leads := map[string]int{}
	copies := map[string]int{}
	for g := range 5 {
		var names []string
		for _, r := range m.Replicas(g) {
			names = append(names, r.Name)
			copies[r.Name]++
		}
		want := []string{fmt.Sprintf("n%d", g+1), fmt.Sprintf("n%d", (g+1)%5+1), fmt.Sprintf("n%d", (g+2)%5+1)}
		if !slices.Equal(names, want) {
			t.Errorf("group %d replicas %v, want %v", g, names, want)
		}
		leads[names[0]]++
		if r := m.Range(g); m.Group(r.Start) != g || m.Group(r.End) != g {
			t.Errorf("group %d: range %v maps to groups %d..%d", g, r, m.Group(r.Start), m.Group(r.End))
		}
	}
	for _, n := range cfg.Nodes {
		if leads[n.Name] != 1 || copies[n.Name] != 3 {
			t.Errorf("%s prefers to lead %d groups and holds %d, want 1 and 3", n.Name, leads[n.Name], copies[n.Name])
		}
	}
	cfg.ReplicationDegree = 1
	if m, _ := NewSlotMap(cfg); m.Replicated() || len(m.Replicas(2)) != 1 || m.Replicas(2)[0].Name != "n3" {
		t.Errorf("R=1: replicas of group 2 = %v", m.Replicas(2))
	}
}
