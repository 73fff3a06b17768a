package server

import (
	"errors"
	"math"
	"strings"
	"time"

	"github.com/dhtkv/dht/internal/redisnum"
	"github.com/dhtkv/dht/internal/store"
)

// The string commands: counters, ranges and the GET/SET variants. Every handler reads
// and writes only through conn.db and reads the time only from it, so a replica
// applying the same command from a log does the same.

const (
	errTooLarge    = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	errNotFloat    = "ERR value is not a valid float"
	errOutOfRange  = "ERR offset is out of range"
	errLCSTooLarge = "ERR Insufficient memory, failed allocating transient memory for LCS"
	// maxLCSCells bounds LCS's table (4 bytes a cell), where Redis would try to
	// allocate whatever the strings need: two 64 MiB strings would need 16 PiB.
	maxLCSCells = 64 << 20
)

// storeError writes Redis's reply for an error of a store operation.
func storeError(conn *session, err error) {
	switch {
	case errors.Is(err, store.ErrNotInteger):
		conn.WriteError(errNotInt)
	case errors.Is(err, store.ErrOverflow):
		conn.WriteError("ERR increment or decrement would overflow")
	case errors.Is(err, store.ErrNotFloat):
		conn.WriteError(errNotFloat)
	case errors.Is(err, store.ErrNaNOrInfinity):
		conn.WriteError("ERR increment would produce NaN or Infinity")
	case errors.Is(err, store.ErrTooLarge):
		conn.WriteError(errTooLarge)
	case errors.Is(err, store.ErrNoSuchKey):
		conn.WriteError("ERR no such key")
	default:
		conn.WriteError("ERR " + err.Error())
	}
}

func cmdIncr(_ *Server, conn *session, args [][]byte) { incrBy(conn, args[1], 1) }

func cmdDecr(_ *Server, conn *session, args [][]byte) { incrBy(conn, args[1], -1) }

func cmdIncrBy(_ *Server, conn *session, args [][]byte) {
	n, ok := redisnum.ParseInt(args[2])
	if !ok {
		conn.WriteError(errNotInt)
		return
	}
	incrBy(conn, args[1], n)
}

func cmdDecrBy(_ *Server, conn *session, args [][]byte) {
	n, ok := redisnum.ParseInt(args[2])
	switch {
	case !ok:
		conn.WriteError(errNotInt)
	case n == math.MinInt64:
		conn.WriteError("ERR decrement would overflow")
	default:
		incrBy(conn, args[1], -n)
	}
}

func incrBy(conn *session, key []byte, delta int64) {
	n, err := conn.db.IncrBy(key, delta)
	if err != nil {
		storeError(conn, err)
		return
	}
	conn.WriteInt64(n)
}

func cmdIncrByFloat(_ *Server, conn *session, args [][]byte) {
	incr, ok := redisnum.ParseLongDouble(args[2])
	if !ok {
		// Redis checks the stored value first, with the same reply.
		conn.WriteError(errNotFloat)
		return
	}
	v, err := conn.db.IncrByFloat(args[1], incr)
	if err != nil {
		storeError(conn, err)
		return
	}
	conn.WriteBulk(v)
}

func cmdAppend(s *Server, conn *session, args [][]byte) {
	n, err := conn.db.Append(args[1], args[2], s.limits.MaxBulkLen)
	if err != nil {
		storeError(conn, err)
		return
	}
	conn.WriteInt(n)
}

func cmdStrlen(_ *Server, conn *session, args [][]byte) {
	v, ok := conn.get(args[1])
	conn.hit(ok)
	conn.WriteInt(len(v))
}

// cmdGetRange serves GETRANGE and SUBSTR: negative indexes count from the end, and
// out-of-range ones are clamped.
func cmdGetRange(_ *Server, conn *session, args [][]byte) {
	start, ok1 := redisnum.ParseInt(args[2])
	end, ok2 := redisnum.ParseInt(args[3])
	if !ok1 || !ok2 {
		conn.WriteError(errNotInt)
		return
	}
	v, ok := conn.get(args[1])
	conn.hit(ok)
	n := int64(len(v))
	if start < 0 && end < 0 && start > end {
		conn.WriteBulk(nil)
		return
	}
	if start < 0 {
		start = max(n+start, 0)
	}
	if end < 0 {
		end = max(n+end, 0)
	}
	end = min(end, n-1)
	if start > end || n == 0 {
		conn.WriteBulk(nil)
		return
	}
	conn.WriteBulk(v[start : end+1])
}

