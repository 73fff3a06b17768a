package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dhtkv/dht/internal/acl"
)

// The node's clients, whether the event loops or TLS goroutines serve them, are in
// one registry (Server.clients, under clientsMu): CLIENT LIST and INFO describe
// them, CLIENT KILL closes them, whichever kind they are.

// connFD returns the file descriptor of a TLS client's socket, or -1.
func connFD(nc net.Conn) int {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1
	}
	return fd
}

// getName returns the client's name (CLIENT SETNAME).
func (cl *client) getName() string {
	cl.meta.Lock()
	defer cl.meta.Unlock()
	return cl.name
}

// setName names the client.
func (cl *client) setName(name string) {
	cl.meta.Lock()
	cl.name = name
	cl.meta.Unlock()
}

// validClientName reports whether name is one Redis accepts: no spaces, newlines
// or other characters outside '!' to '~'.
func validClientName(name []byte) bool {
	return !bytes.ContainsFunc(name, func(r rune) bool { return r < '!' || r > '~' })
}

// noteCommand records the command the client runs (CLIENT LIST's cmd): the
// subcommand's full name for a container command.
func (cl *client) noteCommand(c *command, args [][]byte) {
	name := &c.name
	if sc := c.sub(args); sc != nil {
		name = &sc.name
	}
	cl.lastCmd.Store(name)
}

// clientType is a CLIENT LIST / KILL TYPE: normal clients, or the other nodes'
// connections (replica, as Redis calls a connection that replicates its data).
type clientType int

const (
	anyClient clientType = iota
	normalClient
	replicaClient
	masterClient
	pubsubClient
)

// parseClientType reads a TYPE option's value, or returns Redis's error.
func parseClientType(b []byte) (clientType, string) {
	switch strings.ToLower(string(b)) {
	case "normal":
		return normalClient, ""
	case "slave", "replica":
		return replicaClient, ""
	case "master":
		return masterClient, ""
	case "pubsub":
		return pubsubClient, ""
	}
	return anyClient, fmt.Sprintf("ERR Unknown client type '%s'", b)
}

func (cl *client) kind() clientType {
	if cl.isPeer.Load() {
		return replicaClient
	}
	return normalClient
}

// flags are CLIENT LIST's flags of the client.
func (cl *client) flags() string {
	var f []byte
	if cl.isPeer.Load() {
		f = append(f, 'S')
	}
	if cl.closing.Load() {
		f = append(f, 'c')
	}
	if cl.readonly.Load() {
		f = append(f, 'r')
	}
	if cl.noEvict.Load() {
		f = append(f, 'e')
	}
	if cl.noTouch.Load() {
		f = append(f, 'T')
	}
	if len(f) == 0 {
		return "N"
	}
	return string(f)
}

// appendInfo appends the client's line of CLIENT LIST, in Redis 7.0's fields; the
// ones dht has no counterpart for hold what Redis shows for an idle client.
func (cl *client) appendInfo(b []byte, now time.Time) []byte {
	cmd := "NULL"
	if p := cl.lastCmd.Load(); p != nil {
		cmd = *p
	}
	user := acl.DefaultUser
	if p := cl.userName.Load(); p != nil {
		user = *p
	}
	idle := now.Sub(time.Unix(0, cl.lastRead.Load()))
	b = fmt.Appendf(b, "id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=0 sub=0 psub=0 ssub=0 multi=-1 "+
		"qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=%s redir=-1 resp=2\n",
		cl.id, cl.remote, cl.laddr, cl.fd, cl.getName(), int64(now.Sub(cl.created).Seconds()), max(int64(idle.Seconds()), 0),
		cl.flags(), cmd, user)
	return b
}

// clientsByID returns the registered clients in the order they connected.
func (s *Server) clientsByID() []*client {
	s.clientsMu.Lock()
	out := make([]*client, 0, len(s.clients))
	for cl := range s.clients {
		out = append(out, cl)
	}
	s.clientsMu.Unlock()
	slices.SortFunc(out, func(a, b *client) int { return int(a.id - b.id) })
	return out
}

