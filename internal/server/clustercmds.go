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

// clusterSlots answers CLUSTER SLOTS: per range [start, end, serving node, replicas...],
// each node as [host, port, id].
func (s *Server) clusterSlots(conn *session) {
	n := len(s.slots.Members())
	conn.WriteArray(n)
	for g := range n {
		r := s.slots.Range(g)
		holders, _ := s.rangeHolders(g)
		conn.WriteArray(2 + len(holders))
		conn.WriteInt(r.Start)
		conn.WriteInt(r.End)
		for _, m := range holders {
			conn.WriteArray(3)
			conn.WriteBulkString(m.Host)
			conn.WriteInt(m.Port)
			conn.WriteBulkString(m.ID)
		}
	}
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
		lines = append(lines, fmt.Sprintf("dht_group_%d:slots=%s,role=%s,term=%d,leader=%s,commit=%d,applied=%d,held=%d,learner=%d,membership_changes=%d",
			g, s.slots.Range(g), st.Role, st.Term, name(st.Leader), st.Commit, st.Applied, boolInt(st.Held),
			boolInt(st.Learner), st.MembershipChanges))
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
	conn.WriteString("    Print this help.")
}
