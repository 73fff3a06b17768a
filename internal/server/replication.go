package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/cluster"
	"github.com/dhtkv/dht/internal/keyspace"
	"github.com/dhtkv/dht/internal/replica"
	"github.com/dhtkv/dht/internal/store"
)

// With a replication degree above 1, each slot range is a Raft group (package
// replica) and this file is where the server meets it: the state machine a group
// applies (the store's slots of one range, changed by the same command handlers that
// serve clients), the runs of commands a connection's worker proposes or reads
// together, and the leaders of the groups this node is not a member of, as its peers
// report them.

// shard is one group's state machine on this node: the store's keys of one range.
type shard struct {
	s     *Server
	group int
	slots keyspace.Range
	// logTime is the log clock of the last applied entry (Unix ns).
	logTime atomic.Int64
	// args is Apply's buffer of a command's arguments, kept from call to call.
	args [][]byte
	// index is the log index of the entry being applied and n the commands of it
	// applied so far: the writes of each command are stamped with both (see
	// store.Version and entryStamp), the same on every member. Only the group's
	// goroutine touches them.
	index, n uint64
}

// entryStamp is the stamp of the writes of the n-th command of the log entry at
// index: index in the top 40 bits, n below.
func entryStamp(index, n uint64) uint64 { return index<<24 | n&(1<<24-1) }

// Apply runs a batch of write commands (RESP arrays, one after another) against the
// store as of the log's time, and returns their replies, one after another.
func (sh *shard) Apply(now time.Time, index uint64, cmds []byte) []byte {
	sh.logTime.Store(now.UnixNano())
	if index != sh.index {
		sh.index, sh.n = index, 0
	}
	db := sh.s.store.At(now)
	w := session{db: db}
	args := sh.args
	for len(cmds) > 0 {
		sh.n++
		db.SetStamp(entryStamp(index, sh.n))
		complete, a, _, left, err := redcon.ReadNextCommand(cmds, args[:0])
		if err != nil || !complete || len(a) == 0 {
			w.WriteError("ERR malformed replicated command")
			break
		}
		args, cmds = a, left
		if c := sh.s.lookup(args[0]); c != nil {
			switch {
			case c.name == "dht.txn" || c.name == "dht.exec" || c.firstKey == 0:
				c.run(sh.s, &w, args)
			case sh.s.runUnlocked(&w, c, args) != nil:
				w.WriteError(errTxnLocked)
			}
		} else {
			w.WriteError(unknownCommand(args))
		}
	}
	// Keep the buffer, but not the entry it points into, nor a huge one.
	clear(args)
	if cap(args) <= 1024 {
		sh.args = args[:0]
	}
	return w.out
}

// AppendedThrough marks, on the leader, the transactions whose COMMIT or ABORT it
// appended for a follower as settling, as it marks those proposed here.
func (sh *shard) AppendedThrough(cmds []byte) {
	var batch [][][]byte
	for len(cmds) > 0 {
		complete, args, _, left, err := redcon.ReadNextCommand(cmds, nil)
		if err != nil || !complete || len(args) == 0 {
			break
		}
		batch, cmds = append(batch, args), left
	}
	sh.s.settle(sh.group, batch)
}

// stampedSnapshot starts the snapshots that keep the keys' stamps (see
// store.Version): a key part of length 0 followed by a byte no participant snapshot
// starts with. Snapshots written before start with the key part (see
// appendTxnSnapshot).
const stampedSnapshot = "\x00\xd7"

// Snapshot returns the range's keys and transactions.
func (sh *shard) Snapshot() ([]byte, error) {
	sh.s.metrics.snapshots.WithLabelValues("taken").Inc()
	return sh.s.appendTxnSnapshot([]byte(stampedSnapshot), sh.group, sh.s.store.AppendRange(nil, sh.slots)), nil
}

