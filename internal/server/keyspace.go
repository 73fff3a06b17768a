package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/dhtkv/dht/internal/glob"
	"github.com/dhtkv/dht/internal/keyspace"
	"github.com/dhtkv/dht/internal/store"
)

// The commands over the keyspace, as Redis Cluster scopes them: DBSIZE, KEYS, SCAN,
// RANDOMKEY, FLUSHALL, FLUSHDB and INFO keyspace answer for the slots this node serves
// as primary, that is the slot ranges whose group it leads (without replication, the
// ranges it owns). Cluster tools add them up over the primaries, as `redis-cli
// --cluster info` does; INFO's cluster section gives the whole cluster's count.

// servedGroups returns the groups whose slots this node serves as primary. In a
// replicated cluster it waits for a read index of each group it leads, so that what
// it then reads of them is linearizable; a group whose lead moved meanwhile is left
// out, as one it never led.
func (s *Server) servedGroups() []int {
	var led []int
	for g := range s.slots.Members() {
		if s.leads(g) {
			led = append(led, g)
		}
	}
	if s.repl == nil || len(led) == 0 {
		return led
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeouts.Failover.Duration)
	defer cancel()
	reads := make([]error, len(led))
	for i, g := range led {
		r := s.repl.ReadIndex(g)
		reads[i] = r.Wait(ctx)
	}
	served := led[:0]
	for i, g := range led {
		if reads[i] == nil {
			served = append(served, g)
		}
	}
	return served
}

// cmdDBSize counts the keys of the slots this node serves as primary.
func cmdDBSize(s *Server, conn *session, _ [][]byte) {
	n := 0
	for _, g := range s.servedGroups() {
		n += s.store.CountRange(s.slots.Range(g))
	}
	conn.WriteInt(n)
}

// cmdKeys serves KEYS pattern over the slots this node serves as primary.
func cmdKeys(s *Server, conn *session, args [][]byte) {
	pattern := args[1]
	var match func(string) bool
	if string(pattern) != "*" {
		match = func(k string) bool { return glob.Match(pattern, []byte(k)) }
	}
	var keys []string
	for _, g := range s.servedGroups() {
		keys = s.store.Keys(keys, s.slots.Range(g), match)
	}
	conn.WriteArray(len(keys))
	for _, k := range keys {
		conn.WriteBulkString(k)
	}
}

// cmdRandomKey serves RANDOMKEY: a key of a slot this node serves as primary.
func cmdRandomKey(s *Server, conn *session, _ [][]byte) {
	groups := s.servedGroups()
	start := 0
	if len(groups) > 0 {
		start = rand.IntN(len(groups))
	}
	for i := range groups {
		if k, ok := s.store.RandomKey(s.slots.Range(groups[(start+i)%len(groups)])); ok {
			conn.WriteBulkString(k)
			return
		}
	}
	conn.WriteNull()
}

// scanArgs are SCAN's options.
type scanArgs struct {
	cursor  uint64
	count   int
	pattern []byte // nil: every key
	typ     []byte // nil: every type
}

// parseScan reads SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] as Redis 7.0
// does, and returns the error reply for arguments it refuses.
func parseScan(args [][]byte) (scanArgs, string) {
	a := scanArgs{count: 10}
	c, ok := parseCursor(args[1])
	if !ok {
		return a, "ERR invalid cursor"
	}
	a.cursor = c
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return a, errSyntax
		}
		switch strings.ToUpper(string(args[i])) {
		case "COUNT":
			n, err := strconv.ParseInt(string(args[i+1]), 10, 64)
			switch {
			case err != nil:
				return a, errNotInt
			case n < 1:
				return a, errSyntax
			}
			a.count = int(min(n, 1<<30))
		case "MATCH":
			a.pattern = args[i+1]
			if string(a.pattern) == "*" {
				a.pattern = nil
			}
		case "TYPE":
			a.typ = args[i+1]
		default:
			return a, errSyntax
		}
	}
	return a, ""
}

