package server

import (
	"bytes"
	"fmt"
	"math"
	"strings"

	"github.com/dhtkv/dht/internal/redisnum"
	"github.com/dhtkv/dht/internal/store"
)

// The key commands: expiry, TYPE, COPY and RENAME. As for the string commands, every
// handler reads and writes only through conn.db and takes the time only from it.

// cmdExpire serves EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT key n [NX|XX|GT|LT ...].
func cmdExpire(_ *Server, conn *session, args [][]byte) {
	// The four names differ in length.
	name := [...]string{6: "expire", 7: "pexpire", 8: "expireat", 9: "pexpireat"}[len(args[0])]
	var cond store.ExpireCond
	for _, a := range args[3:] {
		switch strings.ToUpper(string(a)) {
		case "NX":
			cond |= store.ExpireNX
		case "XX":
			cond |= store.ExpireXX
		case "GT":
			cond |= store.ExpireGT
		case "LT":
			cond |= store.ExpireLT
		default:
			conn.WriteError("ERR Unsupported option " + cString(a))
			return
		}
	}
	switch {
	case cond&store.ExpireNX != 0 && cond != store.ExpireNX:
		conn.WriteError("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	case cond&(store.ExpireGT|store.ExpireLT) == store.ExpireGT|store.ExpireLT:
		conn.WriteError("ERR GT and LT options at the same time are not compatible")
		return
	}
	when, ok := redisnum.ParseInt(args[2])
	if !ok {
		conn.WriteError(errNotInt)
		return
	}
	if name == "expire" || name == "expireat" {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			conn.WriteError(invalidExpire(name))
			return
		}
		when *= 1000
	}
	if name == "expire" || name == "pexpire" {
		base := conn.db.Now().UnixMilli()
		if when > math.MaxInt64-base {
			conn.WriteError(invalidExpire(name))
			return
		}
		when += base
	}
	conn.WriteInt(boolInt(conn.db.Expire(args[1], when, cond)))
}

// cString is an argument as Redis prints it with %s into an error: up to its first
// NUL byte, with line breaks made spaces.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(string(b))
}

// cmdExpireTime serves EXPIRETIME and PEXPIRETIME.
func cmdExpireTime(_ *Server, conn *session, args [][]byte) {
	at, exists, hasExpiry := conn.db.ExpireTime(args[1])
	switch {
	case !exists:
		conn.WriteInt(-2)
	case !hasExpiry:
		conn.WriteInt(-1)
	case len(args[0]) == len("pexpiretime"):
		conn.WriteInt64(at)
	default:
		conn.WriteInt64((at + 500) / 1000)
	}
}

func cmdPersist(_ *Server, conn *session, args [][]byte) {
	conn.WriteInt(boolInt(conn.db.Persist(args[1])))
}

func cmdType(_ *Server, conn *session, args [][]byte) {
	n := conn.db.Exists(args[1])
	conn.hit(n > 0)
	if n > 0 {
		conn.WriteString("string")
		return
	}
	conn.WriteString("none")
}

// cmdCopy serves COPY source destination [DB n] [REPLACE], in one database as in
// Redis Cluster.
func cmdCopy(_ *Server, conn *session, args [][]byte) {
	replace, db := false, int64(0)
	for j := 3; j < len(args); j++ {
		switch o := strings.ToUpper(string(args[j])); {
		case o == "REPLACE":
			replace = true
		case o == "DB" && j+1 < len(args):
			n, ok := redisnum.ParseInt(args[j+1])
			switch {
			case !ok:
				conn.WriteError(errNotInt)
				return
			case n < math.MinInt32 || n > math.MaxInt32:
				conn.WriteError(fmt.Sprintf("ERR value is out of range, value must between %d and %d", math.MinInt32, math.MaxInt32))
				return
			case n < 0 || n >= 16:
				conn.WriteError("ERR DB index is out of range")
				return
			}
			db = n
			j++
		default:
			conn.WriteError(errSyntax)
			return
		}
	}
	switch {
	case db != 0:
		conn.WriteError("ERR Copying to another database is not allowed in cluster mode")
	case bytes.Equal(args[1], args[2]):
		conn.WriteError("ERR source and destination objects are the same")
	default:
		conn.WriteInt(boolInt(conn.db.Copy(args[1], args[2], replace)))
	}
}

// cmdRename serves RENAME and RENAMENX.
func cmdRename(_ *Server, conn *session, args [][]byte) {
	nx := len(args[0]) == len("renamenx")
	ok, err := conn.db.Rename(args[1], args[2], nx)
	switch {
	case err != nil:
		storeError(conn, err)
	case nx:
		conn.WriteInt(boolInt(ok))
	default:
		conn.WriteString("OK")
	}
}
