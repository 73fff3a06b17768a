package server

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dhtkv/dht/internal/buildinfo"
)

// infoSection is one section of INFO: its heading, whether INFO without arguments
// (and INFO default) shows it, and the function that writes its lines.
type infoSection struct {
	name  string
	shown bool
	lines func(s *Server) []string
}

// infoSections are INFO's sections in Redis's order, dht's own among them. A
// section is one function of the server, so that adding one is adding a line.
func infoSections() []infoSection {
	return []infoSection{
		{"Server", true, (*Server).serverInfo},
		{"Clients", true, (*Server).clientsInfo},
		{"Memory", true, (*Server).memoryInfo},
		{"Persistence", true, (*Server).persistenceInfo},
		{"Stats", true, (*Server).statsInfo},
		{"Replication", true, (*Server).replicationInfo},
		{"CPU", true, (*Server).cpuInfo},
		{"Transactions", true, (*Server).txnInfo},
		{"Commandstats", false, (*Server).commandstatsInfo},
		{"Errorstats", true, (*Server).errorstatsInfo},
		{"Latencystats", false, (*Server).latencystatsInfo},
		{"Cluster", true, (*Server).clusterInfoSection},
		{"Keyspace", true, (*Server).keyspaceInfo},
	}
}

// cmdInfo is INFO [section ...]: no section, or default, gives the default
// sections; all and everything give every one; unknown names give nothing.
func cmdInfo(s *Server, conn *session, args [][]byte) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := want["all"] || want["everything"]
	def := len(args) == 1 || want["default"]
	var b strings.Builder
	for _, sec := range infoSections() {
		if !all && !(def && sec.shown) && !want[strings.ToLower(sec.name)] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + sec.name + "\r\n")
		for _, l := range sec.lines(s) {
			b.WriteString(l + "\r\n")
		}
	}
	conn.WriteBulkString(b.String())
}

func (s *Server) serverInfo() []string {
	exe, _ := os.Executable()
	uptime := time.Since(s.started)
	return []string{
		"redis_version:" + redisVersion,
		"redis_git_sha1:00000000",
		"redis_git_dirty:0",
		"redis_mode:cluster",
		"dht_version:" + buildinfo.Version(),
		"os:" + runtime.GOOS + " " + runtime.GOARCH,
		"arch_bits:64",
		"go_version:" + runtime.Version(),
		fmt.Sprintf("process_id:%d", os.Getpid()),
		"process_supervised:no",
		"run_id:" + s.self.ID,
		fmt.Sprintf("tcp_port:%d", s.self.Port),
		fmt.Sprintf("server_time_usec:%d", time.Now().UnixMicro()),
		fmt.Sprintf("uptime_in_seconds:%d", int64(uptime.Seconds())),
		fmt.Sprintf("uptime_in_days:%d", int64(uptime.Hours()/24)),
		"executable:" + exe,
		"io_threads_active:0",
		"dht_node:" + s.self.Name,
		fmt.Sprintf("dht_event_loops:%d", s.eventLoops()),
	}
}

// eventLoops is how many event loops serve clients (none with TLS).
func (s *Server) eventLoops() int {
	switch {
	case s.tlsLn != nil:
		return 0
	case s.loops > 0:
		return s.loops
	}
	return runtime.GOMAXPROCS(0)
}

func (s *Server) clientsInfo() []string {
	s.clientsMu.Lock()
	clients, peers := 0, 0
	for cl := range s.clients {
		if cl.isPeer.Load() {
			peers++
		} else {
			clients++
		}
	}
	s.clientsMu.Unlock()
	return []string{
		fmt.Sprintf("connected_clients:%d", clients),
		fmt.Sprintf("cluster_connections:%d", peers),
		fmt.Sprintf("maxclients:%d", s.maxClients.Load()),
		fmt.Sprintf("dht_waiting_commands:%d", s.busy.Load()),
	}
}

func (s *Server) memoryInfo() []string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	used := ms.HeapAlloc
	s.notePeak(used)
	peak := s.stats.peakMemory.Load()
	rss := residentBytes()
	total := systemMemory()
	frag := 0.0
	if used > 0 {
		frag = float64(rss) / float64(used)
	}
	return []string{
		fmt.Sprintf("used_memory:%d", used),
		"used_memory_human:" + humanBytes(used),
		fmt.Sprintf("used_memory_rss:%d", rss),
		"used_memory_rss_human:" + humanBytes(rss),
		fmt.Sprintf("used_memory_peak:%d", peak),
		"used_memory_peak_human:" + humanBytes(peak),
		fmt.Sprintf("used_memory_peak_perc:%.2f%%", float64(used)*100/float64(max(peak, 1))),
		fmt.Sprintf("total_system_memory:%d", total),
		"total_system_memory_human:" + humanBytes(total),
		"maxmemory:0",
		"maxmemory_human:0B",
		"maxmemory_policy:noeviction",
		fmt.Sprintf("mem_fragmentation_ratio:%.2f", frag),
		"mem_allocator:" + runtime.Version(),
		fmt.Sprintf("go_heap_sys:%d", ms.HeapSys),
		fmt.Sprintf("go_heap_objects:%d", ms.HeapObjects),
		fmt.Sprintf("go_stack_inuse:%d", ms.StackInuse),
		fmt.Sprintf("go_sys:%d", ms.Sys),
		fmt.Sprintf("go_gc_cycles:%d", ms.NumGC),
		fmt.Sprintf("go_gc_pause_total_usec:%d", ms.PauseTotalNs/1000),
	}
}