// Restore replaces the range's keys and transactions with a snapshot's. A snapshot
// written before the keys had stamps gives them the stamp 0.
func (sh *shard) Restore(data []byte) error {
	sh.s.metrics.snapshots.WithLabelValues("restored").Inc()
	load := sh.s.store.LoadUnstampedRange
	if rest, ok := bytes.CutPrefix(data, []byte(stampedSnapshot)); ok {
		load, data = sh.s.store.LoadRange, rest
	}
	keys, txns, err := splitTxnSnapshot(data)
	if err == nil {
		err = load(sh.slots, keys)
	}
	if err == nil {
		err = sh.s.restoreTxn(sh.group, txns)
	}
	if err != nil {
		return fmt.Errorf("group %d: %w", sh.group, err)
	}
	return nil
}

// leaderView is what this node knows of the leaders of groups it is not a member
// of, from its peers' probe replies.
type leaderView struct {
	mu    sync.Mutex
	lead  map[int]uint64 // by group: Raft id
	term  map[int]uint64
	empty map[string]map[int]bool // by peer, then group: the peer's replica is new
}

func newLeaderView() *leaderView {
	return &leaderView{lead: map[int]uint64{}, term: map[int]uint64{}, empty: map[string]map[int]bool{}}
}

// heard records what a peer said of a group it is a member of.
func (v *leaderView) heard(peer string, group int, lead, term uint64, empty bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if term > v.term[group] || term == v.term[group] && lead != 0 {
		v.lead[group], v.term[group] = lead, term
	}
	if v.empty[peer] == nil {
		v.empty[peer] = map[int]bool{}
	}
	v.empty[peer][group] = empty
}

func (v *leaderView) leader(group int) uint64 {
	lead, _ := v.get(group)
	return lead
}

// get returns the leader peers report for group, and its term.
func (v *leaderView) get(group int) (lead, term uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.lead[group], v.term[group]
}

func (v *leaderView) peerEmpty(peer string, group int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.empty[peer][group]
}

// leaderOf returns the member that leads group, as far as this node knows, or nil.
func (s *Server) leaderOf(group int) *cluster.Member {
	var id uint64
	if s.repl.Member(group) {
		id, _ = s.repl.Leader(group)
	} else {
		id = s.view.leader(group)
	}
	if id == 0 || int(id) > len(s.slots.Members()) {
		return nil
	}
	return &s.slots.Members()[id-1]
}

// groupStatus renders what this node tells its peers in its probe replies: for each
// group it is a member of, "group:leader:term:empty".
func (s *Server) groupStatus() string {
	var b strings.Builder
	for _, g := range s.repl.Groups() {
		lead, term := s.repl.Leader(g)
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%d:%d:%d", g, lead, term, boolInt(s.repl.Empty(g)))
	}
	return b.String()
}

// heardGroups takes in a peer's group status and lets this node's replicas of new
// groups take part in elections once every member is known to be new.
func (s *Server) heardGroups(peer, status string) {
	for part := range strings.SplitSeq(status, ",") {
		f := strings.Split(part, ":")
		if len(f) != 4 {
			continue
		}
		g, err1 := strconv.Atoi(f[0])
		lead, err2 := strconv.ParseUint(f[1], 10, 64)
		term, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || g < 0 || g >= len(s.slots.Members()) {
			continue
		}
		s.view.heard(peer, g, lead, term, f[3] == "1")
	}
	for _, g := range s.repl.Groups() {
		if !s.repl.Empty(g) {
			continue
		}
		all := true
		for _, m := range s.slots.Replicas(g) {
			if m.Name != s.self.Name && !s.view.peerEmpty(m.Name, g) {
				all = false
				break
			}
		}
		if all {
			s.repl.Release(g, "every member of the group is new")
		}
	}
}

// cmdReadonly serves READONLY and READWRITE: whether the connection may read from a
// replica that does not lead the key's group.
func cmdReadonly(_ *Server, conn *session, args [][]byte) {
	if conn.c != nil {
		conn.c.readonly.Store(len(args[0]) == len("readonly"))
	}
	conn.WriteString("OK")
}