func cmdSetRange(s *Server, conn *session, args [][]byte) {
	offset, ok := redisnum.ParseInt(args[2])
	switch {
	case !ok:
		conn.WriteError(errNotInt)
		return
	case offset < 0:
		conn.WriteError(errOutOfRange)
		return
	}
	n, err := conn.db.SetRange(args[1], offset, args[3], s.limits.MaxBulkLen)
	if err != nil {
		storeError(conn, err)
		return
	}
	conn.WriteInt(n)
}

func cmdGetDel(_ *Server, conn *session, args [][]byte) {
	v, ok := conn.db.GetDel(args[1])
	conn.hit(ok)
	if ok {
		conn.WriteBulk(v)
		return
	}
	conn.WriteNull()
}

func cmdGetSet(_ *Server, conn *session, args [][]byte) {
	r := conn.db.Set(args[1], args[2], store.SetArgs{Get: true})
	if r.HadOld {
		conn.WriteBulk(r.Old)
		return
	}
	conn.WriteNull()
}

// cmdGetEx serves GETEX key [EX s | PX ms | EXAT t | PXAT tms | PERSIST]. As in
// Redis, a bad expiry is reported only when the key exists.
func cmdGetEx(_ *Server, conn *session, args [][]byte) {
	var (
		opt     string // the expiry option given, if any
		arg     []byte // its argument
		persist bool
	)
	for i := 2; i < len(args); i++ {
		o := strings.ToUpper(string(args[i]))
		switch {
		case o == "PERSIST" && opt == "":
			persist = true
		case (o == "EX" || o == "PX" || o == "EXAT" || o == "PXAT") && (opt == "" || opt == o) && !persist && i+1 < len(args):
			opt, arg = o, args[i+1]
			i++
		default:
			conn.WriteError(errSyntax)
			return
		}
	}
	var (
		change store.ExpiryChange
		bad    string
	)
	switch opt {
	case "":
		change.Persist = persist
	default:
		change.At, bad = expireArg(arg, opt, conn.db.Now(), "getex")
	}
	if bad != "" {
		if _, ok := conn.db.Get(args[1]); ok {
			conn.WriteError(bad)
		} else {
			conn.WriteNull()
		}
		return
	}
	if v, ok := conn.db.GetEx(args[1], change); ok {
		conn.WriteBulk(v)
		return
	}
	conn.WriteNull()
}

// expireArg reads the argument of an expiry option (EX, PX, EXAT or PXAT) as Redis's
// SET family does, and returns the expiry in Unix milliseconds, or the error reply.
func expireArg(arg []byte, opt string, now time.Time, cmd string) (int64, string) {
	n, ok := redisnum.ParseInt(arg)
	if !ok {
		return 0, errNotInt
	}
	seconds := opt == "EX" || opt == "EXAT"
	if n <= 0 || seconds && n > math.MaxInt64/1000 {
		return 0, invalidExpire(cmd)
	}
	if seconds {
		n *= 1000
	}
	if opt == "EX" || opt == "PX" {
		nowMs := now.UnixMilli()
		if n > math.MaxInt64-nowMs {
			return 0, invalidExpire(cmd)
		}
		n += nowMs
	}
	return n, ""
}

func invalidExpire(cmd string) string { return "ERR invalid expire time in '" + cmd + "' command" }

// cmdSetEx serves SETEX and PSETEX: SET key value EX|PX n.
func cmdSetEx(_ *Server, conn *session, args [][]byte) {
	name, opt, unit := "setex", "EX", time.Second
	if len(args[0]) == 6 {
		name, opt, unit = "psetex", "PX", time.Millisecond
	}
	if _, bad := expireArg(args[2], opt, conn.db.Now(), name); bad != "" {
		conn.WriteError(bad)
		return
	}
	n, _ := redisnum.ParseInt(args[2])
	conn.db.Set(args[1], args[3], store.SetArgs{TTL: scaleTTL(n, unit)})
	conn.WriteString("OK")
}

