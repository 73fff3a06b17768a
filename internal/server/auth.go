package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
)

// Replies of password authentication, as Redis 7 words them.
const (
	errNoAuth    = "NOAUTH Authentication required."
	errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	errHelloAuth = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	errNoPass    = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	// defaultUser is the only user there is.
	defaultUser = "default"
)

// checkPassword reports whether user and pass are the default user and its password,
// comparing digests in constant time (so that neither the password nor its length
// shows in the timing). A failure is counted and logged, without what was sent.
func (s *Server) checkPassword(conn *session, user, pass []byte) bool {
	got := sha256.Sum256(pass)
	ok := subtle.ConstantTimeCompare(got[:], s.passwordSum[:]) == 1
	if ok && string(user) == defaultUser {
		return true
	}
	s.metrics.authFailures.Inc()
	addr := ""
	if conn.c != nil {
		addr = conn.c.gc.RemoteAddr().String()
	}
	s.log.Warn("client failed to authenticate", "client", addr, "user", truncate(user, 64))
	return false
}

// cmdAuth is AUTH [username] password.
func cmdAuth(s *Server, conn *session, args [][]byte) {
	var user, pass []byte
	switch len(args) {
	case 2:
		user, pass = []byte(defaultUser), args[1]
	case 3:
		user, pass = args[1], args[2]
	default:
		conn.WriteError(errSyntax)
		return
	}
	switch {
	case !s.hasPassword && len(args) == 2:
		conn.WriteError(errNoPass)
	case !s.hasPassword && string(user) == defaultUser:
		// The default user without a password takes any, as in Redis.
		conn.WriteString("OK")
	case !s.hasPassword || !s.checkPassword(conn, user, pass):
		conn.WriteError(errWrongPass)
	default:
		conn.c.authed = true
		conn.WriteString("OK")
	}
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
		switch {
		case !s.hasPassword && string(h.user) == defaultUser:
		case !s.hasPassword || !s.checkPassword(conn, h.user, h.pass):
			conn.WriteError(errWrongPass)
			return
		default:
			conn.c.authed = true
		}
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
		conn.c.name = string(h.name)
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
