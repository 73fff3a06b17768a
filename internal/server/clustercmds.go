package server

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dhtkv/dht/internal/cluster"
	"github.com/dhtkv/dht/internal/keyspace"
)

// redisVersion is the Redis version whose replies dht imitates; clients that check
// the server version see this one.
const redisVersion = "7.0.0"

func cmdCluster(s *Server, conn *session, args [][]byte) {
	sub := strings.ToUpper(string(args[1]))
	switch sub {
	case "SLOTS":
		s.clusterSlots(conn)
	case "SHARDS":
		s.clusterShards(conn)
	case "NODES":
		conn.WriteBulkString(s.clusterNodes())
	case "INFO":
		conn.WriteBulkString(s.clusterInfo())
	case "MYID":
		conn.WriteBulkString(s.self.ID)
	case "KEYSLOT":
		if len(args) != 3 {
			conn.WriteError("ERR wrong number of arguments for 'cluster|keyslot' command")
			return
		}
		conn.WriteInt(keyspace.Slot(args[2]))
	case "COUNTKEYSINSLOT":
		if len(args) != 3 {
			conn.WriteError("ERR wrong number of arguments for 'cluster|countkeysinslot' command")
			return
		}
		slot, err := strconv.Atoi(string(args[2]))
		if err != nil || slot < 0 || slot >= keyspace.Slots {
			conn.WriteError("ERR Invalid slot")
			return
		}
		conn.WriteInt(s.store.SlotLen(slot))
	case "HELP":
		writeHelp(conn, "cluster", args,
			"COUNTKEYSINSLOT <slot>",
			"    Return the number of keys in <slot> (on this node).",
			"INFO",
			"    Return information about the cluster.",
			"KEYSLOT <key>",
			"    Return the hash slot for <key>.",
			"MYID",
			"    Return the node id.",
			"NODES",
			"    Return cluster configuration seen by node. Output format:",
			"    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
			"SHARDS",
			"    Return information about slot range mappings and the nodes associated with them.",
			"SLOTS",
			"    Return information about slots range mappings. Each range is made of:",
			"    start, end, master IP address, port and id.",
		)
	}
}

// rangeHolders returns group g's members, the one serving its slots first: its
// leader when it has one, else its preferred leader. leader is false when the group has
// no live leader.
func (s *Server) rangeHolders(g int) (holders []*cluster.Member, leader bool) {
	reps := s.slots.Replicas(g)
	first := reps[0]
	if s.repl != nil {
		if l, _ := s.routeReplicated(s.slots.Range(g).Start); l != nil {
			first, leader = l, true
		}
	} else {
		leader = first.Name == s.self.Name || s.members.State(first.Name) == cluster.Up
	}
	holders = append(holders, first)
	for _, m := range reps {
		if m != first {
			holders = append(holders, m)
		}
	}
	return holders, leader
}

// live reports whether this node believes m is up.
func (s *Server) live(m *cluster.Member) bool {
	return m.Name == s.self.Name || s.members.State(m.Name) == cluster.Up
}

// clusterSlots answers CLUSTER SLOTS: entries [start, end, serving node, replicas...],
// each node as [host, port, id], laid out by slotsEntries.
func (s *Server) clusterSlots(conn *session) {
	n := len(s.slots.Members())
	ranges := make([]keyspace.Range, n)
	holders := make([][]*cluster.Member, n)
	for g := range n {
		ranges[g] = s.slots.Range(g)
		holders[g], _ = s.rangeHolders(g)
	}
	entries := slotsEntries(ranges, holders)
	conn.WriteArray(len(entries))
	for _, e := range entries {
		conn.WriteArray(2 + len(e.nodes))
		conn.WriteInt(e.start)
		conn.WriteInt(e.end)
		for _, m := range e.nodes {
			conn.WriteArray(3)
			conn.WriteBulkString(m.Host)
			conn.WriteInt(m.Port)
			conn.WriteBulkString(m.ID)
		}
	}
}

// slotsEntry is one entry of CLUSTER SLOTS: slots start to end and the nodes that
// hold them, the one serving them first.
type slotsEntry struct {
	start, end int
	nodes      []*cluster.Member
}