// cmdLCS serves LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN] with Redis's
// dynamic programme, so that among equally long answers it picks Redis's.
func cmdLCS(_ *Server, conn *session, args [][]byte) {
	a, _ := conn.get(args[1])
	b, _ := conn.get(args[2])
	var (
		getLen, getIdx, withMatchLen bool
		minMatchLen                  int64
	)
	for j := 3; j < len(args); j++ {
		switch o := strings.ToUpper(string(args[j])); {
		case o == "IDX":
			getIdx = true
		case o == "LEN":
			getLen = true
		case o == "WITHMATCHLEN":
			withMatchLen = true
		case o == "MINMATCHLEN" && j+1 < len(args):
			n, ok := redisnum.ParseInt(args[j+1])
			if !ok {
				conn.WriteError(errNotInt)
				return
			}
			minMatchLen = max(n, 0)
			j++
		default:
			conn.WriteError(errSyntax)
			return
		}
	}
	if getIdx && getLen {
		conn.WriteError("ERR If you want both the length and indexes, please just use IDX.")
		return
	}
	if (len(a)+1)*(len(b)+1) > maxLCSCells {
		conn.WriteError(errLCSTooLarge)
		return
	}
	lcs(conn, a, b, getLen, getIdx, withMatchLen, minMatchLen)
}

// lcs computes and writes LCS's reply: the subsequence, its length, or the matching
// ranges, walking the table back from its end exactly as Redis does.
func lcs(conn *session, a, b []byte, getLen, getIdx, withMatchLen bool, minMatchLen int64) {
	w := len(b) + 1
	dp := make([]uint32, (len(a)+1)*w)
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			if a[i-1] == b[j-1] {
				dp[i*w+j] = dp[(i-1)*w+j-1] + 1
			} else {
				dp[i*w+j] = max(dp[(i-1)*w+j], dp[i*w+j-1])
			}
		}
	}
	total := dp[len(a)*w+len(b)]
	if getLen {
		conn.WriteInt64(int64(total))
		return
	}
	type match struct{ aStart, aEnd, bStart, bEnd int }
	var (
		result  = make([]byte, total)
		matches []match
		idx     = int(total)
		cur     = match{aStart: len(a)} // aStart == len(a): no range open
	)
	i, j := len(a), len(b)
	for i > 0 && j > 0 {
		emit := false
		if a[i-1] == b[j-1] {
			result[idx-1] = a[i-1]
			switch {
			case cur.aStart == len(a):
				cur = match{i - 1, i - 1, j - 1, j - 1}
			case cur.aStart == i && cur.bStart == j:
				cur.aStart--
				cur.bStart--
			default:
				emit = true
			}
			if cur.aStart == 0 || cur.bStart == 0 {
				emit = true
			}
			idx--
			i--
			j--
		} else {
			if dp[(i-1)*w+j] > dp[i*w+j-1] {
				i--
			} else {
				j--
			}
			if cur.aStart != len(a) {
				emit = true
			}
		}
		if emit {
			if n := int64(cur.aEnd - cur.aStart + 1); minMatchLen == 0 || n >= minMatchLen {
				matches = append(matches, cur)
			}
			cur.aStart = len(a)
		}
	}
	if !getIdx {
		conn.WriteBulk(result)
		return
	}
	conn.WriteArray(4)
	conn.WriteBulkString("matches")
	conn.WriteArray(len(matches))
	for _, m := range matches {
		conn.WriteArray(2 + boolInt(withMatchLen))
		conn.WriteArray(2)
		conn.WriteInt(m.aStart)
		conn.WriteInt(m.aEnd)
		conn.WriteArray(2)
		conn.WriteInt(m.bStart)
		conn.WriteInt(m.bEnd)
		if withMatchLen {
			conn.WriteInt(m.aEnd - m.aStart + 1)
		}
	}
	conn.WriteBulkString("len")
	conn.WriteInt64(int64(total))
}
