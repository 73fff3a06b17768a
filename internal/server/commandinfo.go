package server

import (
	"maps"
	"slices"
	"strings"

	"github.com/dhtkv/dht/internal/acl"
)

// COMMAND describes dht's commands in Redis 7's shape: cluster clients route by its
// key positions and key specifications, and some refuse to send a command it does
// not list.

// keySpec is a Redis 7 key specification of the one shape dht's commands need: the
// keys start at argument index and run to lastKey (relative to index; -1 is the
// last argument) every keyStep arguments.
type keySpec struct {
	index, lastKey, keyStep int
	flags                   []string
}

// keySpecFlags gives, where they differ from RO access (reads) and RW update
// (writes), how a command uses its keys, as Redis 7 specifies it.
func keySpecFlags() map[string]string {
	return map[string]string{
		"exists": "RO", "ttl": "RO", "pttl": "RO", "type": "RO", "touch": "RO", "strlen": "RO",
		"expiretime": "RO", "pexpiretime": "RO", "object|encoding": "RO", "object|freq": "RO",
		"object|idletime": "RO", "object|refcount": "RO", "memory|usage": "RO",
		"del": "RM delete", "unlink": "RM delete", "getdel": "RW access delete",
		"incr": "RW access update", "decr": "RW access update", "incrby": "RW access update",
		"decrby": "RW access update", "incrbyfloat": "RW access update", "getex": "RW access update",
		"getset": "RW access update", "set": "RW access update variable_flags",
		"mset": "OW update", "setex": "OW update", "psetex": "OW update",
		"msetnx": "OW insert", "setnx": "OW insert", "append": "RW insert",
	}
}

// commandTips gives the tips of the commands and subcommands that Redis 7.0 gives
// tips: which answers vary from call to call, and how a cluster client should
// spread a request over the shards and combine their answers.
func commandTips() map[string]string {
	const (
		nondet      = "nondeterministic_output"
		latencyTips = "nondeterministic_output request_policy:all_nodes response_policy:special"
	)
	return map[string]string{
		"object|encoding": nondet, "object|freq": nondet, "object|idletime": nondet, "object|refcount": nondet,
		"client|list": nondet, "client|info": nondet,
		"cluster|info": nondet, "cluster|nodes": nondet, "cluster|shards": nondet, "cluster|slots": nondet,
		"ttl": nondet, "pttl": nondet, "time": nondet,
		"command": "nondeterministic_output_order", "command|docs": "nondeterministic_output_order",
		"command|info": "nondeterministic_output_order", "command|list": "nondeterministic_output_order",
		"ping":              "request_policy:all_shards response_policy:all_succeeded",
		"config|set":        "request_policy:all_nodes response_policy:all_succeeded",
		"memory|stats":      "nondeterministic_output request_policy:all_shards response_policy:special",
		"info":              "nondeterministic_output request_policy:all_shards response_policy:special",
		"dbsize":            "request_policy:all_shards response_policy:agg_sum",
		"keys":              "request_policy:all_shards nondeterministic_output_order",
		"scan":              "nondeterministic_output request_policy:special",
		"randomkey":         "request_policy:all_shards nondeterministic_output",
		"flushall":          "request_policy:all_shards response_policy:all_succeeded",
		"flushdb":           "request_policy:all_shards response_policy:all_succeeded",
		"slowlog|get":       "request_policy:all_nodes nondeterministic_output",
		"slowlog|len":       "request_policy:all_nodes response_policy:agg_sum nondeterministic_output",
		"slowlog|reset":     "request_policy:all_nodes response_policy:all_succeeded",
		"latency|doctor":    latencyTips,
		"latency|graph":     latencyTips,
		"latency|histogram": latencyTips,
		"latency|history":   latencyTips,
		"latency|latest":    latencyTips,
		"latency|reset":     "request_policy:all_nodes response_policy:all_succeeded",
		"mset":              "request_policy:multi_shard response_policy:all_succeeded",
		"msetnx":            "request_policy:multi_shard response_policy:agg_min",
		"mget":              "request_policy:multi_shard",
		"del":               "request_policy:multi_shard response_policy:agg_sum",
		"unlink":            "request_policy:multi_shard response_policy:agg_sum",
		"exists":            "request_policy:multi_shard response_policy:agg_sum",
		"touch":             "request_policy:multi_shard response_policy:agg_sum",
		"wait":              "request_policy:all_shards response_policy:agg_min",
	}
}

