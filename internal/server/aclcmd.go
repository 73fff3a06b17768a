package server

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dhtkv/dht/internal/acl"
)

// cmdACL is ACL CAT, GETUSER, LIST, USERS, WHOAMI and HELP: the users are the
// config's, and do not change while the node runs.
func cmdACL(s *Server, conn *session, args [][]byte) {
	sub := strings.ToUpper(string(args[1]))
	arity := map[string]int{"CAT": -2, "GETUSER": 3, "LIST": 2, "USERS": 2, "WHOAMI": 2}
	if n, ok := arity[sub]; ok && (n > 0 && len(args) != n || n < 0 && len(args) < -n) {
		conn.WriteError(fmt.Sprintf("ERR wrong number of arguments for 'acl|%s' command", strings.ToLower(sub)))
		return
	}
	switch sub {
	case "CAT":
		aclCat(s, conn, args)
	case "GETUSER":
		u := s.users[string(args[2])]
		if u == nil {
			conn.WriteNull()
			return
		}
		d := u.Details()
		conn.WriteArray(12)
		conn.WriteBulkString("flags")
		writeBulks(conn, d.Flags)
		conn.WriteBulkString("passwords")
		writeBulks(conn, d.Passwords)
		conn.WriteBulkString("commands")
		conn.WriteBulkString(d.Commands)
		conn.WriteBulkString("keys")
		conn.WriteBulkString(d.Keys)
		conn.WriteBulkString("channels")
		conn.WriteBulkString(d.Channels)
		conn.WriteBulkString("selectors")
		conn.WriteArray(0)
	case "LIST":
		names := slices.Sorted(maps.Keys(s.users))
		conn.WriteArray(len(names))
		for _, n := range names {
			conn.WriteBulkString(s.users[n].Describe())
		}
	case "USERS":
		writeBulks(conn, slices.Sorted(maps.Keys(s.users)))
	case "WHOAMI":
		name := acl.DefaultUser
		if conn.c != nil && conn.c.user != nil {
			name = conn.c.user.Name()
		}
		conn.WriteBulkString(name)
	case "HELP":
		writeHelp(conn, "acl", args,
			"CAT [<category>]",
			"    List all commands that belong to <category>, or all command categories",
			"    when no category is specified.",
			"GETUSER <username>",
			"    Get the user's details.",
			"LIST",
			"    Show users details in config file format.",
			"USERS",
			"    List all the registered usernames.",
			"WHOAMI",
			"    Return the current connection username.")
	}
}

// aclCat is ACL CAT [category]: the categories, or the commands of one.
func aclCat(s *Server, conn *session, args [][]byte) {
	switch len(args) {
	case 2:
		writeBulks(conn, acl.Categories())
	case 3:
		cat := strings.ToLower(string(args[2]))
		if !acl.IsCategory(cat) {
			conn.WriteError(fmt.Sprintf("ERR Unknown category '%s'", truncate(args[2], 128)))
			return
		}
		writeBulks(conn, s.acl.InCategory(cat))
	default:
		conn.WriteError(fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%s'. Try ACL HELP.", truncate(args[1], 128)))
	}
}

// writeBulks writes an array of bulk strings.
func writeBulks(conn *session, items []string) {
	conn.WriteArray(len(items))
	for _, it := range items {
		conn.WriteBulkString(it)
	}
}