// slotsEntries lays out CLUSTER SLOTS for ranges and their holders (the serving
// node first), so that each node that serves some range is named as a primary
// before it is named as a replica.
//
// In Redis Cluster a node is either a master or a replica of one master, and a
// client may take a node's role from the first entry that names it. redis-py does:
// its NodesManager keeps the first role it gives a node while reading CLUSTER SLOTS
// (in 4.3 as in later versions), and sends the commands it runs on every primary
// (SCAN, FLUSHALL, FLUSHDB; DBSIZE, KEYS and others when asked for the primaries,
// or by their COMMAND tips in later versions) to the nodes it took for primaries
// only. In a replicated dht a node serves some ranges and replicates others, so in
// range order the first entry would name the other nodes as replicas, and to
// redis-py they would stay replicas.
//
// So, in range order, the first range that a node serves lists, in its first slot,
// only the replicas already named as primaries (and those that serve nothing, which
// are replicas whatever the order); the rest of that range, and the ranges whose
// serving node is already named, follow with all their replicas. A few slots (one
// fewer than the serving nodes at most) thus show fewer replicas than they have,
// which only means that a client reading from replicas reads those slots from the
// serving node. Entries never overlap and every slot keeps its serving node, so
// routing is unchanged. CLUSTER SHARDS and CLUSTER NODES show every range whole.
func slotsEntries(ranges []keyspace.Range, holders [][]*cluster.Member) []slotsEntry {
	serves := make(map[string]bool)
	for _, h := range holders {
		serves[h[0].Name] = true
	}
	named := make(map[string]bool) // serving nodes already named as a primary
	var entries, rest []slotsEntry
	for g, r := range ranges {
		h := holders[g]
		if named[h[0].Name] {
			rest = append(rest, slotsEntry{r.Start, r.End, h})
			continue
		}
		named[h[0].Name] = true
		known := []*cluster.Member{h[0]}
		for _, m := range h[1:] {
			if named[m.Name] || !serves[m.Name] {
				known = append(known, m)
			}
		}
		if len(known) == len(h) || r.Len() == 1 {
			entries = append(entries, slotsEntry{r.Start, r.End, known})
			continue
		}
		entries = append(entries, slotsEntry{r.Start, r.Start, known})
		rest = append(rest, slotsEntry{r.Start + 1, r.End, h})
	}
	return append(entries, rest...)
}

// clusterShards answers CLUSTER SHARDS as Redis 7 does (maps as flat arrays in RESP2):
// one shard per slot range, its leader as master and its other members as replicas.
func (s *Server) clusterShards(conn *session) {
	n := len(s.slots.Members())
	conn.WriteArray(n)
	for g := range n {
		r := s.slots.Range(g)
		holders, leader := s.rangeHolders(g)
		conn.WriteArray(4)
		conn.WriteBulkString("slots")
		conn.WriteArray(2)
		conn.WriteInt(r.Start)
		conn.WriteInt(r.End)
		conn.WriteBulkString("nodes")
		conn.WriteArray(len(holders))
		for i, m := range holders {
			role, health := "replica", "online"
			if i == 0 && leader {
				role = "master"
			}
			if !s.live(m) {
				health = "fail"
			}
			var offset int64
			if s.repl != nil && m.Name == s.self.Name {
				st, _ := s.repl.Status(g)
				offset = int64(st.Applied)
			}
			conn.WriteArray(14)
			for _, kv := range [][2]string{{"id", m.ID}, {"ip", m.Host}, {"endpoint", m.Host}, {"role", role}, {"health", health}} {
				conn.WriteBulkString(kv[0])
				conn.WriteBulkString(kv[1])
			}
			conn.WriteBulkString("port")
			conn.WriteInt(m.Port)
			conn.WriteBulkString("replication-offset")
			conn.WriteInt64(offset)
		}
	}
}