// readsHere reports whether a read of group may be served by this node for conn: it
// leads the group, or it replicates it and the connection sent READONLY.
func (s *Server) readsHere(conn *session, group int) bool {
	if l := s.leaderOf(group); l != nil && l.Name == s.self.Name {
		return true
	}
	return conn.c != nil && conn.c.readonly.Load() && s.repl.Member(group)
}

// readDB is the table a read of group runs against: the store where this node leads
// the group, else a view whose reads leave expired keys for the log to remove.
func (s *Server) readDB(group int) *store.Store {
	if l, _ := s.repl.Leader(group); l == cluster.RaftID(s.self.Index) {
		return s.store
	}
	return s.keeping
}

// runRead runs a read command against group's table as readDB chooses it. Where a
// transaction holds its keys it waits for them, unless onLoop is set: then it reports
// false, having done nothing.
func (s *Server) runRead(conn *session, c *command, args [][]byte, group int, onLoop bool) bool {
	db := conn.db
	conn.db = s.readDB(group)
	defer func() { conn.db = db }()
	if onLoop {
		return s.runUnlocked(conn, c, args) == nil
	}
	s.runWaiting(conn, c, args)
	return true
}

// errUnknownOutcome is the reply to a write that was proposed but not seen committed
// within the failover bound: it may still be applied.
func (s *Server) errUnknownOutcome(group int) string {
	return fmt.Sprintf("%s: slot range %s: the write was not committed within %s (no majority?); it may still be applied",
		errClusterDown, s.slots.Range(group), s.cfg.Timeouts.Failover.Duration)
}

// definite reports whether a replication error means the request was certainly not
// carried out, so that it may be routed again.
func definite(err error) bool {
	var nl *replica.NotLeaderError
	return errors.As(err, &nl) || errors.Is(err, replica.ErrLost) || errors.Is(err, replica.ErrDropped) ||
		errors.Is(err, replica.ErrNotMember)
}

// replicateOne runs one keyed command whose group this node leads: a write is
// proposed and answered once applied, a read waits for a read index. ok is false when
// the command was certainly not carried out (the lead moved), and may be routed again.
func (s *Server) replicateOne(conn *session, c *command, args [][]byte, group int) (ok bool) {
	deadline := time.Now().Add(s.cfg.Timeouts.Failover.Duration)
	if !c.writes {
		if err := s.waitRead(s.repl.ReadIndex(group), deadline.UnixNano()); err != nil {
			if definite(err) {
				return false
			}
			conn.WriteError(fmt.Sprintf("%s: slot range %s: %v", errClusterDown, s.slots.Range(group), err))
			return true
		}
		s.runRead(conn, c, args, group, false)
		return true
	}
	if why := s.tooLarge(group, args); why != "" {
		conn.WriteError(why)
		return true
	}
	if vote := s.voteWithoutLog(c, args); vote != nil {
		conn.WriteRaw(vote)
		return true
	}
	start := time.Now()
	var (
		p   *replica.Proposal
		res []byte
		err error
	)
	var awaited func()
	defer func() {
		if awaited != nil {
			awaited()
		}
	}()
	for {
		for s.keysLocked(c, args) {
			if awaited == nil {
				awaited = s.await(c, args)
			}
			if !s.waitReleased(group, deadline) {
				conn.WriteError(s.errTxnTimeout())
				return true
			}
		}
		s.metrics.proposals.Inc()
		p = s.repl.ProposeThen(group, appendCommand(nil, args), s.settleProposal(group, [][][]byte{args}))
		res, err = s.waitProposal(p, deadline.UnixNano())
		if err != nil || !isTxnLocked(res) {
			break
		}
		if awaited == nil {
			awaited = s.await(c, args)
		}
		if !s.waitReleased(group, deadline) {
			conn.WriteError(s.errTxnTimeout())
			return true
		}
	}
	switch {
	case err == nil:
		s.metrics.commitLatency.Observe(time.Since(start).Seconds())
		conn.WriteRaw(res)
		conn.lastWrite(group, p.Index())
	case definite(err):
		return false
	default:
		conn.WriteError(s.errUnknownOutcome(group))
	}
	return true
}

