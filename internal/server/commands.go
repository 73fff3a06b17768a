package server

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dhtkv/dht/internal/cluster"
	"github.com/dhtkv/dht/internal/config"
)

// command describes one command: its arity and key positions (as Redis's COMMAND
// reports them, so cluster clients route it) and its handler.
type command struct {
	name  string
	arity int // >0: exactly; <0: at least -arity
	flags []string
	// firstKey, lastKey, step locate the keys: lastKey -1 means the last argument.
	firstKey, lastKey, step int
	run                     func(s *Server, conn *session, args [][]byte)
	// waits is set for commands that wait for other nodes or clients, which never
	// run on an event loop.
	waits bool
	// blocking gives the longest a command may wait, for forwarding it (DHT.BARRIER).
	blocking func(args [][]byte) time.Duration
	// stats are the command's counters for INFO commandstats (a keyed
	// subcommand's are its subcommand's).
	stats *cmdStats
	// subcommands are a container command's subcommands, by lower-case name.
	subcommands map[string]*subcommand
	// noSlowlog is set for the commands the slow log leaves out: those that
	// carry passwords (the ones allowed before AUTH), those that wait on purpose,
	// and the nodes' own.
	noSlowlog bool
	// writes is set for commands flagged "write": in a replicated cluster they go
	// through the log, the others are reads.
	writes bool
	// pairs is set for commands whose arguments after the name are key-value pairs.
	pairs bool
	// noAuth is set for the commands a client may send before it authenticates.
	noAuth bool
	// peerOnly is set for the commands only other nodes may send, on a connection
	// that authenticated as a node's (DHT.AUTHPEER).
	peerOnly bool
	// multiGroup is set for the multi-key commands that may name keys of several
	// groups: a transaction across them (see txn.go).
	multiGroup bool
	// here is set for the commands that act on the client's connection (WATCH):
	// they run on the node the client is connected to, whatever slots their keys
	// are in.
	here bool
	// aclID numbers the command for the users' permissions; subs number the
	// subcommands they know apart (see aclCategories).
	aclID int
	subs  map[string]int
}

// subcommand is one subcommand of a container command (CLIENT LIST), with its own
// counters.
type subcommand struct {
	name  string // full: "client|list"
	arity int
	stats cmdStats
	// cmd is set for a subcommand that names a key (OBJECT ENCODING): it runs as
	// a command of its own, routed by its key.
	cmd *command
}

// containerSubcommands lists, by container command, the subcommands dht has with
// their arity (as a command's: the command's name and the subcommand's count).
func containerSubcommands() map[string]string {
	return map[string]string{
		"acl":     "cat:-2 getuser:3 help:2 list:2 users:2 whoami:2",
		"client":  "getname:2 help:2 id:2 info:2 kill:-3 list:-2 no-evict:3 no-touch:3 reply:3 setinfo:4 setname:3",
		"cluster": "countkeysinslot:3 help:2 info:2 keyslot:3 myid:2 nodes:2 shards:2 slots:2",
		"command": "count:2 docs:-2 getkeys:-4 getkeysandflags:-4 help:2 info:-2 list:-2",
		"config":  "get:-3 help:2 resetstat:2 rewrite:2 set:-4",
		"memory":  "help:2 stats:2 usage:-3",
		"object":  "encoding:3 freq:3 help:2 idletime:3 refcount:3",
		"slowlog": "get:-2 help:2 len:2 reset:2",
		"latency": "doctor:2 graph:3 help:2 histogram:-2 history:3 latest:2 reset:-2",
	}
}

// sub finds the subcommand args name, or nil.
func (c *command) sub(args [][]byte) *subcommand {
	if c.subcommands == nil || len(args) < 2 {
		return nil
	}
	return c.subcommands[strings.ToLower(string(args[1]))]
}

// statsFor returns the counters a call with args counts in: its subcommand's, or
// the command's.
func (c *command) statsFor(args [][]byte) *cmdStats {
	if sc := c.sub(args); sc != nil {
		return &sc.stats
	}
	return c.stats
}

func (c *command) arityOK(n int) bool { return arityOK(c.arity, n) }