// clusterNodes renders CLUSTER NODES in Redis's line format. Every node is a master,
// listed with the slot ranges it serves now (in a replicated cluster: the ranges it
// leads); Redis's format has no way to say that a node replicates several ranges.
func (s *Server) clusterNodes() string {
	serves := make(map[string][]string)
	for g := range s.slots.Members() {
		if holders, leader := s.rangeHolders(g); leader || s.repl == nil {
			serves[holders[0].Name] = append(serves[holders[0].Name], s.slots.Range(g).String())
		}
	}
	var b strings.Builder
	for _, m := range s.slots.Members() {
		flags, link := "master", "connected"
		switch {
		case m.Name == s.self.Name:
			flags = "myself,master"
		case s.members.State(m.Name) == cluster.Down:
			flags, link = "master,fail", "disconnected"
		case s.members.State(m.Name) != cluster.Up:
			flags, link = "master,fail?", "disconnected"
		}
		fmt.Fprintf(&b, "%s %s:%d@%d %s - 0 0 %d %s", m.ID, m.Host, m.Port, m.Port+10000, flags, m.Index+1, link)
		for _, r := range serves[m.Name] {
			b.WriteString(" " + r)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (s *Server) clusterInfo() string {
	state := "fail"
	if s.clusterOK() {
		state = "ok"
	}
	okSlots, failSlots := 0, 0
	for g := range s.slots.Members() {
		if _, leader := s.rangeHolders(g); leader {
			okSlots += s.slots.Range(g).Len()
		} else {
			failSlots += s.slots.Range(g).Len()
		}
	}
	lines := []string{
		"cluster_state:" + state,
		fmt.Sprintf("cluster_slots_assigned:%d", keyspace.Slots),
		fmt.Sprintf("cluster_slots_ok:%d", okSlots),
		"cluster_slots_pfail:0",
		fmt.Sprintf("cluster_slots_fail:%d", failSlots),
		fmt.Sprintf("cluster_known_nodes:%d", len(s.slots.Members())),
		fmt.Sprintf("cluster_size:%d", len(s.slots.Members())),
		fmt.Sprintf("cluster_current_epoch:%d", len(s.slots.Members())),
		fmt.Sprintf("cluster_my_epoch:%d", s.self.Index+1),
		"dht_startup_barrier:" + passedWord(s.members.BarrierPassed()),
		"dht_config_digest:" + s.digest,
		fmt.Sprintf("dht_replication_degree:%d", len(s.slots.Replicas(0))),
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

// replicationInfo is INFO's replication section: with replication on, one line per
// group this node is a member of, and, where it leads, one per follower with its lag.
func (s *Server) replicationInfo() []string {
	if s.repl == nil {
		return []string{"role:master", "connected_slaves:0"}
	}
	lines := []string{"role:master", "", fmt.Sprintf("dht_replication_degree:%d", len(s.slots.Replicas(0)))}
	followers := 0
	name := func(id uint64) string {
		if id == 0 || int(id) > len(s.slots.Members()) {
			return "none"
		}
		return s.slots.Members()[id-1].Name
	}
	for g := range s.slots.Members() {
		st, member := s.repl.Status(g)
		if !member {
			// A group this node is not in: the leader its peers report.
			lead, term := s.view.get(g)
			lines = append(lines, fmt.Sprintf("dht_group_%d:slots=%s,role=none,term=%d,leader=%s",
				g, s.slots.Range(g), term, name(lead)))
			continue
		}
		lines = append(lines, fmt.Sprintf("dht_group_%d:slots=%s,role=%s,term=%d,leader=%s,commit=%d,applied=%d,held=%d,learner=%d,membership_changes=%d,read_rounds=%d",
			g, s.slots.Range(g), st.Role, st.Term, name(st.Leader), st.Commit, st.Applied, boolInt(st.Held),
			boolInt(st.Learner), st.MembershipChanges, st.ReadRounds))
		for _, f := range st.Followers {
			followers++
			lines = append(lines, fmt.Sprintf("dht_group_%d_follower_%s:match=%d,lag=%d,active=%d,learner=%d",
				g, name(f.ID), f.Match, st.Commit-min(f.Match, st.Commit), boolInt(f.Active), boolInt(f.Learner)))
		}
	}
	lines[1] = fmt.Sprintf("connected_slaves:%d", followers)
	return lines
}

func passedWord(b bool) string {
	if b {
		return "passed"
	}
	return "waiting"
}

// writeHelp answers "<command> HELP" as Redis 7 does: an array of status lines, a
// heading, then each subcommand with its description indented under it, then HELP
// itself. HELP takes no arguments.
func writeHelp(conn *session, command string, args [][]byte, lines ...string) {
	if len(args) != 2 {
		conn.WriteError(fmt.Sprintf("ERR wrong number of arguments for '%s|help' command", command))
		return
	}
	conn.WriteArray(len(lines) + 3)
	conn.WriteString(strings.ToUpper(command) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
	for _, l := range lines {
		conn.WriteString(l)
	}
	conn.WriteString("HELP")
	conn.WriteString("    " + helpOfHelp)
}

// helpOfHelp is what a HELP reply says of HELP itself, in Redis 7.0's words.
const helpOfHelp = "Prints this help."
