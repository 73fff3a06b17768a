package server

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/redcon"
)

// introDiffCases are the differential cases of the introspection commands: CLIENT,
// OBJECT, MEMORY, SLOWLOG and CONFIG. Replies whose figures differ by nature are
// compared by shape (~).
func introDiffCases() []struct{ name, script string } {
	return []struct{ name, script string }{
		{"client names", `
			CLIENT GETNAME
			CLIENT SETNAME
			CLIENT SETNAME a b
			CLIENT SETNAME "a b"
			CLIENT SETNAME "a\nb"
			CLIENT SETNAME "caf\xc3\xa9"
			CLIENT SETNAME worker-1
			CLIENT GETNAME
			CLIENT GETNAME x
			CLIENT SETNAME ""
			CLIENT GETNAME
			~CLIENT ID
			CLIENT ID x
			CLIENT INFO x
			CLIENT foo
			CLIENT
		`},
		{"client info", `
			CLIENT SETNAME me
			~CLIENT INFO
			READONLY
			~CLIENT INFO
			READWRITE
			CLIENT NO-EVICT on
			~CLIENT INFO
			CLIENT NO-EVICT OFF
			CLIENT NO-EVICT maybe
			CLIENT NO-EVICT
			CLIENT SETNAME ""
		`},
		{"client list", `
			CLIENT LIST TYPE foo
			CLIENT LIST ID
			CLIENT LIST ID x
			CLIENT LIST ID 1 x
			CLIENT LIST foo
			CLIENT LIST TYPE normal foo
			CLIENT LIST ID 999999
			CLIENT LIST TYPE master
			CLIENT LIST TYPE pubsub
		`},
		{"client kill", `
			CLIENT KILL
			CLIENT KILL 192.0.2.1:5
			CLIENT KILL ADDR 192.0.2.1:5
			CLIENT KILL LADDR 192.0.2.1:5
			CLIENT KILL ADDR
			CLIENT KILL ID 0
			CLIENT KILL ID x
			CLIENT KILL ID -1
			CLIENT KILL ID 999999
			CLIENT KILL TYPE foo
			CLIENT KILL TYPE normal SKIPME maybe
			CLIENT KILL TYPE master
			CLIENT KILL TYPE normal SKIPME yes
			CLIENT KILL USER nobody
			CLIENT KILL USER default SKIPME yes
			CLIENT KILL foo bar
			CLIENT KILL ID 1 TYPE
		`},
		{"client reply errors", `
			CLIENT REPLY
			CLIENT REPLY maybe
			CLIENT REPLY ON
			CLIENT REPLY on x
		`},
		{"object", `
			OBJECT ENCODING {k}a
			OBJECT FREQ {k}a
			OBJECT REFCOUNT {k}a
			OBJECT IDLETIME {k}a
			SET {k}a 12345
			OBJECT ENCODING {k}a
			OBJECT REFCOUNT {k}a
			SET {k}a 5
			OBJECT REFCOUNT {k}a
			OBJECT ENCODING {k}a
			SET {k}a -1
			OBJECT ENCODING {k}a
			OBJECT REFCOUNT {k}a
			SET {k}a 007
			OBJECT ENCODING {k}a
			SET {k}a ""
			OBJECT ENCODING {k}a
			SET {k}a 9223372036854775807
			OBJECT ENCODING {k}a
			SET {k}a 9223372036854775808
			OBJECT ENCODING {k}a
			SET {k}a 12345678901234567890123
			OBJECT ENCODING {k}a
			SET {k}a 12345678901234567890123456789012345678901234
			OBJECT ENCODING {k}a
			SET {k}a 123456789012345678901234567890123456789012345
			OBJECT ENCODING {k}a
			SET {k}a "hello world"
			OBJECT ENCODING {k}a
			OBJECT REFCOUNT {k}a
			OBJECT IDLETIME {k}a
			OBJECT FREQ {k}a
			INCR {k}b
			OBJECT ENCODING {k}b
			OBJECT ENCODING
			OBJECT ENCODING {k}a {k}b
			OBJECT FREQ
			OBJECT foo
			OBJECT foo {k}a
			OBJECT
		`},
		{"help", `
			OBJECT HELP
			SLOWLOG HELP
		`},
		{"latency monitor off", `
			CONFIG GET latency-monitor-threshold
			LATENCY LATEST
			LATENCY HISTORY command
			LATENCY HISTORY nosuch
			LATENCY RESET
			LATENCY RESET command nosuch
			LATENCY reset COMMAND
			LATENCY GRAPH command
			LATENCY DOCTOR
			latency doctor
			LATENCY
			LATENCY foo
			LATENCY LATEST x
			LATENCY HISTORY
			LATENCY HISTORY a b
			LATENCY GRAPH
			LATENCY GRAPH a b
			LATENCY DOCTOR x
			LATENCY HELP
			LATENCY HELP x
			LATENCY HISTOGRAM nosuch get|x config|nosuch config|get|x
		`},
		{"latency tracking", `
			CONFIG GET latency-tracking
			CONFIG GET latency-tracking-info-percentiles
			CONFIG SET latency-tracking maybe
			CONFIG SET latency-tracking ""
			CONFIG SET latency-tracking 1
			CONFIG SET latency-tracking-info-percentiles "50 101"
			CONFIG SET latency-tracking-info-percentiles abc
			CONFIG SET latency-tracking-info-percentiles -1
			CONFIG SET latency-tracking-info-percentiles "50  99"
			CONFIG SET latency-tracking-info-percentiles " 50"
			CONFIG SET latency-tracking-info-percentiles "50 "
			CONFIG SET latency-tracking-info-percentiles "50,99"
			CONFIG SET latency-tracking-info-percentiles nan
			CONFIG SET latency-tracking-info-percentiles inf
			CONFIG SET latency-tracking-info-percentiles -inf
			CONFIG SET latency-tracking-info-percentiles 100.0000000000000000001
			CONFIG GET latency-tracking-info-percentiles
			CONFIG SET latency-tracking-info-percentiles ""
			CONFIG GET latency-tracking-info-percentiles
			CONFIG SET latency-tracking-info-percentiles "0x10 +5 .5 5. 1e2 -0 99.99 33.3333333 0.0000001 99.9999999 1E1"
			CONFIG GET latency-tracking-info-percentiles
			CONFIG SET latency-tracking-info-percentiles 100
			CONFIG GET latency-tracking-info-percentiles
			CONFIG SET latency-tracking NO
			CONFIG GET latency-tracking
			CONFIG SET latency-tracking yes latency-tracking-info-percentiles 200
			CONFIG GET latency-tracking
			CONFIG SET latency-tracking yes latency-tracking no
			CONFIG SET latency-tracking Yes latency-tracking-info-percentiles "50 99 99.9"
			CONFIG GET latency-tracking
			CONFIG GET latency-tracking-info-percentiles
		`},
		{"latency monitor threshold", `
			CONFIG SET latency-monitor-threshold -1
			CONFIG SET latency-monitor-threshold x
			CONFIG SET latency-monitor-threshold 1.5
			CONFIG SET latency-monitor-threshold 9223372036854775808
			CONFIG SET latency-monitor-threshold 9223372036854775807
			CONFIG GET latency-monitor-threshold
			CONFIG SET latency-monitor-threshold 100000
			CONFIG GET LATENCY-MONITOR-THRESHOLD
			LATENCY LATEST
			LATENCY HISTORY command
			LATENCY GRAPH fast-command
			LATENCY RESET
			CONFIG SET latency-monitor-threshold 0
			CONFIG GET latency-monitor-threshold
			LATENCY DOCTOR
		`},
		{"object idletime", `
			OBJECT IDLETIME {k}a
			SET {k}a v
			OBJECT IDLETIME {k}a
			GET {k}a
			OBJECT IDLETIME {k}a
			TOUCH {k}a {k}b {k}a
			OBJECT IDLETIME {k}a
			OBJECT IDLETIME {k}b
			MSET {k}b x1 {k}c x2
			MGET {k}a {k}b {k}d
			OBJECT IDLETIME {k}b
			OBJECT IDLETIME {k}c
			OBJECT IDLETIME {k}d
			EXPIRE {k}c 100
			OBJECT IDLETIME {k}c
			OBJECT IDLETIME
			OBJECT IDLETIME {k}a {k}b
		`},
		{"memory usage", `
			MEMORY USAGE {k}a
			SET {k}a v
			~MEMORY USAGE {k}a
			~MEMORY USAGE {k}a SAMPLES 0
			~MEMORY USAGE {k}a SAMPLES 5
			~MEMORY USAGE {k}a samples 5 SAMPLES 7
			MEMORY USAGE {k}a SAMPLES x
			MEMORY USAGE {k}a SAMPLES -1
			MEMORY USAGE {k}a SAMPLES
			MEMORY USAGE {k}a foo
			MEMORY USAGE {k}b SAMPLES x
			MEMORY USAGE {k}b foo
			MEMORY USAGE
			MEMORY foo
			MEMORY
		`},
		{"slowlog", `
			SLOWLOG RESET
			SLOWLOG LEN
			SLOWLOG GET
			SLOWLOG GET 0
			SLOWLOG GET -1
			SLOWLOG GET -2
			SLOWLOG GET x
			SLOWLOG GET 1 2
			SLOWLOG LEN x
			SLOWLOG RESET x
			SLOWLOG foo
			SLOWLOG
			CLIENT SETNAME slow
			CONFIG SET slowlog-log-slower-than 0
			SLOWLOG RESET
			SET {k}a v
			~SLOWLOG GET 1
			~SLOWLOG LEN
			CONFIG SET slowlog-log-slower-than -1
			SLOWLOG RESET
			GET {k}a
			SLOWLOG LEN
			CONFIG SET slowlog-log-slower-than 0
			SLOWLOG RESET
			MSET {k}a 1 {k}b 2 {k}c 3 {k}a 4 {k}b 5 {k}c 6 {k}a 7 {k}b 8 {k}c 9 {k}a 10 {k}b 11 {k}c 12 {k}a 13 {k}b 14 {k}c 15 {k}a 16 {k}b 17
			~SLOWLOG GET 1
			SLOWLOG RESET
			ECHO 1234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890
			~SLOWLOG GET 1
			CONFIG SET slowlog-max-len 1
			SLOWLOG RESET
			PING
			PING
			PING
			~SLOWLOG LEN
			CONFIG SET slowlog-max-len 128
			CONFIG SET slowlog-log-slower-than 10000
			SLOWLOG RESET
			CLIENT SETNAME ""
		`},
		{"command", `
			COMMAND GETKEYS MSET a 1 b 2
			COMMAND GETKEYS get k
			COMMAND GETKEYS del a b c
			COMMAND GETKEYS lcs a b
			COMMAND GETKEYS object encoding k
			COMMAND GETKEYS memory usage k
			COMMAND GETKEYS memory usage k SAMPLES 3
			COMMAND GETKEYS get
			COMMAND GETKEYS get a b
			COMMAND GETKEYS mset a 1 b
			COMMAND GETKEYS ping x
			COMMAND GETKEYS nosuch a
			COMMAND GETKEYS
			COMMAND GETKEYSANDFLAGS get k
			COMMAND GETKEYSANDFLAGS mset a 1 b 2
			COMMAND GETKEYSANDFLAGS del a b
			COMMAND GETKEYSANDFLAGS lcs a b
			COMMAND GETKEYSANDFLAGS copy a b
			COMMAND GETKEYSANDFLAGS rename a b
			COMMAND GETKEYSANDFLAGS incr a
			COMMAND GETKEYSANDFLAGS exists a b
			COMMAND GETKEYSANDFLAGS object encoding k
			COMMAND LIST FILTERBY ACLCAT nosuch
			COMMAND LIST FILTERBY MODULE nosuch
			COMMAND LIST FILTERBY foo x
			COMMAND LIST FILTERBY
			COMMAND LIST FILTERBY PATTERN
			COMMAND LIST x
			COMMAND COUNT x
			COMMAND INFO nosuch
			COMMAND INFO object|encoding
			COMMAND INFO get nosuch mget
			COMMAND DOCS nosuch
			COMMAND foo
		`},
		{"config", `
			CONFIG GET maxclients
			CONFIG GET timeout
			CONFIG GET slowlog-max-len
			CONFIG GET SLOWLOG-LOG-SLOWER-THAN
			CONFIG GET maxmemory
			CONFIG GET maxmemory-policy
			CONFIG GET save
			CONFIG GET cluster-enabled
			CONFIG GET nosuchparameter
			CONFIG GET
			CONFIG SET
			CONFIG SET timeout
			CONFIG SET foo 1
			CONFIG SET timeout 1 foo 2
			CONFIG SET maxclients x
			CONFIG SET MAXCLIENTS x
			CONFIG SET maxclients 0
			CONFIG SET maxclients 4294967296
			CONFIG SET timeout -1
			CONFIG SET timeout 2147483648
			CONFIG SET slowlog-max-len -1
			CONFIG SET slowlog-log-slower-than x
			CONFIG SET slowlog-log-slower-than -2
			CONFIG SET timeout 5 timeout 6
			CONFIG SET timeout 5 TIMEOUT 6
			CONFIG SET timeout 5 foo
			CONFIG SET databases 1
			CONFIG SET databases 1 timeout x
			CONFIG SET timeout x databases 1
			CONFIG SET timeout 7 slowlog-max-len 3
			CONFIG GET timeout
			CONFIG GET slowlog-max-len
			CONFIG SET timeout 0 slowlog-max-len 128
			CONFIG GET timeout
			CONFIG SET maxclients 10000
			CONFIG RESETSTAT
			CONFIG RESETSTAT x
			CONFIG foo
			CONFIG
		`},
	}
}

