package server

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/keyspace"
)

// MULTI, EXEC, DISCARD, WATCH and UNWATCH, as Redis Cluster serves them: the
// commands of a transaction must name keys of one slot. The node the client is
// connected to keeps the transaction: it queues the commands (checking each as Redis
// does before it answers +QUEUED) and the watched keys with their versions
// (store.Version, read at the leader of their group through DHT.VERSION). EXEC sends
// the whole transaction as one command, DHT.EXEC, to the leader of the slot's group,
// as any write is sent (proposed there, forwarded there from here): it is one log
// entry, applied whole on every member, which compares the watched keys' versions
// with their versions then and runs the commands, or none, between any two other
// commands of the group. So EXEC's reads are linearizable, a write to a watched key
// through any node aborts it, and every member decides alike.

// multiState is a transaction being queued.
type multiState struct {
	cmds [][][]byte // the queued commands, copied
	// failed is set once a command was refused: EXEC then answers EXECABORT.
	failed bool
}

// watchedKey is a key WATCH named and its version then.
type watchedKey struct {
	key     []byte
	version uint64
}

// errExecAbort is EXEC's reply after a command of the transaction was refused.
const errExecAbort = "EXECABORT Transaction discarded because of previous errors."

// runsInMulti reports whether a command runs at once inside a transaction, rather
// than being queued.
func runsInMulti(c *command) bool {
	if c == nil {
		return false
	}
	switch c.name {
	case "exec", "discard", "multi", "watch", "quit":
		return true
	}
	return false
}

// queueable reports whether a command may be part of a transaction: a keyed command
// that runs at once (not one that waits, as DHT.BARRIER), or one of the few others
// that only answer.
func queueable(c *command) bool {
	switch c.name {
	case "ping", "echo", "unwatch":
		return true
	}
	return c.firstKey > 0 && !c.waits && !c.peerOnly
}

// queue checks a command sent inside a transaction as Redis does before queueing it,
// and queues it (+QUEUED) or refuses it, which makes EXEC fail.
func (s *Server) queue(conn *session, c *command, args [][]byte) {
	cl := conn.c
	why := ""
	if c == nil {
		why = unknownCommand(args)
	} else if refused, closing := s.refusal(cl, c); refused != "" {
		why = refused
		if closing {
			conn.Close()
		}
	} else if !c.arityOK(len(args)) || c.pairs && len(args)%2 == 0 {
		why = fmt.Sprintf("ERR wrong number of arguments for '%s' command", c.name)
	} else if cl.restricted {
		why = s.noPerm(cl.user, c, args)
	}
	if why == "" && !queueable(c) {
		why = "ERR Command not allowed inside a transaction"
	}
	if why == "" && c.firstKey > 0 {
		why = s.multiRoute(c, args)
	}
	if why != "" {
		cl.multi.failed = true
		conn.WriteError(why)
		return
	}
	cmd := make([][]byte, len(args))
	for i, a := range args {
		cmd[i] = bytes.Clone(a)
	}
	cl.multi.cmds = append(cl.multi.cmds, cmd)
	conn.WriteString("QUEUED")
}

// multiRoute returns why a keyed command cannot join a transaction here: its keys
// span slots, or (with "routing": "moved") another node serves them.
func (s *Server) multiRoute(c *command, args [][]byte) string {
	slot, cross := commandSlot(c, args)
	if cross {
		return "CROSSSLOT Keys in request don't hash to the same slot"
	}
	return s.movedFor(slot)
}

// movedFor returns the MOVED reply for slot when the cluster answers MOVED and
// another node serves it, else "".
func (s *Server) movedFor(slot int) string {
	if s.cfg.Routing != config.RoutingMoved {
		return ""
	}
	owner := s.slots.Owner(slot)
	if s.repl != nil {
		owner = s.leaderOf(s.slots.Group(slot))
	}
	if owner == nil || owner.Name == s.self.Name {
		return ""
	}
	return fmt.Sprintf("MOVED %d %s", slot, owner.Addr)
}

func cmdMulti(_ *Server, conn *session, _ [][]byte) {
	cl := conn.c
	switch {
	case cl == nil:
		conn.WriteError("ERR MULTI is for clients")
	case cl.multi != nil:
		conn.WriteError("ERR MULTI calls can not be nested")
	default:
		cl.multi = &multiState{}
		conn.WriteString("OK")
	}
}