// keySpecs returns c's key specifications: none for a command without keys, one per
// key for the commands that use their two keys differently.
func (c *command) keySpecs() []keySpec {
	if c.firstKey == 0 {
		return nil
	}
	two := map[string][2]string{
		"copy":     {"RO access", "OW update"},
		"rename":   {"RW access delete", "OW update"},
		"renamenx": {"RW access delete", "OW insert"},
	}
	if f, ok := two[c.name]; ok {
		return []keySpec{{1, 0, 1, strings.Fields(f[0])}, {2, 0, 1, strings.Fields(f[1])}}
	}
	flags, ok := keySpecFlags()[c.name]
	switch {
	case ok:
	case c.writes:
		flags = "RW update"
	default:
		flags = "RO access"
	}
	last := c.lastKey
	if last >= 0 {
		last -= c.firstKey
	}
	return []keySpec{{c.firstKey, last, c.step, strings.Fields(flags)}}
}

// keyFlags returns the flags of the key at argument i of args, by c's specs.
func (c *command) keyFlags(i int) []string {
	specs := c.keySpecs()
	for _, sp := range specs {
		if i == sp.index || sp.lastKey != 0 && i > sp.index {
			return sp.flags
		}
	}
	return nil
}

// aclCatsOf returns each command's and subcommand's ACL categories, in Redis's
// order.
func aclCatsOf() map[string][]string {
	has := map[string]map[string]bool{}
	for cat, names := range aclCategories() {
		for _, n := range strings.Fields(names) {
			if has[n] == nil {
				has[n] = map[string]bool{}
			}
			has[n][cat] = true
		}
	}
	out := map[string][]string{}
	for n, cats := range has {
		for _, cat := range acl.Categories() {
			if cats[cat] {
				out[n] = append(out[n], "@"+cat)
			}
		}
	}
	return out
}

// commandView is a command or subcommand as COMMAND shows it.
type commandView struct {
	name  string
	arity int
	flags []string
	// cmd locates the keys (nil for a subcommand without keys).
	cmd  *command
	subs []commandView
}

// view returns c as COMMAND shows it, with its subcommands.
func (c *command) view() commandView {
	v := commandView{name: c.name, arity: c.arity, flags: c.flags, cmd: c}
	for _, name := range slices.Sorted(maps.Keys(c.subcommands)) {
		v.subs = append(v.subs, c.subcommands[name].view(c))
	}
	return v
}

// view returns a subcommand of parent as COMMAND shows it.
func (sc *subcommand) view(parent *command) commandView {
	if sc.cmd != nil {
		return commandView{name: sc.name, arity: sc.arity, flags: sc.cmd.flags, cmd: sc.cmd}
	}
	return commandView{name: sc.name, arity: sc.arity, flags: parent.flags}
}

func (v commandView) keys() (first, last, step int, specs []keySpec) {
	if v.cmd == nil || v.cmd.firstKey == 0 {
		return 0, 0, 0, nil
	}
	return v.cmd.firstKey, v.cmd.lastKey, v.cmd.step, v.cmd.keySpecs()
}