// parseCursor reads a SCAN cursor as Redis does, with C's strtoul: an optional sign
// ("-1" is the largest cursor) and digits, or nothing at all (the cursor 0), but no
// leading space and nothing past 64 bits.
func parseCursor(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	neg := b[0] == '-'
	if b[0] == '-' || b[0] == '+' {
		b = b[1:]
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil || b[0] < '0' || b[0] > '9' {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// The SCAN cursor is the slot to go on with in its top bits and the scan position
// within the slot (store.ScanPosition) below; 0 starts, and ends, a walk of the
// table in its scan order (see store.Scan).
func scanCursor(slot int, pos uint64) uint64 {
	if slot >= keyspace.Slots {
		return 0
	}
	return uint64(slot)<<store.ScanBits | pos
}

// cmdScan serves SCAN over the slots this node serves as primary, in the store's
// scan order. A key present in them from the first call to the last is returned
// exactly once.
func cmdScan(s *Server, conn *session, args [][]byte) {
	a, why := parseScan(args)
	if why != "" {
		conn.WriteError(why)
		return
	}
	slot, pos := int(a.cursor>>store.ScanBits), a.cursor&(1<<store.ScanBits-1)
	var ranges []keyspace.Range
	for _, g := range s.servedGroups() {
		ranges = append(ranges, s.slots.Range(g))
	}
	served := func(slot int) bool {
		for _, r := range ranges {
			if r.Contains(slot) {
				return true
			}
		}
		return false
	}
	if len(ranges) == 0 {
		slot = keyspace.Slots
	}
	var keys []string
	for slot < keyspace.Slots && len(keys) < a.count {
		keys, slot, pos = s.store.Scan(keys, slot, pos, a.count-len(keys), served)
	}
	conn.WriteArray(2)
	conn.WriteBulkString(strconv.FormatUint(scanCursor(slot, pos), 10))
	n := 0
	for _, k := range keys {
		if scanKeeps(a, k) {
			n++
		}
	}
	conn.WriteArray(n)
	for _, k := range keys {
		if scanKeeps(a, k) {
			conn.WriteBulkString(k)
		}
	}
}

// scanKeeps reports whether SCAN's MATCH and TYPE let key through. Every key is a
// string.
func scanKeeps(a scanArgs, key string) bool {
	if a.typ != nil && !strings.EqualFold(string(a.typ), "string") {
		return false
	}
	return a.pattern == nil || glob.Match(a.pattern, []byte(key))
}

// cmdFlushAll serves FLUSHALL and FLUSHDB [ASYNC|SYNC]: it empties the slots this
// node serves as primary, each group's through its log (DHT.FLUSH), so that its
// other members, and a restart, empty them too. Both ways are synchronous here.
func cmdFlushAll(s *Server, conn *session, args [][]byte) {
	if len(args) > 2 || len(args) == 2 && !strings.EqualFold(string(args[1]), "async") && !strings.EqualFold(string(args[1]), "sync") {
		conn.WriteError(errSyntax)
		return
	}
	for _, g := range s.servedGroups() {
		if why := s.flushGroup(g); why != "" {
			conn.WriteError(why)
			return
		}
	}
	conn.WriteString("OK")
}

// flushGroup empties group g's slots: through its log in a replicated cluster,
// here otherwise. It waits, up to the failover bound, for the transactions that
// hold keys of the group, and turns new ones away meanwhile.
func (s *Server) flushGroup(g int) string {
	tg := s.txn.groups[g]
	tg.wmu.Lock()
	tg.flushes++
	tg.wmu.Unlock()
	defer func() {
		tg.wmu.Lock()
		tg.flushes--
		tg.wmu.Unlock()
	}()
	deadline := time.Now().Add(s.cfg.Timeouts.Failover.Duration)
	args := [][]byte{[]byte("DHT.FLUSH"), []byte(strconv.Itoa(g))}
	for {
		var reply []byte
		if s.repl == nil {
			w := session{db: s.store}
			cmdDHTFlush(s, &w, args)
			reply = w.out
		} else {
			ctx, cancel := context.WithTimeout(s.ctx, time.Until(deadline))
			p := s.repl.Propose(g, appendCommand(nil, args))
			s.metrics.proposals.Inc()
			res, err := p.Wait(ctx)
			cancel()
			switch {
			case definite(err):
				return "" // the lead moved: the slots are no longer this node's
			case err != nil:
				return s.errUnknownOutcome(g)
			}
			reply = res
		}
		if !isTxnLocked(reply) {
			return ""
		}
		if !s.waitReleased(g, deadline) {
			return s.errTxnTimeout()
		}
	}
}

// cmdDHTFlush empties a group's slots, once no transaction holds keys of the
// group; while one does it answers errTxnLocked. Holding the group's lock, it runs
// between the commands that read or write the group's keys, never during one.
func cmdDHTFlush(s *Server, conn *session, args [][]byte) {
	g, err := strconv.Atoi(string(args[1]))
	if err != nil || g < 0 || g >= len(s.txn.groups) {
		conn.WriteError("ERR DHT.FLUSH: no such group " + truncate(args[1], 32))
		return
	}
	tg := s.txn.groups[g]
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.p.Prepared() > 0 {
		conn.WriteError(errTxnLocked)
		return
	}
	conn.db.FlushRange(s.slots.Range(g))
	conn.WriteString("OK")
}

// keyspaceInfo is INFO's Keyspace section: the slots this node serves as primary.
// Redis leaves the database out while it has no keys.
func (s *Server) keyspaceInfo() []string {
	var st store.RangeStats
	for _, g := range s.servedGroups() {
		st.Add(s.store.Stats(s.slots.Range(g)))
	}
	if st.Keys == 0 {
		return nil
	}
	var avg int64
	if st.Expires > 0 {
		avg = st.TTLSum.Milliseconds() / int64(st.Expires)
	}
	return []string{fmt.Sprintf("db0:keys=%d,expires=%d,avg_ttl=%d", st.Keys, st.Expires, avg)}
}

// clusterKeys counts the keys of the whole cluster, range by range (see
// countGroup), for INFO's cluster section; -1 when a range could not be counted.
func (s *Server) clusterKeys() int64 {
	if !s.members.BarrierPassed() {
		return -1
	}
	var total int64
	for g := range s.slots.Members() {
		n, why := s.countGroup(g)
		if why != "" {
			return -1
		}
		total += n
	}
	return total
}