func TestRedisDiffIntrospection(t *testing.T) {
	p := newDiffPair(t)
	for _, c := range introDiffCases() {
		t.Run(c.name, func(t *testing.T) { p.run(t, script(t, c.script)) })
	}
}

// pipeline sends raw commands to addr at once, then ECHO end, and returns every
// reply before end's.
func pipeline(t *testing.T, addr string, cmds [][]string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var out strings.Builder
	for _, args := range cmds {
		out.WriteString(respCmd(args...))
	}
	out.WriteString(respCmd("ECHO", "end"))
	if _, err := c.Write([]byte(out.String())); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var got strings.Builder
	for !strings.HasSuffix(got.String(), "$3\r\nend\r\n") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", got.String(), err)
		}
		got.WriteString(line)
	}
	return strings.TrimSuffix(got.String(), "$3\r\nend\r\n")
}

// TestRedisDiffClientReply: CLIENT REPLY OFF and SKIP suppress the replies they
// should, errors included, as Redis does; ON answers again.
func TestRedisDiffClientReply(t *testing.T) {
	redisAddr, dhtAddr := startRedis(t), startDiffNode(t)
	cmds := script(t, `
		SET {k}a 1
		CLIENT REPLY OFF
		SET {k}a 2
		GET {k}a
		INCR
		NOSUCHCOMMAND
		CLIENT REPLY SKIP
		CLIENT REPLY ON
		GET {k}a
		CLIENT REPLY SKIP
		GET {k}a
		GET {k}a
		CLIENT REPLY SKIP
		CLIENT REPLY SKIP
		ECHO a
		ECHO b
		CLIENT REPLY SKIP
		INCR
		ECHO c
		CLIENT REPLY SKIP
		CLIENT REPLY OFF
		ECHO d
		CLIENT REPLY ON
		DEL {k}a
	`)
	r, d := pipeline(t, redisAddr, cmds), pipeline(t, dhtAddr, cmds)
	if r != d {
		t.Fatalf("redis-server: %q\ndht:          %q", r, d)
	}
	if want := "+OK\r\n+OK\r\n$1\r\n2\r\n$1\r\n2\r\n$1\r\nb\r\n$1\r\nc\r\n+OK\r\n:1\r\n"; d != want {
		t.Errorf("replies %q, want %q", d, want)
	}
}

