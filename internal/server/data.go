package server

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/cluster"
	"github.com/dhtkv/dht/internal/store"
)

const (
	errSyntax = "ERR syntax error"
	errNotInt = "ERR value is not an integer or out of range"
)

func cmdOK(_ *Server, conn *session, _ [][]byte) { conn.WriteString("OK") }

func cmdPing(_ *Server, conn *session, args [][]byte) {
	switch len(args) {
	case 1:
		conn.WriteString("PONG")
	case 2:
		conn.WriteBulk(args[1])
	default:
		conn.WriteError("ERR wrong number of arguments for 'ping' command")
	}
}

func cmdEcho(_ *Server, conn *session, args [][]byte) { conn.WriteBulk(args[1]) }

// cmdTime is TIME: the node's clock, as Unix seconds and the microseconds into the
// second.
func cmdTime(_ *Server, conn *session, _ [][]byte) {
	now := time.Now()
	conn.WriteArray(2)
	conn.WriteBulkString(strconv.FormatInt(now.Unix(), 10))
	conn.WriteBulkString(strconv.Itoa(now.Nanosecond() / 1000))
}

func cmdQuit(_ *Server, conn *session, _ [][]byte) {
	conn.WriteString("OK")
	conn.Close()
}

func cmdSelect(_ *Server, conn *session, args [][]byte) {
	n, err := strconv.Atoi(string(args[1]))
	switch {
	case err != nil:
		conn.WriteError(errNotInt)
	case n != 0:
		conn.WriteError("ERR SELECT is not allowed in cluster mode")
	default:
		conn.WriteString("OK")
	}
}

// get reads key for a command that touches what it reads (GET, STRLEN, ...): a
// client in CLIENT NO-TOUCH mode reads without touching, as Redis's do.
func (w *session) get(key []byte) ([]byte, bool) {
	if w.noTouch() {
		return w.db.Peek(key)
	}
	return w.db.Get(key)
}

// getMany is get for MGET's keys, read as of one instant.
func (w *session) getMany(keys [][]byte) ([][]byte, []bool) {
	if w.noTouch() {
		return w.db.PeekMany(keys)
	}
	return w.db.GetMany(keys)
}

// noTouch reports whether the session's client is in CLIENT NO-TOUCH mode.
func (w *session) noTouch() bool { return w.c != nil && w.c.noTouch.Load() }

func cmdGet(s *Server, conn *session, args [][]byte) {
	v, ok := conn.get(args[1])
	conn.hit(ok)
	if ok {
		conn.WriteBulk(v)
		return
	}
	conn.WriteNull()
}

// parseSet parses SET's options: NX|XX, GET, EX|PX|EXAT|PXAT|KEEPTTL. As in Redis, an
// option may be repeated (the last expiry wins) but not combined with its opposite.
func parseSet(args [][]byte, now time.Time) (store.SetArgs, string) {
	var a store.SetArgs
	expiry := "" // the expiry option given: EX, PX, EXAT, PXAT or KEEPTTL
	for i := 3; i < len(args); i++ {
		opt := strings.ToUpper(string(args[i]))
		switch opt {
		case "NX", "XX":
			mode := store.SetIfAbsent
			if opt == "XX" {
				mode = store.SetIfPresent
			}
			if a.Mode != store.SetAlways && a.Mode != mode {
				return a, errSyntax
			}
			a.Mode = mode
		case "GET":
			a.Get = true
		case "KEEPTTL":
			if expiry != "" && expiry != opt {
				return a, errSyntax
			}
			a.KeepTTL, expiry = true, opt
		case "EX", "PX", "EXAT", "PXAT":
			if expiry != "" && expiry != opt || i+1 >= len(args) {
				return a, errSyntax
			}
			i++
			n, err := strconv.ParseInt(string(args[i]), 10, 64)
			if err != nil {
				return a, errNotInt
			}
			if n <= 0 || n > 1<<46 {
				return a, "ERR invalid expire time in 'set' command"
			}
			expiry = opt
			switch opt {
			case "EX":
				a.TTL = scaleTTL(n, time.Second)
			case "PX":
				a.TTL = scaleTTL(n, time.Millisecond)
			case "EXAT":
				a.TTL = time.Unix(n, 0).Sub(now)
			case "PXAT":
				a.TTL = time.UnixMilli(n).Sub(now)
			}
			if a.TTL <= 0 {
				// An expiry in the past: the key is written and gone at once.
				a.TTL = time.Nanosecond
			}
		default:
			return a, errSyntax
		}
	}
	return a, ""
}

// scaleTTL returns n units, saturating where a Duration would overflow (past 292
// years) rather than wrapping into the past.
func scaleTTL(n int64, unit time.Duration) time.Duration {
	if n > math.MaxInt64/int64(unit) {
		return math.MaxInt64
	}
	return time.Duration(n) * unit
}

func cmdSet(s *Server, conn *session, args [][]byte) {
	var a store.SetArgs
	if len(args) > 3 {
		var errMsg string
		if a, errMsg = parseSet(args, conn.db.Now()); errMsg != "" {
			conn.WriteError(errMsg)
			return
		}
	}
	r := conn.db.Set(args[1], args[2], a)
	switch {
	case a.Get && r.HadOld:
		conn.WriteBulk(r.Old)
	case a.Get:
		conn.WriteNull()
	case r.Written:
		conn.WriteString("OK")
	default:
		conn.WriteNull()
	}
}