// throughRaft reports whether a coordinator's DHT.TXN command goes to a group's
// leader through Raft where this node holds a replica: a PREPARE, COMMIT or ABORT,
// which a group may apply twice alike, and which a coordinator may send again when it
// cannot tell whether it was applied.
// (A DECIDE whose outcome is unknown fails its transaction's command: it goes as a
// request, whose answer does not depend on this node's replica.)
func throughRaft(args [][]byte) bool {
	if len(args) < 2 {
		return false
	}
	v := args[1]
	return bytes.EqualFold(v, []byte("prepare")) || bytes.EqualFold(v, []byte("commit")) || bytes.EqualFold(v, []byte("abort"))
}

// replicateThrough runs a coordinator's DHT.TXN command (see throughRaft) in a group
// this node holds a replica of but does not lead: it sends the command to the leader
// through Raft, with the group's other messages, rather than as a request to the
// leader's node, which costs more than the write itself, and answers what its own
// replica's apply gives, the same as every other's. A vote that changes nothing is
// answered from this replica's state, as a leader answers it. ok is false when the
// command was certainly not sent (no leader is known), and may be routed again.
func (s *Server) replicateThrough(conn *session, c *command, args [][]byte, group int) (ok bool) {
	if vote := s.voteWithoutLog(c, args); vote != nil {
		conn.WriteRaw(vote)
		return true
	}
	s.metrics.proposals.Inc()
	s.txn.through.Inc()
	p := s.repl.ProposeThrough(group, appendCommand(nil, args), nil)
	res, err := s.waitProposal(p, time.Now().Add(s.cfg.Timeouts.Failover.Duration).UnixNano())
	switch {
	case err == nil:
		conn.WriteRaw(res)
	case definite(err):
		return false
	default:
		conn.WriteError(s.errUnknownOutcome(group))
	}
	return true
}

// waitProposal waits for p's result until deadline (Unix ns). An error that is not
// p's own (context.DeadlineExceeded, or the server's when it stops) means the
// outcome is not known.
func (s *Server) waitProposal(p *replica.Proposal, deadline int64) ([]byte, error) {
	if !s.waitDone(p.Done(), deadline) {
		return nil, s.notDone()
	}
	return p.Result()
}

// waitRead waits until r may be read, up to deadline (Unix ns).
func (s *Server) waitRead(r *replica.Read, deadline int64) error {
	if !s.waitDone(r.Done(), deadline) {
		return s.notDone()
	}
	return r.Err()
}

// notDone is the error of a wait that ended before what it waited for.
func (s *Server) notDone() error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// raftFrameOverhead is room for what a Raft message adds around one log entry; a
// replicated write must leave it free within limits.max_bulk_len, which bounds each
// frame a peer accepts.
const raftFrameOverhead = 64 << 10

// tooLarge returns the error for a write too large to replicate to the other members
// of group, or "" (always for a group of one).
func (s *Server) tooLarge(group int, args [][]byte) string {
	if len(s.slots.Replicas(group)) == 1 {
		return ""
	}
	n := 0
	for _, a := range args {
		n += len(a) + 16
	}
	if most := s.limits.MaxBulkLen - raftFrameOverhead; n > most {
		return fmt.Sprintf("ERR command too large to replicate: about %d bytes, at most %d (limits.max_bulk_len less 64 KiB)", n, most)
	}
	return ""
}

