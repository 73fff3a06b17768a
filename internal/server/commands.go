package server

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/keyspace"
)

// command describes one command: its arity and key positions (as Redis's COMMAND
// reports them, so cluster clients route it) and its handler.
type command struct {
	name  string
	arity int // >0: exactly; <0: at least -arity
	flags []string
	// firstKey, lastKey, step locate the keys: lastKey -1 means the last argument.
	firstKey, lastKey, step int
	run                     func(s *Server, conn redcon.Conn, args [][]byte)
	// blocking gives the longest a command may wait, for forwarding it (DHT.BARRIER).
	blocking func(args [][]byte) time.Duration
	// calls counts the command's calls (set by newMetrics).
	calls prometheus.Counter
}

func (c *command) arityOK(n int) bool {
	if c.arity >= 0 {
		return n == c.arity
	}
	return n >= -c.arity
}

// keys calls fn with each key argument of args.
func (c *command) keys(args [][]byte, fn func([]byte)) {
	if c.firstKey == 0 {
		return
	}
	last := c.lastKey
	if last < 0 {
		last = len(args) + last
	}
	for i := c.firstKey; i <= last && i < len(args); i += c.step {
		fn(args[i])
	}
}

func commandTable() map[string]*command {
	cmds := []*command{
		{name: "ping", arity: -1, flags: []string{"fast", "stale"}, run: cmdPing},
		{name: "echo", arity: 2, flags: []string{"fast"}, run: cmdEcho},
		{name: "quit", arity: -1, flags: []string{"fast", "stale"}, run: cmdQuit},
		{name: "get", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdGet},
		{name: "set", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, run: cmdSet},
		{name: "setnx", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdSetNX},
		{name: "del", arity: -2, flags: []string{"write"}, firstKey: 1, lastKey: -1, step: 1, run: cmdDel},
		{name: "exists", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: -1, step: 1, run: cmdExists},
		{name: "ttl", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdTTL},
		{name: "pttl", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdTTL},
		{name: "mget", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: -1, step: 1, run: cmdMGet},
		{name: "mset", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: -1, step: 2, run: cmdMSet},
		{name: "msetnx", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: -1, step: 2, run: cmdMSet},
		{name: "dbsize", arity: 1, flags: []string{"readonly", "fast"}, run: cmdDBSize},
		{name: "info", arity: -1, flags: []string{"stale"}, run: cmdInfo},
		{name: "cluster", arity: -2, flags: []string{"stale"}, run: cmdCluster},
		{name: "command", arity: -1, flags: []string{"stale"}, run: cmdCommand},
		{name: "hello", arity: -1, flags: []string{"fast", "stale"}, run: cmdHello},
		{name: "client", arity: -2, flags: []string{"stale"}, run: cmdClient},
		{name: "config", arity: -2, flags: []string{"stale"}, run: cmdConfig},
		{name: "select", arity: 2, flags: []string{"fast", "stale"}, run: cmdSelect},
		{name: "readonly", arity: 1, flags: []string{"fast"}, run: cmdOK},
		{name: "readwrite", arity: 1, flags: []string{"fast"}, run: cmdOK},
		{name: "asking", arity: 1, flags: []string{"fast"}, run: cmdOK},
		{name: "dht.ping", arity: -2, flags: []string{"fast", "stale"}, run: cmdDHTPing},
		{name: "dht.keycount", arity: 1, flags: []string{"fast", "stale"}, run: cmdKeyCount},
		{name: "dht.barrier", arity: 4, flags: []string{"write"}, firstKey: 1, lastKey: 1, step: 1, run: cmdBarrier, blocking: barrierWait},
	}
	m := make(map[string]*command, len(cmds))
	for _, c := range cmds {
		m[c.name] = c
	}
	return m
}

// lookup finds a command by name, case-insensitively, without allocating.
func (s *Server) lookup(name []byte) *command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return s.commands[string(buf[:len(name)])]
}

// maxPendingOutput bounds the replies a connection holds before they are sent: a
// client that pipelines many large reads gets them written out as they pile up, so its
// replies never sit in memory all at once.
const maxPendingOutput = 8 << 20

// handle is the RESP handler: validate, route, run.
func (s *Server) handle(conn redcon.Conn, cmd redcon.Command) {
	st, _ := conn.Context().(*clientState)
	if st != nil && st.broken {
		return
	}
	s.dispatch(conn, cmd)
	if w := redcon.BaseWriter(conn); w != nil && len(w.Buffer()) > maxPendingOutput {
		if err := w.Flush(); err != nil && st != nil {
			st.broken = true
			_ = conn.Close()
		}
	}
}

// dispatch validates one command, routes it by slot and runs it here or elsewhere.
func (s *Server) dispatch(conn redcon.Conn, cmd redcon.Command) {
	c := s.lookup(cmd.Args[0])
	if c == nil {
		s.metrics.unknown.Inc()
		conn.WriteError(unknownCommand(cmd.Args))
		return
	}
	c.calls.Inc()
	if !c.arityOK(len(cmd.Args)) || (c.name == "mset" || c.name == "msetnx") && len(cmd.Args)%2 == 0 {
		conn.WriteError(fmt.Sprintf("ERR wrong number of arguments for '%s' command", c.name))
		return
	}
	if c.firstKey > 0 && !s.route(conn, c, cmd) {
		return
	}
	c.run(s, conn, cmd.Args)
}

// route decides where a keyed command runs. It returns true when it runs here; otherwise
// it has already answered (CROSSSLOT, CLUSTERDOWN, MOVED) or forwarded the command.
func (s *Server) route(conn redcon.Conn, c *command, cmd redcon.Command) bool {
	slot, cross := -1, false
	c.keys(cmd.Args, func(k []byte) {
		sl := keyspace.Slot(k)
		if slot >= 0 && sl != slot {
			cross = true
		}
		slot = sl
	})
	if cross {
		conn.WriteError("CROSSSLOT Keys in request don't hash to the same slot")
		return false
	}
	owner := s.slots.Owner(slot)
	if why := s.unavailable(owner); why != "" {
		conn.WriteError(why)
		return false
	}
	if owner.Name == s.self.Name {
		return true
	}
	if s.cfg.Routing == config.RoutingMoved {
		conn.WriteError(fmt.Sprintf("MOVED %d %s", slot, owner.Addr))
		return false
	}
	var extra time.Duration
	if c.blocking != nil {
		extra = c.blocking(cmd.Args)
	}
	s.forward(conn, owner, cmd.Raw, extra)
	return false
}

// unknownCommand formats Redis's error for an unknown command.
func unknownCommand(args [][]byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ERR unknown command '%s', with args beginning with: ", truncate(args[0], 128))
	for _, a := range args[1:] {
		if b.Len() > 1024 {
			break
		}
		fmt.Fprintf(&b, "'%s' ", truncate(a, 128))
	}
	return b.String()
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
}