// infoHeadings returns the section headings of an INFO reply.
func infoHeadings(t *testing.T, reply string) []string {
	t.Helper()
	_, v := redcon.ReadNextRESP([]byte(reply))
	if v.Type != redcon.Bulk {
		t.Fatalf("INFO answered %q", reply)
	}
	var heads []string
	for _, l := range strings.Split(v.String(), "\r\n") {
		if h, ok := strings.CutPrefix(l, "# "); ok {
			heads = append(heads, h)
		}
	}
	return heads
}

// TestRedisDiffInfoSections: INFO's arguments select the sections Redis's select,
// of the sections both have, in the same order; the fields of a section are
// name:value lines.
func TestRedisDiffInfoSections(t *testing.T) {
	p := newDiffPair(t)
	// Sections Redis has that dht does not: modules; and dht's own.
	redisOnly := []string{"Modules"}
	dhtOnly := []string{"Transactions"}
	field := regexp.MustCompile(`^[a-z0-9_|.\-]+:`)
	for _, args := range [][]string{
		{"INFO"}, {"INFO", "default"}, {"INFO", "all"}, {"INFO", "everything"}, {"INFO", "server", "clients"},
		{"INFO", "CLIENTS", "server"}, {"INFO", "commandstats"}, {"INFO", "errorstats"}, {"INFO", "stats", "memory"},
		{"INFO", "cpu"}, {"INFO", "nosuchsection"}, {"INFO", "default", "commandstats"}, {"INFO", "keyspace"},
		{"INFO", "latencystats"}, {"INFO", "LatencyStats", "commandstats"}, {"INFO", "default", "latencystats"},
	} {
		r, d := p.both(t, args)
		rh := slices.DeleteFunc(infoHeadings(t, r), func(h string) bool { return slices.Contains(redisOnly, h) })
		dh := slices.DeleteFunc(infoHeadings(t, d), func(h string) bool { return slices.Contains(dhtOnly, h) })
		if !slices.Equal(rh, dh) {
			t.Errorf("%q sections:\nredis-server: %q\ndht:          %q", args, rh, dh)
		}
		_, v := redcon.ReadNextRESP([]byte(d))
		for _, l := range strings.Split(v.String(), "\r\n") {
			if l != "" && !strings.HasPrefix(l, "# ") && !field.MatchString(l) {
				t.Errorf("%q: line %q is no field", args, l)
			}
		}
	}
}