// appendCommand appends args to b as a RESP array.
func appendCommand(b []byte, args [][]byte) []byte {
	b = redcon.AppendArray(b, len(args))
	for _, a := range args {
		b = redcon.AppendBulk(b, a)
	}
	return b
}

// localKind classifies a queued command for batching: a write of a group this node
// leads, a read of one it may read here (with no error to report), or neither.
func (s *Server) localKind(conn *session, q *queued) (kind runKind, group int) {
	if q.violation != nil {
		return notLocal, 0
	}
	c := s.lookup(q.args[0])
	if c == nil || c.firstKey == 0 || c.waits || !c.arityOK(len(q.args)) || c.pairs && len(q.args)%2 == 0 ||
		c.writes && len(q.raw) > s.limits.MaxBulkLen-raftFrameOverhead {
		return notLocal, 0
	}
	slot, cross := commandSlot(c, q.args)
	if slot < 0 || cross && (!c.multiGroup || s.crossGroup(c, q.args)) {
		return notLocal, 0
	}
	group = s.slots.Group(slot)
	if !c.writes {
		if s.repl.ReadsNow(group) {
			// Run on the loop as it comes, with no read index to wait for.
			return notLocal, 0
		}
		if s.readsHere(conn, group) {
			return localRead, group
		}
		return notLocal, 0
	}
	if l := s.leaderOf(group); l == nil || l.Name != s.self.Name || s.keysLocked(c, q.args) || s.voteWithoutLog(c, q.args) != nil {
		return notLocal, 0
	}
	return localWrite, group
}

// runKind says how a run of commands is replicated.
type runKind int

const (
	notLocal runKind = iota
	localWrite
	localRead
)

// maxRun bounds the commands of one connection proposed or read together.
const maxRun = 1024

// localRun is a run of one connection's commands that are all writes, or all reads,
// of groups this node leads (reads: or may read): the writes of each group go into
// one proposal, the reads of each group wait for one read index.
type localRun struct {
	kind runKind
	qs   []queued
	// of is each command's group; groups lists them once each, in order.
	of, groups []int
	reads      []*replica.Read
	props      []*replica.Proposal
	// start is when the run started (Server.mono), deadline when its waits give up
	// (Unix ns).
	start    time.Duration
	deadline int64
}

// mayRunLocal reports whether cl's commands may be run as local runs: exec answers
// the others (why they may not run, or not yet), or checks the user's permissions.
func (s *Server) mayRunLocal(cl *client) bool {
	return (cl.authed && !cl.restricted || cl.peer != "") && s.members.BarrierPassed()
}

// gatherLocal returns the run at the start of qs (at most maxRun commands), or nil
// when the first command is not a write or read this node carries out here.
func (s *Server) gatherLocal(w *session, qs []queued) *localRun {
	kind, _ := s.localKind(w, &qs[0])
	if kind == notLocal {
		return nil
	}
	run := &localRun{kind: kind, of: make([]int, 0, min(len(qs), maxRun)), groups: make([]int, 0, 4)}
	for len(run.of) < len(qs) && len(run.of) < maxRun {
		k, g := s.localKind(w, &qs[len(run.of)])
		if k != kind {
			break
		}
		run.add(g)
	}
	run.qs = qs[:len(run.of)]
	return run
}

// add counts one more command, of group g, in the run.
func (run *localRun) add(g int) {
	run.of = append(run.of, g)
	if !containsInt(run.groups, g) {
		run.groups = append(run.groups, g)
	}
}