// cmdClient is CLIENT LIST, INFO, KILL, ID, GETNAME, SETNAME, NO-EVICT, NO-TOUCH,
// REPLY, SETINFO and HELP; exec has checked the subcommand's arity.
func cmdClient(s *Server, conn *session, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	cl := conn.c
	switch sub {
	case "list":
		clientList(s, conn, args)
	case "info":
		conn.WriteBulk(cl.appendInfo(nil, time.Now()))
	case "kill":
		clientKill(s, conn, args)
	case "id":
		conn.WriteInt64(cl.id)
	case "getname":
		if name := cl.getName(); name != "" {
			conn.WriteBulkString(name)
			return
		}
		conn.WriteNull()
	case "setname":
		if !validClientName(args[2]) {
			conn.WriteError("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		cl.setName(string(args[2]))
		conn.WriteString("OK")
	case "no-evict", "no-touch":
		on, ok := onOff(args[2])
		if !ok {
			conn.WriteError(errSyntax)
			return
		}
		if sub == "no-evict" {
			cl.noEvict.Store(on)
		} else {
			cl.noTouch.Store(on)
		}
		conn.WriteString("OK")
	case "reply":
		clientReply(conn, args[2])
	case "setinfo":
		attr := strings.ToLower(string(args[2]))
		if attr != "lib-name" && attr != "lib-ver" {
			conn.WriteError(fmt.Sprintf("ERR Unrecognized option '%s'", args[2]))
			return
		}
		if !validClientName(args[3]) {
			conn.WriteError(fmt.Sprintf("ERR %s cannot contain spaces, newlines or special characters.", args[2]))
			return
		}
		conn.WriteString("OK")
	case "help":
		writeHelp(conn, "client", args,
			"GETNAME",
			"    Return the name of the current connection.",
			"ID",
			"    Return the ID of the current connection.",
			"INFO",
			"    Return information about the current client connection.",
			"KILL <ip:port>",
			"    Kill connection made from <ip:port>.",
			"KILL <option> <value> [<option> <value> [...]]",
			"    Kill connections. Options are:",
			"    * ADDR (<ip:port>|<unixsocket>:0)",
			"      Kill connections made from the specified address",
			"    * LADDR (<ip:port>|<unixsocket>:0)",
			"      Kill connections made to specified local address",
			"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
			"      Kill connections by type.",
			"    * USER <username>",
			"      Kill connections authenticated by <username>.",
			"    * SKIPME (YES|NO)",
			"      Skip killing current connection (default: yes).",
			"    * ID <client-id>",
			"      Kill connections by client id.",
			"LIST [options ...]",
			"    Return information about client connections. Options:",
			"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
			"      Return clients of specified type.",
			"    * ID <client-id> [<client-id> ...]",
			"      Return clients of the given ids.",
			"REPLY (ON|OFF|SKIP)",
			"    Control the replies sent to the current connection.",
			"SETINFO <option> <value>",
			"    Accept client meta attributes (LIB-NAME, LIB-VER); they are not kept.",
			"SETNAME <name>",
			"    Assign the name <name> to the current connection.",
			"NO-EVICT (ON|OFF)",
			"    Protect current client connection from eviction.",
			"NO-TOUCH (ON|OFF)",
			"    Will not touch LRU/LFU stats when this mode is on.",
		)
	}
}

// onOff reads ON or OFF.
func onOff(b []byte) (on, ok bool) {
	switch strings.ToLower(string(b)) {
	case "on":
		return true, true
	case "off":
		return false, true
	}
	return false, false
}

// clientReply is CLIENT REPLY ON|OFF|SKIP: OFF and SKIP are not answered (see
// client.replied for how replies are suppressed).
func clientReply(conn *session, mode []byte) {
	cl := conn.c
	switch strings.ToLower(string(mode)) {
	case "on":
		cl.replyOff, cl.skipNext = false, false
		conn.WriteString("OK")
	case "off":
		cl.replyOff = true
	case "skip":
		if !cl.replyOff {
			cl.skipNext = true
		}
	default:
		conn.WriteError(errSyntax)
	}
}

// clientList is CLIENT LIST [TYPE type] [ID id [id ...]].
func clientList(s *Server, conn *session, args [][]byte) {
	typ := anyClient
	var ids []int64
	switch {
	case len(args) == 4 && strings.EqualFold(string(args[2]), "type"):
		var why string
		if typ, why = parseClientType(args[3]); why != "" {
			conn.WriteError(why)
			return
		}
	case len(args) > 3 && strings.EqualFold(string(args[2]), "id"):
		for _, a := range args[3:] {
			id, err := strconv.ParseInt(string(a), 10, 64)
			if err != nil {
				conn.WriteError("ERR Invalid client ID")
				return
			}
			ids = append(ids, id)
		}
	case len(args) != 2:
		conn.WriteError(errSyntax)
		return
	}
	all := s.clientsByID()
	now := time.Now()
	var b []byte
	if ids != nil {
		for _, id := range ids {
			if i := slices.IndexFunc(all, func(cl *client) bool { return cl.id == id }); i >= 0 {
				b = all[i].appendInfo(b, now)
			}
		}
	} else {
		for _, cl := range all {
			if typ == anyClient || cl.kind() == typ {
				b = cl.appendInfo(b, now)
			}
		}
	}
	conn.WriteBulk(b)
}

// killFilter is what CLIENT KILL's new form selects.
type killFilter struct {
	id          int64
	typ         clientType
	addr, laddr string
	user        string
	hasUser     bool
	skipMe      bool
}

func (f *killFilter) matches(cl, self *client) bool {
	switch {
	case f.skipMe && cl == self,
		f.id != 0 && cl.id != f.id,
		f.typ != anyClient && cl.kind() != f.typ,
		f.addr != "" && cl.remote.String() != f.addr,
		f.laddr != "" && (cl.laddr == nil || cl.laddr.String() != f.laddr):
		return false
	case f.hasUser:
		name := acl.DefaultUser
		if p := cl.userName.Load(); p != nil {
			name = *p
		}
		return name == f.user
	}
	return true
}

// clientKill is CLIENT KILL ip:port, and CLIENT KILL with filters (ID, TYPE, ADDR,
// LADDR, USER, SKIPME), as Redis 7.0 reads them. A client that kills its own
// connection gets its reply first.
func clientKill(s *Server, conn *session, args [][]byte) {
	if len(args) == 3 {
		addr := string(args[2])
		for _, cl := range s.clientsByID() {
			if cl.remote.String() == addr {
				conn.WriteString("OK")
				s.kill(conn, cl)
				return
			}
		}
		conn.WriteError("ERR No such client")
		return
	}
	f := killFilter{skipMe: true}
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			conn.WriteError(errSyntax)
			return
		}
		v := args[i+1]
		switch strings.ToLower(string(args[i])) {
		case "id":
			id, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || id < 1 {
				conn.WriteError("ERR client-id should be greater than 0")
				return
			}
			f.id = id
		case "type":
			var why string
			if f.typ, why = parseClientType(v); why != "" {
				conn.WriteError(why)
				return
			}
		case "addr":
			f.addr = string(v)
		case "laddr":
			f.laddr = string(v)
		case "user":
			if s.users[string(v)] == nil {
				conn.WriteError(fmt.Sprintf("ERR No such user '%s'", v))
				return
			}
			f.user, f.hasUser = string(v), true
		case "skipme":
			switch strings.ToLower(string(v)) {
			case "yes":
				f.skipMe = true
			case "no":
				f.skipMe = false
			default:
				conn.WriteError(errSyntax)
				return
			}
		default:
			conn.WriteError(errSyntax)
			return
		}
	}
	var victims []*client
	for _, cl := range s.clientsByID() {
		if f.matches(cl, conn.c) {
			victims = append(victims, cl)
		}
	}
	conn.WriteInt(len(victims))
	for _, cl := range victims {
		s.kill(conn, cl)
	}
}

// kill closes cl's connection: at once for another client, after this reply for
// the client that asked.
func (s *Server) kill(conn *session, cl *client) {
	if cl == conn.c {
		conn.Close()
		return
	}
	cl.closing.Store(true)
	cl.closeConn()
}

// quiet reports whether replies are being suppressed, or are about to be.
func (cl *client) quiet() bool { return cl.replyOff || cl.skipping || cl.skipNext }

// replied ends a command whose reply was written to w from mark on, skip being
// whether it was the command after CLIENT REPLY SKIP: the reply is dropped when
// replies are off or skipped, and the command after SKIP is marked.
func (cl *client) replied(w *session, mark int, skip bool) {
	if cl.replyOff || skip {
		w.out = w.out[:mark]
	}
	if cl.skipNext {
		cl.skipping, cl.skipNext = true, false
	}
}

// beginReply starts a command: it returns where its reply starts and whether it is
// the command after CLIENT REPLY SKIP.
func (cl *client) beginReply(w *session) (mark int, skip bool) {
	skip, cl.skipping = cl.skipping, false
	return len(w.out), skip
}