// TestRedisDiffInfoFields: the fields of INFO that dht shares with Redis have
// values of the same shape, and commandstats and errorstats count alike.
func TestRedisDiffInfoFields(t *testing.T) {
	p := newDiffPair(t)
	for _, args := range script(t, `
		CONFIG RESETSTAT
		SET {k}a 1
		GET {k}a
		GET {k}b
		EXISTS {k}a {k}b {k}c {k}a
		TOUCH {k}a {k}c
		TYPE {k}a
		TYPE {k}b
		STRLEN {k}a
		TTL {k}c
		MGET {k}a {k}b
		INCR
		NOSUCHCOMMAND
		CLIENT NOSUCH
		SET {k}a v
		INCR {k}a
		CLIENT ID
	`) {
		p.both(t, args)
	}
	fields := func(reply string) map[string]string {
		_, v := redcon.ReadNextRESP([]byte(reply))
		m := map[string]string{}
		for _, l := range strings.Split(v.String(), "\r\n") {
			if k, val, ok := strings.Cut(l, ":"); ok {
				m[k] = val
			}
		}
		return m
	}
	r, d := p.both(t, []string{"INFO", "everything"})
	rf, df := fields(r), fields(d)
	exact := []string{"keyspace_hits", "keyspace_misses", "total_error_replies", "errorstat_ERR", "errorstat_WRONGTYPE",
		"cmdstat_get", "cmdstat_set", "cmdstat_incr", "cmdstat_client|id", "cmdstat_config|resetstat",
		"total_commands_processed", "expired_keys", "maxclients", "maxmemory", "maxmemory_policy",
		"redis_mode", "arch_bits", "evicted_keys", "total_connections_received", "rejected_connections"}
	for _, k := range exact {
		rv, dv := rf[k], df[k]
		if k == "redis_mode" {
			rv = "cluster"
		}
		if strings.HasPrefix(k, "cmdstat_") {
			rv, dv = regexp.MustCompile(`usec=\d+,usec_per_call=[\d.]+`).ReplaceAllString(rv, "usec"),
				regexp.MustCompile(`usec=\d+,usec_per_call=[\d.]+`).ReplaceAllString(dv, "usec")
		}
		if rv != dv {
			t.Errorf("INFO %s: redis-server %q, dht %q", k, rf[k], df[k])
		}
	}
	for k, dv := range df {
		if rv, ok := rf[k]; ok && replyShape(rv) != replyShape(dv) && !strings.HasSuffix(k, "_human") &&
			!slices.Contains([]string{"os", "redis_version", "run_id", "executable", "redis_mode", "mem_allocator"}, k) {
			t.Errorf("INFO %s: redis-server %q, dht %q differ in shape", k, rv, dv)
		}
	}
}