// startLocal proposes the run's writes, or asks for its reads' read indexes; then
// (unless nil) is called once for each group as it completes.
func (s *Server) startLocal(run *localRun, then func()) {
	run.start = s.mono()
	run.deadline = time.Now().Add(s.cfg.Timeouts.Failover.Duration).UnixNano()
	if run.kind == localRead {
		run.reads = make([]*replica.Read, len(run.groups))
		for i, g := range run.groups {
			run.reads[i] = s.repl.ReadIndexThen(g, then)
		}
		return
	}
	run.props = make([]*replica.Proposal, len(run.groups))
	for i, g := range run.groups {
		size := 0
		for j, q := range run.qs {
			if run.of[j] == g {
				size += len(q.raw) + 16
			}
		}
		payload := make([]byte, 0, size)
		var cmds [][][]byte
		for j, q := range run.qs {
			if run.of[j] == g {
				payload = appendCommand(payload, q.args)
				if resolves(q.args) {
					cmds = append(cmds, q.args)
				}
			}
		}
		s.metrics.proposals.Inc()
		run.props[i] = s.repl.ProposeThen(g, payload, both(s.settleProposal(g, cmds), then))
	}
}

// both returns a function that calls f and g, each unless nil.
func both(f, g func()) func() {
	switch {
	case f == nil:
		return g
	case g == nil:
		return f
	}
	return func() { f(); g() }
}

// runLocal carries out the run at the start of qs and returns how many commands it
// carried out (0 when the first is not such a command). Commands whose group's lead
// moved are routed again one by one.
func (s *Server) runLocal(w *session, qs []queued) int {
	if !s.mayRunLocal(w.c) {
		return 0
	}
	run := s.gatherLocal(w, qs)
	if run == nil {
		return 0
	}
	s.startLocal(run, nil)
	_, _ = s.answerLocal(w, run, 0, false)
	return len(run.qs)
}

// stopped says where answerLocal, on an event loop, stopped answering a run.
type stopped int

const (
	// answeredAll: every command of the run is answered.
	answeredAll stopped = iota
	// mustRoute: the next command has to be routed again (its group's lead moved,
	// or a transaction held its keys), which a worker does.
	mustRoute
	// outputFull: the client has as many replies waiting as it may; the loop goes
	// on once it has read them.
	outputFull
)

// answerLocal waits for a run started by startLocal, until its deadline, and writes
// the replies of its commands from the from'th on. A command that has to be routed
// again is routed from here, and large replies wait for the client to read them,
// unless onLoop is set: then answerLocal, which may not wait, stops there and returns
// the place of the next command to answer and why it stopped.
func (s *Server) answerLocal(w *session, run *localRun, from int, onLoop bool) (next int, why stopped) {
	if run.kind == localRead {
		errs := make([]error, len(run.groups))
		for i := range run.groups {
			errs[i] = s.waitRead(run.reads[i], run.deadline)
		}
		for i := from; i < len(run.qs); i++ {
			q := run.qs[i]
			err := errs[indexOf(run.groups, run.of[i])]
			c := s.lookup(q.args[0])
			switch {
			case !onLoop:
			case err != nil && definite(err):
				return i, mustRoute
			case w.c.loopFull():
				// Large replies go out as they are made, and the rest wait for a
				// client that does not read them, rather than piling up.
				return i, outputFull
			}
			w.c.noteCommand(c, q.args)
			mark := len(w.out)
			switch {
			case err == nil:
				if !s.runRead(w, c, q.args, run.of[i], onLoop) {
					// A transaction holds the keys: the worker waits for it.
					w.out = w.out[:mark]
					return i, mustRoute
				}
			case definite(err):
				s.execRouted(w, c, q.args, q.raw)
			default:
				w.WriteError(fmt.Sprintf("%s: slot range %s: %v", errClusterDown, s.slots.Range(run.of[i]), err))
			}
			s.account(w, c, q.args, mark, run.start)
			if !onLoop {
				w.c.flushIfLarge(w)
			}
		}
		return len(run.qs), answeredAll
	}
	results := make([][]byte, len(run.groups))
	errs := make([]error, len(run.groups))
	for i, p := range run.props {
		results[i], errs[i] = s.waitProposal(p, run.deadline)
		if errs[i] == nil && from == 0 {
			s.metrics.commitLatency.Observe((s.mono() - run.start).Seconds())
			w.lastWrite(run.groups[i], p.Index())
		}
	}
	// The replies of the commands before from were taken already.
	for i := range from {
		if gi := indexOf(run.groups, run.of[i]); errs[gi] == nil {
			size, _ := redcon.ReadNextRESP(results[gi])
			results[gi] = results[gi][size:]
		}
	}
	for i := from; i < len(run.qs); i++ {
		q := run.qs[i]
		gi := indexOf(run.groups, run.of[i])
		c := s.lookup(q.args[0])
		err := errs[gi]
		switch {
		case !onLoop:
		case err != nil && definite(err) || err == nil && nextLocked(results[gi]):
			return i, mustRoute
		case w.c.loopFull():
			return i, outputFull
		}
		w.c.noteCommand(c, q.args)
		mark := len(w.out)
		switch {
		case err == nil:
			s.writeApplied(w, c, q, &results[gi])
		case definite(err):
			s.execRouted(w, c, q.args, q.raw)
		default:
			w.WriteError(s.errUnknownOutcome(run.of[i]))
		}
		s.account(w, c, q.args, mark, run.start)
	}
	return len(run.qs), answeredAll
}