// writeCommandInfo writes v in COMMAND INFO's Redis 7 shape: name, arity, flags,
// first and last key and step, ACL categories, tips, key specifications,
// subcommands.
func writeCommandInfo(conn *session, v commandView, cats map[string][]string, tips map[string]string) {
	first, last, step, specs := v.keys()
	conn.WriteArray(10)
	conn.WriteBulkString(v.name)
	conn.WriteInt(v.arity)
	writeStatuses(conn, v.flags)
	conn.WriteInt(first)
	conn.WriteInt(last)
	conn.WriteInt(step)
	writeStatuses(conn, cats[v.name])
	writeBulks(conn, strings.Fields(tips[v.name]))
	conn.WriteArray(len(specs))
	for _, sp := range specs {
		conn.WriteArray(6)
		conn.WriteBulkString("flags")
		writeStatuses(conn, sp.flags)
		conn.WriteBulkString("begin_search")
		conn.WriteArray(4)
		conn.WriteBulkString("type")
		conn.WriteBulkString("index")
		conn.WriteBulkString("spec")
		conn.WriteArray(2)
		conn.WriteBulkString("index")
		conn.WriteInt(sp.index)
		conn.WriteBulkString("find_keys")
		conn.WriteArray(4)
		conn.WriteBulkString("type")
		conn.WriteBulkString("range")
		conn.WriteBulkString("spec")
		conn.WriteArray(6)
		conn.WriteBulkString("lastkey")
		conn.WriteInt(sp.lastKey)
		conn.WriteBulkString("keystep")
		conn.WriteInt(sp.keyStep)
		conn.WriteBulkString("limit")
		conn.WriteInt(0)
	}
	conn.WriteArray(len(v.subs))
	for _, sub := range v.subs {
		writeCommandInfo(conn, sub, cats, tips)
	}
}

// writeStatuses writes an array of status strings.
func writeStatuses(conn *session, items []string) {
	conn.WriteArray(len(items))
	for _, it := range items {
		conn.WriteString(it)
	}
}

// writeCommandDocs writes v's documentation in COMMAND DOCS's shape: summary,
// since, group, complexity, the key arguments, and the subcommands' docs.
func writeCommandDocs(conn *session, v commandView, docs map[string]cmdDoc) {
	d := docs[v.name]
	_, last, _, specs := v.keys()
	n := 8
	if len(specs) > 0 {
		n += 2
	}
	if len(v.subs) > 0 {
		n += 2
	}
	conn.WriteArray(n)
	for _, kv := range [][2]string{{"summary", d.summary}, {"since", d.since}, {"group", d.group}, {"complexity", d.complexity}} {
		conn.WriteBulkString(kv[0])
		conn.WriteBulkString(kv[1])
	}
	if len(specs) > 0 {
		conn.WriteBulkString("arguments")
		conn.WriteArray(len(specs))
		for i := range specs {
			multiple := last < 0
			conn.WriteArray(6 + 2*boolInt(multiple))
			conn.WriteBulkString("name")
			conn.WriteBulkString("key")
			conn.WriteBulkString("type")
			conn.WriteBulkString("key")
			conn.WriteBulkString("key_spec_index")
			conn.WriteInt(i)
			if multiple {
				conn.WriteBulkString("flags")
				writeStatuses(conn, []string{"multiple"})
			}
		}
	}
	if len(v.subs) > 0 {
		conn.WriteBulkString("subcommands")
		conn.WriteArray(2 * len(v.subs))
		for _, sub := range v.subs {
			conn.WriteBulkString(sub.name)
			writeCommandDocs(conn, sub, docs)
		}
	}
}

// findView finds a command, or a subcommand named "container|sub".
func (s *Server) findView(name []byte) (commandView, bool) {
	parent, sub, isSub := strings.Cut(strings.ToLower(string(name)), "|")
	c := s.commands[parent]
	if c == nil {
		return commandView{}, false
	}
	if !isSub {
		return c.view(), true
	}
	sc := c.subcommands[sub]
	if sc == nil {
		return commandView{}, false
	}
	return sc.view(c), true
}

// views returns every command, sorted by name.
func (s *Server) views() []commandView {
	var out []commandView
	for _, name := range slices.Sorted(maps.Keys(s.commands)) {
		out = append(out, s.commands[name].view())
	}
	return out
}

