package server

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dhtkv/dht/internal/acl"
	"github.com/dhtkv/dht/internal/redisnum"
)

// configParam is one parameter of CONFIG GET and SET. Those with a set or a parse
// function change at run time; the others describe how the node runs and are fixed
// by its config file, so CONFIG SET refuses them as Redis refuses its immutable
// ones.
type configParam struct {
	name string
	get  func(s *Server) string
	// min and max bound an integer parameter's value; set applies it.
	min, max int64
	set      func(s *Server, v int64)
	// parse reads the value of a parameter that is not an integer: it returns the
	// function that applies the value, or Redis's reason for refusing it.
	parse func(v []byte) (apply func(s *Server), why string)
}

// settable reports whether CONFIG SET changes p.
func (p *configParam) settable() bool { return p.set != nil || p.parse != nil }

// check reads v as p's value: it returns the function that applies it, or the
// reason CONFIG SET refuses it, in Redis 7.0's words.
func (p *configParam) check(v []byte) (apply func(s *Server), why string) {
	if p.parse != nil {
		return p.parse(v)
	}
	n, ok := redisnum.ParseInt(v)
	switch {
	case !ok:
		return nil, "argument couldn't be parsed into an integer"
	case n < p.min || n > p.max:
		return nil, fmt.Sprintf("argument must be between %d and %d inclusive", p.min, p.max)
	}
	return func(s *Server) { p.set(s, n) }, ""
}

// parseYesNo reads a yes/no parameter's value (in any case) for set.
func parseYesNo(set func(s *Server, on bool)) func(v []byte) (func(*Server), string) {
	return func(v []byte) (func(*Server), string) {
		switch strings.ToLower(string(v)) {
		case "yes":
			return func(s *Server) { set(s, true) }, ""
		case "no":
			return func(s *Server) { set(s, false) }, ""
		}
		return nil, "argument must be 'yes' or 'no'"
	}
}