func cmdDiscard(_ *Server, conn *session, _ [][]byte) {
	cl := conn.c
	if cl == nil || cl.multi == nil {
		conn.WriteError("ERR DISCARD without MULTI")
		return
	}
	cl.multi, cl.watched = nil, nil
	conn.WriteString("OK")
}

func cmdUnwatch(_ *Server, conn *session, _ [][]byte) {
	if conn.c != nil {
		conn.c.watched = nil
	}
	conn.WriteString("OK")
}

// cmdWatch serves WATCH key [key ...]: it records the keys' versions, read at the
// leader of their group. A key watched already keeps its first version.
func cmdWatch(s *Server, conn *session, args [][]byte) {
	cl := conn.c
	switch {
	case cl == nil:
		conn.WriteError("ERR WATCH is for clients")
		return
	case cl.multi != nil:
		conn.WriteError("ERR WATCH inside MULTI is not allowed")
		return
	}
	if why := s.multiRoute(s.commands["watch"], args); why != "" {
		conn.WriteError(why)
		return
	}
	req := append([][]byte{[]byte("DHT.VERSION")}, args[1:]...)
	sub := session{db: s.store}
	s.exec(&sub, req, appendCommand(nil, req), true)
	_, reply := redcon.ReadNextRESP(sub.out)
	if reply.Type != redcon.Array || reply.Count != len(args)-1 {
		conn.WriteRaw(sub.out) // the error that kept the versions from being read
		return
	}
	i := 1
	reply.ForEach(func(v redcon.RESP) bool {
		key := args[i]
		i++
		for _, w := range cl.watched {
			if bytes.Equal(w.key, key) {
				return true
			}
		}
		n, _ := strconv.ParseUint(v.String(), 10, 64)
		cl.watched = append(cl.watched, watchedKey{key: bytes.Clone(key), version: n})
		return true
	})
	conn.WriteString("OK")
}

// cmdDHTVersion answers DHT.VERSION key [key ...] with the keys' versions (see
// store.Version), as decimal strings.
func cmdDHTVersion(_ *Server, conn *session, args [][]byte) {
	conn.WriteArray(len(args) - 1)
	for _, k := range args[1:] {
		conn.WriteBulkString(strconv.FormatUint(conn.db.Version(k), 10))
	}
}

// cmdExec serves EXEC: it checks the transaction as Redis Cluster does (its keys in
// one slot, no command refused), then has the leader of the slot's group run it as
// DHT.EXEC, waiting, up to the failover bound, for transactions across groups that
// hold its keys.
func cmdExec(s *Server, conn *session, _ [][]byte) {
	cl := conn.c
	if cl == nil || cl.multi == nil {
		conn.WriteError("ERR EXEC without MULTI")
		return
	}
	m, watched := cl.multi, cl.watched
	cl.multi, cl.watched = nil, nil
	routeKey, why := s.execRoute(m, watched)
	switch {
	case why != "":
		conn.WriteError(why)
		return
	case m.failed:
		conn.WriteError(errExecAbort)
		return
	case routeKey == nil:
		// Nothing but PING, ECHO and UNWATCH: nothing to send anywhere.
		conn.WriteArray(len(m.cmds))
		for _, cmd := range m.cmds {
			s.lookup(cmd[0]).run(s, conn, cmd)
		}
		return
	}
	args := appendExecArgs(routeKey, watched, m.cmds)
	raw := appendCommand(nil, args)
	deadline := time.Now().Add(s.cfg.Timeouts.Failover.Duration)
	group := s.slots.Group(keyspace.Slot(routeKey))
	for {
		sub := session{db: s.store}
		s.exec(&sub, args, raw, true)
		if !isTxnLocked(sub.out) {
			conn.WriteRaw(sub.out)
			// Its place in the log is not known here: WAIT counts a majority.
			conn.lastWrite(group, 0)
			return
		}
		if !s.waitReleased(group, deadline) {
			conn.WriteError(s.errTxnTimeout())
			return
		}
	}
}

// execHere runs EXEC at once, on the event loop, when it has nothing to wait for:
// without replication, for a transaction of a slot this node owns whose keys no
// transaction across groups holds. It reports whether it ran it; if not, EXEC runs
// where it may wait (cmdExec), the transaction untouched.
func (s *Server) execHere(conn *session) bool {
	cl := conn.c
	if s.repl != nil || cl == nil || cl.multi == nil || cl.multi.failed || !s.members.BarrierPassed() {
		return false
	}
	routeKey, why := s.execRoute(cl.multi, cl.watched)
	if why != "" || routeKey == nil || s.slots.Owner(keyspace.Slot(routeKey)).Name != s.self.Name {
		return false
	}
	w := session{db: s.store, out: conn.out}
	cmdDHTExec(s, &w, appendExecArgs(routeKey, cl.watched, cl.multi.cmds))
	if isTxnLocked(w.out[len(conn.out):]) {
		return false // it ran nothing
	}
	conn.out = w.out
	cl.multi, cl.watched = nil, nil
	return true
}