// infoFields splits one command's COMMAND INFO entry into its raw fields.
func infoFields(v redcon.RESP) []string {
	var out []string
	v.ForEach(func(f redcon.RESP) bool {
		out = append(out, string(f.Raw))
		return true
	})
	return out
}

// TestRedisDiffCommandInfoAll: COMMAND INFO describes every command dht shares with
// Redis, and each of its subcommands, as Redis 7.0 does: name, arity, key positions,
// ACL categories and tips alike, and the flags of the commands with keys (which
// cluster clients read).
func TestRedisDiffCommandInfoAll(t *testing.T) {
	p := newDiffPair(t)
	compare := func(name string, r, d []string, withFlags bool) {
		t.Helper()
		fields := []int{0, 1, 3, 4, 5, 6, 7}
		if withFlags {
			fields = append(fields, 2)
		}
		for _, i := range fields {
			if r[i] != d[i] {
				t.Errorf("COMMAND INFO %s field %d:\nredis-server: %q\ndht:          %q", name, i+1, r[i], d[i])
			}
		}
	}
	for name, c := range commandTable() {
		if strings.HasPrefix(name, "dht.") {
			continue
		}
		r, d := p.both(t, []string{"COMMAND", "INFO", name})
		_, rv := redcon.ReadNextRESP([]byte(r))
		_, dv := redcon.ReadNextRESP([]byte(d))
		var re, de redcon.RESP
		rv.ForEach(func(f redcon.RESP) bool { re = f; return false })
		dv.ForEach(func(f redcon.RESP) bool { de = f; return false })
		if re.Type != redcon.Array || de.Type != redcon.Array {
			t.Errorf("COMMAND INFO %s: redis-server %.100q, dht %.100q", name, r, d)
			continue
		}
		rf, df := infoFields(re), infoFields(de)
		compare(name, rf, df, c.firstKey > 0)
		redisSubs := map[string][]string{}
		_, rs := redcon.ReadNextRESP([]byte(rf[9]))
		rs.ForEach(func(f redcon.RESP) bool {
			ff := infoFields(f)
			_, n := redcon.ReadNextRESP([]byte(ff[0]))
			redisSubs[n.String()] = ff
			return true
		})
		_, ds := redcon.ReadNextRESP([]byte(df[9]))
		ds.ForEach(func(f redcon.RESP) bool {
			ff := infoFields(f)
			_, n := redcon.ReadNextRESP([]byte(ff[0]))
			if rsub, ok := redisSubs[n.String()]; ok {
				compare(n.String(), rsub, ff, false)
			} else if n.String() != "client|no-touch" && n.String() != "client|setinfo" {
				t.Errorf("COMMAND INFO %s lists %s, which Redis 7.0 does not have", name, n.String())
			}
			return true
		})
	}
}