// configParams are the parameters CONFIG knows, in the order CONFIG GET lists them.
func configParams() []configParam {
	fixed := func(v string) func(*Server) string { return func(*Server) string { return v } }
	return []configParam{
		{name: "maxclients", min: 1, max: math.MaxUint32,
			get: func(s *Server) string { return strconv.FormatInt(s.maxClients.Load(), 10) },
			set: func(s *Server, v int64) { s.maxClients.Store(v) }},
		{name: "timeout", min: 0, max: math.MaxInt32,
			get: func(s *Server) string {
				return strconv.FormatInt(int64(time.Duration(s.idleTimeout.Load()).Seconds()), 10)
			},
			set: func(s *Server, v int64) { s.idleTimeout.Store(int64(time.Duration(v) * time.Second)) }},
		{name: "slowlog-log-slower-than", min: -1, max: math.MaxInt64,
			get: func(s *Server) string { return strconv.FormatInt(s.slowlog.slower.Load(), 10) },
			set: func(s *Server, v int64) { s.slowlog.slower.Store(v) }},
		{name: "slowlog-max-len", min: 0, max: math.MaxInt64,
			get: func(s *Server) string { return strconv.FormatInt(s.slowlog.maxLen.Load(), 10) },
			set: func(s *Server, v int64) { s.slowlog.setMaxLen(v) }},
		{name: "latency-monitor-threshold", min: 0, max: math.MaxInt64,
			get: func(s *Server) string { return strconv.FormatInt(s.latency.threshold.Load(), 10) },
			set: func(s *Server, v int64) { s.latency.threshold.Store(v) }},
		{name: "latency-tracking",
			get:   func(s *Server) string { return yesNo(s.tracking.on.Load()) },
			parse: parseYesNo(func(s *Server, on bool) { s.tracking.on.Store(on) })},
		{name: "latency-tracking-info-percentiles",
			get: func(s *Server) string { return s.tracking.percentilesText() },
			parse: func(v []byte) (func(*Server), string) {
				ps, why := parsePercentiles(v)
				if why != "" {
					return nil, why
				}
				return func(s *Server) { s.tracking.percentiles.Store(&ps) }, ""
			}},
		{name: "save", get: fixed("")},
		{name: "appendonly", get: func(s *Server) string { return yesNo(s.disk != nil) }},
		{name: "appendfsync", get: func(s *Server) string { return s.cfg.Persistence.Fsync }},
		{name: "cluster-enabled", get: fixed("yes")},
		{name: "databases", get: fixed("1")},
		{name: "maxmemory", get: fixed("0")},
		{name: "maxmemory-policy", get: fixed("noeviction")},
		{name: "port", get: func(s *Server) string { return strconv.Itoa(s.self.Port) }},
		{name: "protected-mode", get: func(s *Server) string { return yesNo(s.protected) }},
		{name: "proto-max-bulk-len", get: func(s *Server) string { return strconv.Itoa(s.cfg.Limits.MaxBulkLen) }},
		{name: "tls-port", get: func(s *Server) string {
			if s.tlsLn != nil {
				return strconv.Itoa(s.self.Port)
			}
			return "0"
		}},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cmdConfig is CONFIG GET, SET, RESETSTAT, REWRITE and HELP; exec has checked
// the subcommand's arity.
func cmdConfig(s *Server, conn *session, args [][]byte) {
	switch sub := strings.ToLower(string(args[1])); sub {
	case "get":
		configGet(s, conn, args[2:])
	case "set":
		configSet(s, conn, args)
	case "resetstat":
		s.resetStats()
		conn.WriteString("OK")
	case "rewrite":
		conn.WriteError("ERR CONFIG REWRITE is not supported: dht is configured by its config file")
	case "help":
		writeHelp(conn, "config", args,
			"GET <pattern>",
			"    Return parameters matching the glob-like <pattern> and their values.",
			"SET <directive> <value>",
			"    Set the configuration <directive> to <value>.",
			"RESETSTAT",
			"    Reset statistics reported by the INFO command.",
		)
	}
}

// configGet is CONFIG GET pattern [pattern ...]: the parameters any pattern
// matches, each once; a pattern without wildcards names its parameter as it was
// written, as Redis 7.0 echoes it.
func configGet(s *Server, conn *session, patterns [][]byte) {
	var out []string
	for _, p := range configParams() {
		for _, pat := range patterns {
			if acl.Match(strings.ToLower(string(pat)), []byte(p.name)) {
				name := p.name
				if !bytes.ContainsAny(pat, "*?[\\") {
					name = string(pat)
				}
				out = append(out, name, p.get(s))
				break
			}
		}
	}
	writeBulks(conn, out)
}

// configSet is CONFIG SET parameter value [parameter value ...]: every value is
// checked before any is applied, with Redis 7.0's errors.
func configSet(s *Server, conn *session, args [][]byte) {
	if len(args)%2 != 0 {
		conn.WriteError(errSyntax)
		return
	}
	params := configParams()
	find := func(name []byte) *configParam {
		for i := range params {
			if strings.EqualFold(params[i].name, string(name)) {
				return &params[i]
			}
		}
		return nil
	}
	var (
		chosen  []*configParam
		applies []func(*Server)
		failed  string // the error, once one parameter is refused
	)
	for i := 2; i < len(args); i += 2 {
		p := find(args[i])
		if p == nil {
			conn.WriteError(fmt.Sprintf("ERR Unknown option or number of arguments for CONFIG SET - '%s'", args[i]))
			return
		}
		switch {
		case failed != "":
		case !p.settable():
			failed = fmt.Sprintf("ERR CONFIG SET failed (possibly related to argument '%s') - can't set immutable config", args[i])
		case containsParam(chosen, p):
			failed = fmt.Sprintf("ERR CONFIG SET failed (possibly related to argument '%s') - duplicate parameter", args[i])
		}
		chosen = append(chosen, p)
	}
	if failed != "" {
		conn.WriteError(failed)
		return
	}
	for i, p := range chosen {
		apply, why := p.check(args[3+2*i])
		if why != "" {
			conn.WriteError(fmt.Sprintf("ERR CONFIG SET failed (possibly related to argument '%s') - %s", p.name, why))
			return
		}
		applies = append(applies, apply)
	}
	for _, apply := range applies {
		apply(s)
	}
	conn.WriteString("OK")
}

func containsParam(ps []*configParam, p *configParam) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}