// humanBytes prints n as Redis's INFO does: 0B, 1.50K, 2.00M, ...
func humanBytes(n uint64) string {
	f := float64(n)
	for _, u := range []struct {
		size   float64
		suffix string
	}{{1 << 50, "P"}, {1 << 40, "T"}, {1 << 30, "G"}, {1 << 20, "M"}, {1 << 10, "K"}} {
		if f >= u.size {
			return fmt.Sprintf("%.2f%s", f/u.size, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// residentBytes is the process's resident set (the second field of
// /proc/self/statm, in pages), or 0 where that file does not exist.
func residentBytes() uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// systemMemory is the machine's memory (MemTotal of /proc/meminfo), or 0.
func systemMemory() uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func (s *Server) statsInfo() []string {
	base := s.baseline()
	hits, misses := s.keyHits()
	return []string{
		fmt.Sprintf("total_connections_received:%d", s.connsTotal.Load()-base.conns),
		fmt.Sprintf("total_commands_processed:%d", s.commandsProcessed()-s.baselineProcessed(base)),
		fmt.Sprintf("instantaneous_ops_per_sec:%d", s.stats.opsPerSec.Load()),
		fmt.Sprintf("rejected_connections:%d", s.stats.rejectedConns.Load()-base.rejectedConns),
		fmt.Sprintf("expired_keys:%d", s.expiredKeys()-base.expired),
		"evicted_keys:0",
		fmt.Sprintf("keyspace_hits:%d", hits-base.hits),
		fmt.Sprintf("keyspace_misses:%d", misses-base.misses),
		"pubsub_channels:0",
		"pubsub_patterns:0",
		fmt.Sprintf("total_error_replies:%d", s.stats.errorReplies.Load()-base.errorReplies),
		fmt.Sprintf("dht_forwarded_commands:%d", int64(counterValue(s.metrics.forwarded))),
		fmt.Sprintf("acl_access_denied_auth:%d", int64(counterValue(s.metrics.authFailures))),
		fmt.Sprintf("acl_access_denied_cmd:%d", int64(counterValue(s.metrics.deniedCmd))),
		fmt.Sprintf("acl_access_denied_key:%d", int64(counterValue(s.metrics.deniedKey))),
	}
}

// baselineProcessed is total_commands_processed at the last CONFIG RESETSTAT.
func (s *Server) baselineProcessed(base statsBase) int64 {
	var total int64
	for _, c := range base.commands {
		total += c.calls
	}
	for _, c := range base.subs {
		total += c.calls
	}
	return total
}

func (s *Server) cpuInfo() []string {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return nil
	}
	secs := func(t syscall.Timeval) string {
		return fmt.Sprintf("%d.%06d", t.Sec, t.Usec)
	}
	return []string{"used_cpu_sys:" + secs(ru.Stime), "used_cpu_user:" + secs(ru.Utime)}
}

// commandstatsInfo lists, for each command and subcommand called since the last
// CONFIG RESETSTAT, its calls, time, and the calls refused or failed.
func (s *Server) commandstatsInfo() []string {
	base := s.baseline()
	var lines []string
	add := func(name string, st *cmdStats, key *command, sub string) {
		n := st.read().minus(base.subCounts(key, sub))
		if n.calls == 0 && n.rejected == 0 && n.failed == 0 {
			return
		}
		usec := n.nanos / 1000
		per := 0.0
		if n.calls > 0 {
			per = float64(usec) / float64(n.calls)
		}
		lines = append(lines, fmt.Sprintf("cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d",
			name, n.calls, usec, per, n.rejected, n.failed))
	}
	for _, name := range slices.Sorted(maps.Keys(s.commands)) {
		c := s.commands[name]
		add(name, c.stats, c, "")
		for _, sub := range slices.Sorted(maps.Keys(c.subcommands)) {
			sc := c.subcommands[sub]
			add(sc.name, &sc.stats, c, sub)
		}
	}
	return lines
}

// subCounts is the baseline of a command (sub empty) or of one of its
// subcommands.
func (b statsBase) subCounts(c *command, sub string) cmdCounts {
	if sub == "" {
		return b.commands[c]
	}
	return b.subs[c.subcommands[sub]]
}

func (s *Server) errorstatsInfo() []string {
	errs := s.errorCounts()
	var lines []string
	for _, code := range slices.Sorted(maps.Keys(errs)) {
		lines = append(lines, fmt.Sprintf("errorstat_%s:count=%d", code, errs[code]))
	}
	return lines
}

// clusterInfoSection gives, beside Redis's one line, the whole cluster's key count
// (DBSIZE counts this node's primary slots only, as in Redis Cluster).
func (s *Server) clusterInfoSection() []string {
	return []string{"cluster_enabled:1", fmt.Sprintf("dht_cluster_keys:%d", s.clusterKeys())}
}