// histogramEntries reads a LATENCY HISTOGRAM reply as "name calls" per command, in
// its order, and fails unless each command's buckets have Redis's shape: pairs of
// microseconds and calls, both rising, the last count all the calls.
func histogramEntries(t *testing.T, reply string) []string {
	t.Helper()
	_, v := redcon.ReadNextRESP([]byte(reply))
	items := respItems(v)
	if v.Type != redcon.Array || len(items)%2 != 0 {
		t.Fatalf("LATENCY HISTOGRAM answered %q", reply)
	}
	var out []string
	for i := 0; i < len(items); i += 2 {
		f := respItems(items[i+1])
		if items[i].Type != redcon.Bulk || len(f) != 4 || f[0].String() != "calls" || f[1].Type != redcon.Integer ||
			f[2].String() != "histogram_usec" || f[3].Type != redcon.Array || len(respItems(f[3]))%2 != 0 {
			t.Fatalf("LATENCY HISTOGRAM answered %q", reply)
		}
		var usec, calls int64
		for j, b := range respItems(f[3]) {
			n := b.Int()
			if b.Type != redcon.Integer || j%2 == 0 && n <= usec || j%2 == 1 && n <= calls {
				t.Fatalf("LATENCY HISTOGRAM's buckets of %s do not rise: %q", items[i].String(), reply)
			}
			if j%2 == 0 {
				usec = n
			} else {
				calls = n
			}
		}
		if calls != f[1].Int() {
			t.Fatalf("LATENCY HISTOGRAM's buckets of %s count %d calls of %d: %q", items[i].String(), calls, f[1].Int(), reply)
		}
		out = append(out, fmt.Sprintf("%s %d", items[i].String(), calls))
	}
	return out
}