// cmdCommand is COMMAND, COMMAND COUNT, INFO, DOCS, LIST, GETKEYS,
// GETKEYSANDFLAGS and HELP; exec has checked the subcommand's arity.
func cmdCommand(s *Server, conn *session, args [][]byte) {
	if len(args) == 1 {
		cats, tips := aclCatsOf(), commandTips()
		all := s.views()
		conn.WriteArray(len(all))
		for _, v := range all {
			writeCommandInfo(conn, v, cats, tips)
		}
		return
	}
	switch strings.ToLower(string(args[1])) {
	case "count":
		conn.WriteInt(len(s.commands))
	case "info":
		cats, tips := aclCatsOf(), commandTips()
		if len(args) == 2 {
			cmdCommand(s, conn, args[:1])
			return
		}
		conn.WriteArray(len(args) - 2)
		for _, name := range args[2:] {
			if v, ok := s.findView(name); ok {
				writeCommandInfo(conn, v, cats, tips)
			} else {
				conn.WriteNull()
			}
		}
	case "docs":
		commandDocsReply(s, conn, args[2:])
	case "list":
		commandList(s, conn, args)
	case "getkeys", "getkeysandflags":
		commandGetKeys(s, conn, args[2:], len(args[1]) > len("getkeys"))
	case "help":
		writeHelp(conn, "command", args,
			"(no subcommand)",
			"    Return details about all Redis commands.",
			"COUNT",
			"    Return the total number of commands in this Redis server.",
			"LIST",
			"    Return a list of all commands in this Redis server.",
			"INFO [<command-name> ...]",
			"    Return details about multiple Redis commands.",
			"    If no command names are given, documentation details for all",
			"    commands are returned.",
			"DOCS [<command-name> ...]",
			"    Return documentation details about multiple Redis commands.",
			"    If no command names are given, documentation details for all",
			"    commands are returned.",
			"GETKEYS <full-command>",
			"    Return the keys from a full Redis command.",
			"GETKEYSANDFLAGS <full-command>",
			"    Return the keys and the access flags from a full Redis command.",
		)
	}
}

// commandDocsReply is COMMAND DOCS [name ...]: a map from each command named that
// exists (every command when none is named) to its documentation.
func commandDocsReply(s *Server, conn *session, names [][]byte) {
	docs := commandDocs()
	var found []commandView
	if len(names) == 0 {
		found = s.views()
	}
	for _, n := range names {
		if v, ok := s.findView(n); ok {
			found = append(found, v)
		}
	}
	conn.WriteArray(2 * len(found))
	for _, v := range found {
		conn.WriteBulkString(v.name)
		writeCommandDocs(conn, v, docs)
	}
}

// commandList is COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN
// pattern]: the names of the commands and subcommands that pass the filter.
func commandList(s *Server, conn *session, args [][]byte) {
	var keep func(name string) bool
	switch {
	case len(args) == 2:
		keep = func(string) bool { return true }
	case len(args) == 5 && strings.EqualFold(string(args[2]), "filterby"):
		arg := string(args[4])
		switch strings.ToLower(string(args[3])) {
		case "module":
			keep = func(string) bool { return false }
		case "aclcat":
			cats := aclCatsOf()
			keep = func(name string) bool { return slices.Contains(cats[name], "@"+strings.ToLower(arg)) }
		case "pattern":
			keep = func(name string) bool { return acl.Match(strings.ToLower(arg), []byte(name)) }
		}
	}
	if keep == nil {
		conn.WriteError(errSyntax)
		return
	}
	var names []string
	for _, v := range s.views() {
		for _, n := range append([]commandView{v}, v.subs...) {
			if keep(n.name) {
				names = append(names, n.name)
			}
		}
	}
	writeBulks(conn, names)
}

// commandGetKeys is COMMAND GETKEYS and GETKEYSANDFLAGS: the keys of the command
// given, found as its node would find them, with their flags when asked.
func commandGetKeys(s *Server, conn *session, args [][]byte, withFlags bool) {
	c := s.lookup(args[0])
	if c != nil && c.subcommands != nil {
		if sc := c.sub(args); sc != nil && sc.cmd != nil {
			c = sc.cmd
		}
	}
	switch {
	case c == nil:
		conn.WriteError("ERR Invalid command specified")
		return
	case c.firstKey == 0:
		conn.WriteError("ERR The command has no key arguments")
		return
	case !c.arityOK(len(args)):
		conn.WriteError("ERR Invalid number of arguments specified for command")
		return
	}
	n := 0
	c.keys(args, func([]byte) { n++ })
	conn.WriteArray(n)
	i := 0
	c.keys(args, func(k []byte) {
		if !withFlags {
			conn.WriteBulk(k)
			return
		}
		conn.WriteArray(2)
		conn.WriteBulk(k)
		writeStatuses(conn, c.keyFlags(c.firstKey+i*c.step))
		i++
	})
}