// writeApplied answers a write of a run from the replies its proposal left in
// results, taking the first: a write a transaction's lock refused is routed again.
func (s *Server) writeApplied(w *session, c *command, q queued, results *[]byte) {
	size, reply := redcon.ReadNextRESP(*results)
	if size == 0 || reply.Type == 0 {
		w.WriteError("ERR replicated command left no reply")
		return
	}
	locked := isTxnLocked((*results)[:size])
	if !locked {
		w.WriteRaw((*results)[:size])
	}
	*results = (*results)[size:]
	if locked {
		s.execRouted(w, c, q.args, q.raw)
	}
}

// nextLocked reports whether the first reply in results is a transaction's refusal.
func nextLocked(results []byte) bool {
	size, _ := redcon.ReadNextRESP(results)
	return size > 0 && isTxnLocked(results[:size])
}

func containsInt(s []int, v int) bool { return indexOf(s, v) >= 0 }

func indexOf(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// execRouted routes a keyed command of a replicated cluster and carries it out: here
// when this node leads its group, at the leader otherwise. While the group has no
// leader, or its lead moves under the command, it waits, up to the failover bound,
// and then answers -CLUSTERDOWN.
func (s *Server) execRouted(conn *session, c *command, args [][]byte, raw []byte) {
	deadline := time.Now().Add(s.cfg.Timeouts.Failover.Duration)
	for {
		slot, _ := commandSlot(c, args)
		group := s.slots.Group(slot)
		owner, why := s.routeReplicated(slot)
		if why == "" && owner != nil && owner.Name != s.self.Name && conn.txn && throughRaft(args) && s.repl.Member(group) &&
			s.replicateThrough(conn, c, args, group) {
			return
		}
		switch {
		case why != "":
			conn.WriteError(why)
			return
		case !c.writes && s.readsHere(conn, group) && s.replicateOne(conn, c, args, group):
			return
		case owner != nil && owner.Name != s.self.Name:
			var extra time.Duration
			if c.blocking != nil {
				extra = c.blocking(args)
			}
			// A leader that cannot be reached may have died before this node
			// noticed: wait for the group to elect another and route again (a
			// group of one has no other).
			retry := time.Now().Before(deadline) && len(s.slots.Replicas(group)) > 1
			if s.tryForward(conn, owner, raw, extra, retry) {
				if c.writes {
					conn.lastWrite(group, 0)
				}
				return
			}
		case owner != nil && s.replicateOne(conn, c, args, group):
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			conn.WriteError(fmt.Sprintf("%s: slot range %s has no leader (its group has no majority of live members?)",
				errClusterDown, s.slots.Range(group)))
			return
		}
		s.waitLeaderChange(group, min(left, 50*time.Millisecond))
	}
}

// waitLeaderChange waits for a change of group's leader, at most d.
func (s *Server) waitLeaderChange(group int, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.repl.LeaderChange(group): // nil, blocking forever, when not a member
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// routeReplicated finds the leader of slot's group; nil with no reason means there is
// none yet (or it is down), and the caller may wait for one.
func (s *Server) routeReplicated(slot int) (owner *cluster.Member, why string) {
	if !s.members.BarrierPassed() {
		return nil, fmt.Sprintf("%s: startup barrier: waiting for nodes %s", errClusterDown, s.waitingFor())
	}
	group := s.slots.Group(slot)
	if reps := s.slots.Replicas(group); len(reps) == 1 && reps[0].Name != s.self.Name {
		// A group of one member (replication degree 1) has no one to fail over to:
		// while its node is down, its slots are down.
		if why := s.unavailable(reps[0]); why != "" {
			return nil, why
		}
	}
	l := s.leaderOf(group)
	if l == nil || l.Name != s.self.Name && s.members.State(l.Name) != cluster.Up {
		return nil, ""
	}
	return l, ""
}

// commandSlot is the slot of a keyed command's keys, and whether they span slots.
func commandSlot(c *command, args [][]byte) (slot int, cross bool) {
	slot = -1
	c.keys(args, func(k []byte) {
		sl := keyspace.Slot(k)
		if slot >= 0 && sl != slot {
			cross = true
		}
		slot = sl
	})
	return slot, cross
}

// sweepReplicated removes expired keys where this node may: in the groups it leads,
// by its own clock (its later proposals are stamped no earlier), and in the others by
// the log's clock, never ahead of what the leader decided.
func (s *Server) sweepReplicated() {
	for _, g := range s.repl.Groups() {
		sh := s.shards[g]
		if l, _ := s.repl.Leader(g); l == cluster.RaftID(s.self.Index) {
			s.store.SweepExpiredRange(sh.slots, 20)
			continue
		}
		if t := sh.logTime.Load(); t > 0 {
			s.store.At(time.Unix(0, t)).SweepExpiredRange(sh.slots, 20)
		}
	}
}

// cmdWait answers WAIT numreplicas timeout: how many replicas other than the leader
// hold the connection's last write, waiting up to timeout milliseconds (0: without
// bound) for numreplicas of them. Every acknowledged write is already on a majority
// of its group; WAIT tells whether the rest have it too.
func cmdWait(s *Server, conn *session, args [][]byte) {
	want, err1 := strconv.ParseInt(string(args[1]), 10, 64)
	ms, err2 := strconv.ParseInt(string(args[2]), 10, 64)
	switch {
	case err1 != nil || err2 != nil:
		conn.WriteError(errNotInt)
		return
	case ms < 0:
		conn.WriteError("ERR timeout is negative")
		return
	}
	if s.repl == nil {
		conn.WriteInt(0)
		return
	}
	var deadline <-chan time.Time
	if ms > 0 {
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		n := s.replicasHolding(conn)
		if int64(n) >= want {
			conn.WriteInt(n)
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			conn.WriteInt(n)
			return
		case <-s.ctx.Done():
			conn.WriteInt(n)
			return
		}
	}
}

// replicasHolding counts the followers that hold the connection's last write. A
// connection that wrote nothing here (or whose write's group is now led elsewhere)
// gets what is certain: a committed write is on a majority.
func (s *Server) replicasHolding(conn *session) int {
	c := conn.c
	if c == nil || c.lastIndex == 0 {
		return len(s.slots.Replicas(0)) - 1
	}
	st, ok := s.repl.Status(c.lastGroup)
	if !ok || st.Role != "leader" {
		return len(s.slots.Replicas(c.lastGroup)) / 2
	}
	n := 0
	for _, f := range st.Followers {
		if f.Match >= c.lastIndex {
			n++
		}
	}
	return n
}