// execRoute finds a key to route a transaction by (nil when it has none), or why it
// cannot run: its keys span slots, its watched keys another group, or another node
// serves its slot while the cluster answers MOVED.
func (s *Server) execRoute(m *multiState, watched []watchedKey) (routeKey []byte, why string) {
	slot := -1
	for _, cmd := range m.cmds {
		c := s.lookup(cmd[0])
		if c.firstKey == 0 {
			continue
		}
		sl, _ := commandSlot(c, cmd)
		if slot >= 0 && sl != slot {
			return nil, "CROSSSLOT Keys in request don't hash to the same slot"
		}
		if slot < 0 {
			slot, routeKey = sl, cmd[c.firstKey]
		}
	}
	for _, w := range watched {
		if routeKey == nil {
			slot, routeKey = keyspace.Slot(w.key), w.key
		}
		if s.slots.Group(keyspace.Slot(w.key)) != s.slots.Group(slot) {
			return nil, "CROSSSLOT Keys in request don't hash to the same slot"
		}
	}
	if routeKey == nil {
		return nil, ""
	}
	return routeKey, s.movedFor(slot)
}

// appendExecArgs builds DHT.EXEC route-key watched-count [key version]... command...,
// each command a RESP array.
func appendExecArgs(routeKey []byte, watched []watchedKey, cmds [][][]byte) [][]byte {
	args := [][]byte{[]byte("DHT.EXEC"), routeKey, []byte(strconv.Itoa(len(watched)))}
	for _, w := range watched {
		args = append(args, w.key, []byte(strconv.FormatUint(w.version, 10)))
	}
	for _, cmd := range cmds {
		args = append(args, appendCommand(nil, cmd))
	}
	return args
}

// cmdDHTExec runs a transaction (see appendExecArgs) in its group: unless a watched
// key's version changed (then the reply is a null array) it runs every command and
// answers an array of their replies. It holds the group's lock, so no other command
// of the group runs meanwhile; while a transaction across groups holds one of its
// keys it answers errTxnLocked and does nothing.
func cmdDHTExec(s *Server, conn *session, args [][]byte) {
	nw, err := strconv.Atoi(string(args[2]))
	if err != nil || nw < 0 || 3+2*nw > len(args) {
		conn.WriteError("ERR DHT.EXEC: malformed watched keys")
		return
	}
	watched := args[3 : 3+2*nw]
	cmds := make([][][]byte, 0, len(args)-3-2*nw)
	for _, raw := range args[3+2*nw:] {
		complete, cmd, _, left, err := redcon.ReadNextCommand(raw, nil)
		if err != nil || !complete || len(cmd) == 0 || len(left) > 0 || s.lookup(cmd[0]) == nil {
			conn.WriteError("ERR DHT.EXEC: malformed command")
			return
		}
		cmds = append(cmds, cmd)
	}
	tg := s.txn.groups[s.slots.Group(keyspace.Slot(args[1]))]
	tg.mu.Lock()
	defer tg.mu.Unlock()
	for _, cmd := range cmds {
		if c := s.lookup(cmd[0]); c.firstKey > 0 && s.lockedBy(tg, c, cmd, nil) {
			conn.WriteError(errTxnLocked)
			return
		}
	}
	for i := 0; i < len(watched); i += 2 {
		v, err := strconv.ParseUint(string(watched[i+1]), 10, 64)
		if err != nil || conn.db.Version(watched[i]) != v {
			conn.WriteRaw([]byte("*-1\r\n")) // a null array
			return
		}
	}
	conn.WriteArray(len(cmds))
	for _, cmd := range cmds {
		s.lookup(cmd[0]).run(s, conn, cmd)
	}
}

// execRefusal turns the reason EXEC was refused inside a transaction into its reply,
// as Redis does: the transaction is discarded, and the reply says why.
func execRefusal(cl *client, why string) string {
	cl.multi, cl.watched = nil, nil
	return "EXECABORT Transaction discarded because of: " + strings.TrimPrefix(why, "ERR ")
}
