package server

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/dhtkv/dht/internal/acl"
)

// Replies of password authentication, as Redis 7 words them.
const (
	errNoAuth    = "NOAUTH Authentication required."
	errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	errHelloAuth = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	errNoPass    = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	errNoPermKey = "NOPERM this user has no permissions to access one of the keys used as arguments"
)

// authenticate returns the user that name and pass prove to be, or nil, comparing
// password digests in constant time (so that neither the password nor its length
// shows in the timing). A failure is counted and logged, without what was sent.
func (s *Server) authenticate(conn *session, name, pass []byte) *acl.User {
	u := s.users[string(name)]
	if u != nil && u.CheckPassword(pass) {
		return u
	}
	s.metrics.authFailures.Inc()
	addr := ""
	if conn.c != nil {
		addr = conn.c.remote.String()
	}
	s.log.Warn("client failed to authenticate", "client", addr, "user", truncate(name, 64))
	return nil
}

// login makes the connection user's.
func (cl *client) login(u *acl.User) {
	cl.authed = true
	cl.user, cl.restricted = nil, false
	cl.userName.Store(nil)
	if u.Name() != acl.DefaultUser {
		cl.user, cl.restricted = u, !u.Unrestricted()
		name := u.Name()
		cl.userName.Store(&name)
	}
}

// cmdAuth is AUTH [username] password.
func cmdAuth(s *Server, conn *session, args [][]byte) {
	var user, pass []byte
	switch len(args) {
	case 2:
		user, pass = []byte(acl.DefaultUser), args[1]
	case 3:
		user, pass = args[1], args[2]
	default:
		conn.WriteError(errSyntax)
		return
	}
	if !s.hasPassword && len(args) == 2 {
		conn.WriteError(errNoPass)
		return
	}
	u := s.authenticate(conn, user, pass)
	if u == nil {
		conn.WriteError(errWrongPass)
		return
	}
	conn.c.login(u)
	conn.WriteString("OK")
}

// noPerm returns Redis's NOPERM reply when the connection's user (a restricted one)
// may not run c with args, or "" when it may. A command a client may send before it
// authenticates is never refused, as in Redis.
func (s *Server) noPerm(u *acl.User, c *command, args [][]byte) string {
	if c.noAuth {
		return ""
	}
	id := c.aclID
	if c.subs != nil && len(args) > 1 {
		if sub, ok := lookupSub(c.subs, args[1]); ok {
			id = sub
		}
	}
	if !u.CanRun(id) {
		s.metrics.deniedCmd.Inc()
		return fmt.Sprintf("NOPERM this user has no permissions to run the '%s' command", s.acl.Name(id))
	}
	denied := false
	c.keys(args, func(k []byte) { denied = denied || !u.CanAccess(k) })
	if denied {
		s.metrics.deniedKey.Inc()
		return errNoPermKey
	}
	return ""
}

// lookupSub finds a subcommand by name, case-insensitively.
func lookupSub(subs map[string]int, name []byte) (int, bool) {
	var buf [32]byte
	if len(name) > len(buf) {
		return 0, false
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	id, ok := subs[string(buf[:len(name)])]
	return id, ok
}

// refusal returns why the connection may not run c now, or "" when it may; closing
// is set when the connection is to be closed after the reply.
func (s *Server) refusal(cl *client, c *command) (why string, closing bool) {
	switch {
	case cl == nil || cl.peer != "":
		return "", false
	case c.peerOnly:
		return fmt.Sprintf("NOPERM '%s' is a command between the nodes of a cluster; a connection becomes a node's with DHT.AUTHPEER", c.name), c.name == "dht.raft"
	case cl.authed || c.noAuth:
		return "", false
	default:
		return errNoAuth, false
	}
}

// helloArgs are HELLO's options after the protocol version.
type helloArgs struct {
	user, pass []byte
	auth       bool
	name       []byte
	setName    bool
}

// parseHello reads HELLO's options: AUTH username password and SETNAME clientname.
func parseHello(args [][]byte) (helloArgs, string) {
	var h helloArgs
	for i := 2; i < len(args); i++ {
		left := len(args) - i - 1
		switch opt := strings.ToLower(string(args[i])); {
		case opt == "auth" && left >= 2:
			h.auth, h.user, h.pass = true, args[i+1], args[i+2]
			i += 2
		case opt == "setname" && left >= 1:
			h.setName, h.name = true, args[i+1]
			i++
		default:
			return h, fmt.Sprintf("ERR Syntax error in HELLO option '%s'", truncate(args[i], 128))
		}
	}
	return h, ""
}

// cmdHello is HELLO [protover [AUTH username password] [SETNAME clientname]],
// answered as a Redis that speaks only RESP2: HELLO 3 is refused with NOPROTO
// (clients then stay on RESP2); HELLO and HELLO 2 describe the server.
func cmdHello(s *Server, conn *session, args [][]byte) {
	if len(args) > 1 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil {
			conn.WriteError("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 {
			conn.WriteError("NOPROTO unsupported protocol version")
			return
		}
	}
	h, why := parseHello(args)
	if why != "" {
		conn.WriteError(why)
		return
	}
	if h.auth {
		u := s.authenticate(conn, h.user, h.pass)
		if u == nil {
			conn.WriteError(errWrongPass)
			return
		}
		conn.c.login(u)
	}
	if !conn.c.authed && conn.c.peer == "" {
		conn.WriteError(errHelloAuth)
		return
	}
	if h.setName {
		if bytes.ContainsFunc(h.name, func(r rune) bool { return r < '!' || r > '~' }) {
			conn.WriteError("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		conn.c.setName(string(h.name))
	}
	conn.WriteArray(14)
	conn.WriteBulkString("server")
	conn.WriteBulkString("redis")
	conn.WriteBulkString("version")
	conn.WriteBulkString(redisVersion)
	conn.WriteBulkString("proto")
	conn.WriteInt(2)
	conn.WriteBulkString("id")
	conn.WriteInt64(conn.c.id)
	conn.WriteBulkString("mode")
	conn.WriteBulkString("cluster")
	conn.WriteBulkString("role")
	conn.WriteBulkString("master")
	conn.WriteBulkString("modules")
	conn.WriteArray(0)
}