// arityOK reports whether n arguments (the name included) fit arity: exactly arity
// when it is positive, at least -arity when it is negative.
func arityOK(arity, n int) bool {
	if arity >= 0 {
		return n == arity
	}
	return n >= -arity
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
		{name: "time", arity: 1, flags: []string{"fast", "stale"}, run: cmdTime},
		{name: "quit", arity: -1, flags: []string{"fast", "stale"}, run: cmdQuit, noAuth: true},
		{name: "auth", arity: -2, flags: []string{"fast", "stale"}, run: cmdAuth, noAuth: true},
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
		{name: "incr", arity: 2, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdIncr},
		{name: "decr", arity: 2, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdDecr},
		{name: "incrby", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdIncrBy},
		{name: "decrby", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdDecrBy},
		{name: "incrbyfloat", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdIncrByFloat},
		{name: "append", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdAppend},
		{name: "strlen", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdStrlen},
		{name: "getrange", arity: 4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, run: cmdGetRange},
		{name: "substr", arity: 4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, run: cmdGetRange},
		{name: "setrange", arity: 4, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, run: cmdSetRange},
		{name: "getdel", arity: 2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdGetDel},
		{name: "getex", arity: -2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdGetEx},
		{name: "getset", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdGetSet},
		{name: "setex", arity: 4, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, run: cmdSetEx},
		{name: "psetex", arity: 4, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, run: cmdSetEx},
		{name: "lcs", arity: -3, flags: []string{"readonly"}, firstKey: 1, lastKey: 2, step: 1, run: cmdLCS},
		{name: "expire", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdExpire},
		{name: "pexpire", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdExpire},
		{name: "expireat", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdExpire},
		{name: "pexpireat", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdExpire},
		{name: "expiretime", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdExpireTime},
		{name: "pexpiretime", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdExpireTime},
		{name: "persist", arity: 2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdPersist},
		{name: "type", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, run: cmdType},
		{name: "touch", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: -1, step: 1, run: cmdTouch},
		{name: "copy", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 2, step: 1, run: cmdCopy},
		{name: "rename", arity: 3, flags: []string{"write"}, firstKey: 1, lastKey: 2, step: 1, run: cmdRename},
		{name: "renamenx", arity: 3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 2, step: 1, run: cmdRename},
		{name: "unlink", arity: -2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: -1, step: 1, run: cmdDel},
		{name: "dbsize", arity: 1, flags: []string{"readonly", "fast"}, run: cmdDBSize, waits: true},
		{name: "keys", arity: 2, flags: []string{"readonly"}, run: cmdKeys, waits: true},
		{name: "scan", arity: -2, flags: []string{"readonly"}, run: cmdScan, waits: true},
		{name: "randomkey", arity: 1, flags: []string{"readonly"}, run: cmdRandomKey, waits: true},
		{name: "flushall", arity: -1, flags: []string{"write"}, run: cmdFlushAll, waits: true},
		{name: "flushdb", arity: -1, flags: []string{"write"}, run: cmdFlushAll, waits: true},
		{name: "dht.flush", arity: 2, flags: []string{"write"}, run: cmdDHTFlush, peerOnly: true},
		{name: "multi", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, run: cmdMulti},
		{name: "exec", arity: 1, flags: []string{"noscript", "loading", "stale", "skip_slowlog"}, run: cmdExec, waits: true},
		{name: "discard", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, run: cmdDiscard},
		{name: "watch", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, firstKey: 1, lastKey: -1, step: 1, run: cmdWatch, waits: true, here: true},
		{name: "unwatch", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, run: cmdUnwatch},
		{name: "dht.version", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: -1, step: 1, run: cmdDHTVersion, peerOnly: true},
		{name: "dht.exec", arity: -4, flags: []string{"write"}, firstKey: 1, lastKey: 1, step: 1, run: cmdDHTExec, peerOnly: true},
		{name: "info", arity: -1, flags: []string{"stale"}, run: cmdInfo, waits: true},
		{name: "cluster", arity: -2, flags: []string{"stale"}, run: cmdCluster},
		{name: "command", arity: -1, flags: []string{"stale"}, run: cmdCommand},
		{name: "hello", arity: -1, flags: []string{"fast", "stale"}, run: cmdHello, noAuth: true},
		{name: "client", arity: -2, flags: []string{"stale"}, run: cmdClient},
		{name: "config", arity: -2, flags: []string{"stale"}, run: cmdConfig},
		{name: "object", arity: -2, flags: []string{}, run: cmdObject},
		{name: "memory", arity: -2, flags: []string{}, run: cmdMemory},
		{name: "slowlog", arity: -2, flags: []string{}, run: cmdSlowlog},
		{name: "latency", arity: -2, flags: []string{}, run: cmdLatency},
		{name: "acl", arity: -2, flags: []string{}, run: cmdACL},
		{name: "select", arity: 2, flags: []string{"fast", "stale"}, run: cmdSelect},
		{name: "readonly", arity: 1, flags: []string{"fast"}, run: cmdReadonly},
		{name: "readwrite", arity: 1, flags: []string{"fast"}, run: cmdReadonly},
		{name: "asking", arity: 1, flags: []string{"fast"}, run: cmdOK},
		{name: "dht.authpeer", arity: -2, flags: []string{"fast", "stale"}, run: cmdAuthPeer, noAuth: true, waits: true},
		{name: "dht.ping", arity: -2, flags: []string{"fast", "stale"}, run: cmdDHTPing, peerOnly: true},
		{name: "dht.raft", arity: -3, flags: []string{"fast", "stale"}, run: cmdRaft, peerOnly: true},
		{name: "wait", arity: 3, flags: []string{}, run: cmdWait, waits: true},
		{name: "dht.keycount", arity: -1, flags: []string{"fast", "stale"}, run: cmdKeyCount, peerOnly: true},
		{name: "dht.txn", arity: -4, flags: []string{"write"}, firstKey: 2, lastKey: 2, step: 1, run: cmdTxn, peerOnly: true},
		{name: "dht.barrier", arity: 4, flags: []string{"write"}, firstKey: 1, lastKey: 1, step: 1, run: cmdBarrier, waits: true, blocking: barrierWait},
	}
	m := make(map[string]*command, len(cmds))
	subs := containerSubcommands()
	for _, c := range cmds {
		c.stats = &cmdStats{}
		for _, f := range strings.Fields(subs[c.name]) {
			sub, arity, _ := strings.Cut(f, ":")
			if c.subcommands == nil {
				c.subcommands = map[string]*subcommand{}
			}
			n, _ := strconv.Atoi(arity)
			c.subcommands[sub] = &subcommand{name: c.name + "|" + sub, arity: n}
		}
		c.writes = slices.Contains(c.flags, "write")
		c.noSlowlog = c.noAuth || c.peerOnly || c.blocking != nil || c.name == "wait"
		c.pairs = c.step == 2
		c.multiGroup = crossGroupCommand(c.name)
		m[c.name] = c
	}
	for _, kc := range keyedSubcommands() {
		parent, sub, _ := strings.Cut(kc.name, "|")
		sc := m[parent].subcommands[sub]
		sc.cmd, kc.stats = kc, &sc.stats
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

// exec validates one command, routes it by slot and runs it here or elsewhere. On an
// event loop (mayWait false) it runs only what answers at once, and returns true,
// having done nothing, for a command that has to wait.
func (s *Server) exec(conn *session, args [][]byte, raw []byte, mayWait bool) (wait bool) {
	c := s.lookup(args[0])
	if cl := conn.c; cl != nil && cl.denied && cl.peer == "" && (c == nil || c.name != "dht.authpeer") {
		conn.WriteError(errDenied)
		conn.Close()
		return false
	}
	if cl := conn.c; cl != nil && cl.multi != nil && !runsInMulti(c) {
		s.queue(conn, c, args)
		return false
	}
	var sub *subcommand
	if c != nil && c.subcommands != nil {
		if sub = c.sub(args); sub != nil && sub.cmd != nil {
			c, sub = sub.cmd, nil
		}
	}
	if c == nil {
		s.metrics.unknown.Inc()
		why := unknownCommand(args)
		s.countError([]byte(why))
		conn.WriteError(why)
		return false
	}
	var (
		owner *cluster.Member
		why   string // the error reply, if the command cannot run
		cross bool   // the keys are in several groups
	)
	unknownSub := sub == nil && c.subcommands != nil && len(args) > 1
	refused, closing := s.refusal(conn.c, c)
	switch {
	case refused != "":
		why = refused
		if closing {
			conn.Close()
		}
	case !c.arityOK(len(args)) || c.pairs && len(args)%2 == 0:
		why = fmt.Sprintf("ERR wrong number of arguments for '%s' command", c.name)
	case sub != nil && !arityOK(sub.arity, len(args)):
		why = fmt.Sprintf("ERR wrong number of arguments for '%s' command", sub.name)
	case unknownSub:
		why = fmt.Sprintf("ERR unknown subcommand '%s'. Try %s HELP.", truncate(args[1], 128), strings.ToUpper(c.name))
	default:
		if cl := conn.c; cl != nil && cl.restricted {
			why = s.noPerm(cl.user, c, args)
		}
		switch {
		case why != "" || c.firstKey == 0 || c.here:
		case c.multiGroup && s.crossGroup(c, args):
			cross = true
		default:
			owner, why = s.route(c, args)
		}
	}
	if cl := conn.c; why != "" && c.name == "exec" && cl != nil && cl.multi != nil {
		why = execRefusal(cl, why)
	}
	forward := why == "" && owner != nil && owner.Name != s.self.Name
	keyed := why == "" && c.firstKey > 0 && !c.waits
	// Transactions' own steps never run as ordinary keyed commands.
	txnStep := c.name == "dht.txn" || c.name == "dht.exec"
	// A read of a group of one member that this node leads needs no consensus.
	readsNow := keyed && s.repl != nil && !c.writes && !cross && !forward && !txnStep &&
		s.repl.ReadsNow(s.keyGroup(c, args))
	// In a replicated cluster every other keyed command waits: for consensus, or for
	// its group to have a leader.
	replicated := keyed && s.repl != nil && !readsNow
	// Without replication (or consensus) a keyed command runs here once no
	// transaction holds its keys.
	local := keyed && (s.repl == nil || readsNow) && !forward && !txnStep
	if why == "" && c.name == "exec" && !mayWait {
		start, mark := s.commandStart(conn), len(conn.out)
		if s.execHere(conn) {
			conn.c.noteCommand(c, args)
			s.account(conn, c, args, mark, start)
			return false
		}
	}
	if why == "" && (forward || c.waits || replicated || cross) && !mayWait {
		return true
	}
	if conn.c != nil {
		conn.c.noteCommand(c, args)
	}
	if why != "" {
		if unknownSub {
			// As in Redis, no command's counters count it, only the error.
			s.countError([]byte(why))
		} else {
			s.reject(c, args, why)
		}
		conn.WriteError(why)
		return false
	}
	start, mark := s.commandStart(conn), len(conn.out)
	if local && !mayWait {
		if s.runUnlocked(conn, c, args) != nil {
			return true
		}
		s.account(conn, c, args, mark, start)
		return false
	}
	switch {
	case cross:
		s.execTxn(conn, c, args)
	case local:
		s.runWaiting(conn, c, args)
	case replicated:
		s.execRouted(conn, c, args, raw)
	case forward:
		var extra time.Duration
		if c.blocking != nil {
			extra = c.blocking(args)
		}
		s.forward(conn, owner, raw, extra)
	default:
		c.run(s, conn, args)
	}
	s.account(conn, c, args, mark, start)
	return false
}

// route finds the node that serves a keyed command's slot. It returns the reason the
// command cannot go there (CROSSSLOT, CLUSTERDOWN, MOVED) when it cannot.
func (s *Server) route(c *command, args [][]byte) (owner *cluster.Member, why string) {
	slot, cross := commandSlot(c, args)
	if cross && !c.multiGroup {
		return nil, "CROSSSLOT Keys in request don't hash to the same slot"
	}
	// In a replicated cluster, data goes to the slot's group leader; a command that
	// waits (DHT.BARRIER) keeps no data and meets the others at the slot's preferred
	// leader, which does not move.
	if s.repl != nil && !c.waits {
		owner, why = s.routeReplicated(slot)
		if owner != nil && owner.Name != s.self.Name && s.cfg.Routing == config.RoutingMoved {
			return nil, fmt.Sprintf("MOVED %d %s", slot, owner.Addr)
		}
		return owner, why
	}
	owner = s.slots.Owner(slot)
	if why := s.unavailable(owner); why != "" {
		return nil, why
	}
	if owner.Name != s.self.Name && s.cfg.Routing == config.RoutingMoved {
		return nil, fmt.Sprintf("MOVED %d %s", slot, owner.Addr)
	}
	return owner, ""
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