// respItems returns the elements of an array.
func respItems(v redcon.RESP) []redcon.RESP {
	var out []redcon.RESP
	v.ForEach(func(e redcon.RESP) bool {
		out = append(out, e)
		return true
	})
	return out
}

// latencystatsShape returns the lines of an INFO latencystats reply, sorted, with
// their figures as replyShape leaves them.
func latencystatsShape(reply string) []string {
	_, v := redcon.ReadNextRESP([]byte(reply))
	lines := strings.Split(strings.TrimSpace(v.String()), "\r\n")
	for i, l := range lines {
		lines[i] = replyShape(l)
	}
	slices.Sort(lines)
	return lines
}

// TestRedisDiffLatencyTracking: after the same commands, LATENCY HISTOGRAM lists
// the same commands with the same calls as Redis's, its buckets in Redis's shape,
// and INFO latencystats the same lines; latency-tracking no stops the recording and
// CONFIG RESETSTAT drops the histograms, as in Redis. (The times differ by nature.)
func TestRedisDiffLatencyTracking(t *testing.T) {
	p := newDiffPair(t)
	run := func(text string) {
		for _, args := range script(t, text) {
			p.both(t, args)
		}
	}
	histograms := func(args string, ordered bool) {
		t.Helper()
		r, d := p.both(t, strings.Fields(args))
		re, de := histogramEntries(t, r), histogramEntries(t, d)
		if !ordered {
			slices.Sort(re)
			slices.Sort(de)
		}
		if !slices.Equal(re, de) {
			t.Errorf("%s:\nredis-server: %q\ndht:          %q", args, re, de)
		}
	}
	latencystats := func() {
		t.Helper()
		r, d := p.both(t, []string{"INFO", "latencystats"})
		if rl, dl := latencystatsShape(r), latencystatsShape(d); !slices.Equal(rl, dl) {
			t.Errorf("INFO latencystats:\nredis-server: %q\ndht:          %q", rl, dl)
		}
	}
	// COMMAND DOCS gives Redis's version, group and complexity (the summary is
	// dht's own).
	r, d := p.both(t, []string{"COMMAND", "DOCS", "latency|histogram"})
	_, rv := redcon.ReadNextRESP([]byte(r))
	_, dv := redcon.ReadNextRESP([]byte(d))
	if rd, dd := respItems(rv), respItems(dv); len(rd) != 2 || len(dd) != 2 ||
		!slices.Equal(infoFields(rd[1])[2:8], infoFields(dd[1])[2:8]) {
		t.Errorf("COMMAND DOCS latency|histogram:\nredis-server: %q\ndht:          %q", r, d)
	}
	run(`
		CONFIG RESETSTAT
		SET {k}a 1
		GET {k}a
		GET {k}a
		INCR {k}a
		INCR
		CONFIG GET maxclients
		CLIENT ID
		OBJECT ENCODING {k}a
		DISCARD
	`)
	histograms("LATENCY HISTOGRAM", false)
	histograms("LATENCY HISTOGRAM get incr nosuch SET get client|id CLIENT|ID object|encoding", true)
	histograms("LATENCY HISTOGRAM config object client latency", false)
	histograms("LATENCY HISTOGRAM", false)
	latencystats()
	run(`CONFIG SET latency-tracking-info-percentiles "50.5 0 100 99.99"`)
	latencystats()
	run(`CONFIG SET latency-tracking-info-percentiles ""`)
	latencystats()
	run(`
		CONFIG SET latency-tracking-info-percentiles "50 99 99.9"
		CONFIG SET latency-tracking no
		GET {k}a
		SET {k}a 2
	`)
	histograms("LATENCY HISTOGRAM get set", true)
	latencystats()
	run(`
		CONFIG SET latency-tracking yes
		GET {k}a
	`)
	histograms("LATENCY HISTOGRAM get set", true)
	run("CONFIG RESETSTAT")
	histograms("LATENCY HISTOGRAM", false)
	latencystats()
	histograms("LATENCY HISTOGRAM", false)
}