func cmdSetNX(s *Server, conn *session, args [][]byte) {
	r := conn.db.Set(args[1], args[2], store.SetArgs{Mode: store.SetIfAbsent})
	conn.WriteInt(boolInt(r.Written))
}

func cmdDel(s *Server, conn *session, args [][]byte) {
	conn.WriteInt(conn.db.Del(args[1:]...))
}

func cmdExists(s *Server, conn *session, args [][]byte) {
	n := conn.db.Exists(args[1:]...)
	conn.hits(n, len(args)-1-n)
	conn.WriteInt(n)
}

// cmdTouch is EXISTS that touches the keys, CLIENT NO-TOUCH or not.
func cmdTouch(s *Server, conn *session, args [][]byte) {
	n := conn.db.Touch(args[1:]...)
	conn.hits(n, len(args)-1-n)
	conn.WriteInt(n)
}

func cmdTTL(s *Server, conn *session, args [][]byte) {
	ttl, exists, hasExpiry := conn.db.TTL(args[1])
	conn.hit(exists)
	switch {
	case !exists:
		conn.WriteInt(-2)
	case !hasExpiry:
		conn.WriteInt(-1)
	case len(args[0]) == 4: // PTTL
		conn.WriteInt64(ttl.Milliseconds())
	default:
		conn.WriteInt64(int64((ttl + time.Second/2) / time.Second))
	}
}

// cmdMGet reads every key as of one instant, so that it sees an MSET whole or not
// at all.
func cmdMGet(s *Server, conn *session, args [][]byte) {
	vals, found := conn.getMany(args[1:])
	conn.WriteArray(len(vals))
	for i, v := range vals {
		conn.hit(found[i])
		if found[i] {
			conn.WriteBulk(v)
		} else {
			conn.WriteNull()
		}
	}
}

// cmdMSet serves MSET and MSETNX, both atomic (all keys share one slot here).
func cmdMSet(s *Server, conn *session, args [][]byte) {
	pairs := make([][2][]byte, 0, (len(args)-1)/2)
	for i := 1; i+1 < len(args); i += 2 {
		pairs = append(pairs, [2][]byte{args[i], args[i+1]})
	}
	if len(args[0]) == 6 { // MSETNX
		conn.WriteInt(boolInt(conn.db.MSetNX(pairs)))
		return
	}
	conn.db.MSet(pairs)
	conn.WriteString("OK")
}

// countGroup counts the keys of group g's slot range.
func (s *Server) countGroup(g int) (int64, string) {
	r := s.slots.Range(g)
	var ask []*cluster.Member
	for _, m := range s.slots.Replicas(g) {
		if m.Name == s.self.Name {
			return int64(s.store.CountRange(r)), ""
		}
		if s.members.State(m.Name) == cluster.Up {
			ask = append(ask, m)
		}
	}
	if len(ask) == 0 {
		return 0, fmt.Sprintf("%s: no node holding slot range %s is up", errClusterDown, r)
	}
	req := redcon.AppendArray(nil, 2)
	req = redcon.AppendBulkString(req, "DHT.KEYCOUNT")
	req = redcon.AppendBulkString(req, strconv.Itoa(g))
	m := ask[0]
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeouts.PeerRequest.Duration)
	reply, err := s.peers[m.Name].data.Do(ctx, req)
	cancel()
	if err != nil {
		return 0, fmt.Sprintf("%s: node %s (%s) did not answer: %v", errClusterDown, m.Name, m.Addr, err)
	}
	_, rep := redcon.ReadNextRESP(reply)
	if rep.Type != redcon.Integer {
		return 0, fmt.Sprintf("ERR node %s answered DHT.KEYCOUNT with %q", m.Name, reply)
	}
	return rep.Int(), ""
}

// cmdKeyCount counts the keys of the given groups' slot ranges held here, or of every
// key held here.
func cmdKeyCount(s *Server, conn *session, args [][]byte) {
	if len(args) == 1 {
		conn.WriteInt(s.store.Len())
		return
	}
	n := 0
	for _, a := range args[1:] {
		g, err := strconv.Atoi(string(a))
		if err != nil || g < 0 || g >= len(s.slots.Members()) {
			conn.WriteError("ERR DHT.KEYCOUNT: no such group " + truncate(a, 32))
			return
		}
		n += s.store.CountRange(s.slots.Range(g))
	}
	conn.WriteInt(n)
}

// cmdDHTPing answers a peer's probe with this node's config digest.
// A probe names its sender and carries the sender's digest, which tells this node, in
// turn, that the sender is up.
func cmdDHTPing(s *Server, conn *session, args [][]byte) {
	if len(args) == 3 {
		if m, ok := s.slots.Member(string(args[1])); ok {
			if tr, changed := s.members.Heard(m.Name, string(args[2])); changed {
				s.logTransition(m, tr)
			}
		}
	}
	if s.repl != nil {
		conn.WriteArray(2)
		conn.WriteBulkString(s.digest)
		conn.WriteBulkString(s.groupStatus())
		return
	}
	conn.WriteBulkString(s.digest)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
