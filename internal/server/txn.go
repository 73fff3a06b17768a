package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/cluster"
	"github.com/dhtkv/dht/internal/keyspace"
	"github.com/dhtkv/dht/internal/store"
	"github.com/dhtkv/dht/internal/txn"
)

// Multi-key commands whose keys belong to several groups run as transactions
// (package txn): this node coordinates them, and every group it holds a copy of keeps
// a txn.Participant next to its keys, changed by the DHT.TXN commands its log applies
// (or, without replication, that this node runs as the group's only member). Ordinary
// commands meet the participants' locks here: a read of a key a transaction writes, or
// a write of a key a transaction holds, waits for it to be resolved.

// errTxnLocked is the internal reply of a write that met a transaction's lock when
// its group applied it; the node that proposed it waits and proposes it again.
const errTxnLocked = "TXNLOCKED a transaction holds a key of this command"

// crossGroupCommand reports whether a command may name keys of several groups, as a
// transaction.
func crossGroupCommand(name string) bool {
	switch name {
	case "mset", "msetnx", "del", "unlink", "exists", "mget", "touch":
		return true
	}
	return false
}

// txnState is the node's side of the transactions: the participants of its groups,
// its coordinator and their metrics.
type txnState struct {
	groups []*txnGroup // by group
	coord  *txn.Coordinator

	committed    prometheus.Counter
	aborted      *prometheus.CounterVec
	recovered    prometheus.Counter
	retries      prometheus.Counter
	waits        prometheus.Counter
	through      prometheus.Counter
	participants prometheus.Histogram
	latency      prometheus.Histogram
}

// txnGroup is one group's participant, guarded for the commands that check its locks
// outside the group's apply loop.
type txnGroup struct {
	mu sync.RWMutex
	p  *txn.Participant
	// released is closed, and replaced, whenever a transaction releases locks.
	released chan struct{}
	// waiting counts, by key, the ordinary commands here that wait for a
	// transaction's lock: until they ran, new transactions are turned away from
	// those keys (they retry), so that a stream of them cannot starve a GET or SET.
	wmu     sync.Mutex
	waiting map[string]int
	// flushes counts the FLUSHALLs here that wait for the group's transactions:
	// until they ran, new transactions are turned away from every key of the group.
	flushes int
	// settling holds the transactions whose COMMIT or ABORT this node proposed to
	// the group, or appended to its log for a follower, and has not yet applied:
	// what it proposes after them is applied after them, so it proposes without
	// waiting for their locks. Applying the COMMIT or ABORT, or the failure of the
	// proposal, clears the mark.
	smu      sync.Mutex
	settling map[txn.ID]struct{}
}

// settled reports whether a COMMIT or ABORT of transaction id is in the group's log
// ahead of what this node proposes now, as far as it knows.
func (tg *txnGroup) settled(id txn.ID) bool {
	tg.smu.Lock()
	defer tg.smu.Unlock()
	_, ok := tg.settling[id]
	return ok
}

// unsettle clears the mark of transaction id (see settling).
func (tg *txnGroup) unsettle(id txn.ID) {
	tg.smu.Lock()
	defer tg.smu.Unlock()
	delete(tg.settling, id)
}

// settle marks the transactions whose COMMIT or ABORT is among cmds (a group's
// commands) as settling (see txnGroup.settling), and returns them.
func (s *Server) settle(group int, cmds [][][]byte) []txn.ID {
	var ids []txn.ID
	for _, args := range cmds {
		if !resolves(args) {
			continue
		}
		if id, err := txn.ParseID(string(args[3])); err == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	tg := s.txn.groups[group]
	tg.smu.Lock()
	defer tg.smu.Unlock()
	for _, id := range ids {
		tg.settling[id] = struct{}{}
	}
	return ids
}

// settleProposal is settle for a proposal of cmds to the group: it returns the
// function that clears the marks once the proposal completed (or nil when there
// are none), for the case it failed.
func (s *Server) settleProposal(group int, cmds [][][]byte) func() {
	ids := s.settle(group, cmds)
	if ids == nil {
		return nil
	}
	tg := s.txn.groups[group]
	return func() {
		for _, id := range ids {
			tg.unsettle(id)
		}
	}
}

// resolves reports whether a command is a DHT.TXN COMMIT or ABORT.
func resolves(args [][]byte) bool {
	if len(args) < 4 || !bytes.EqualFold(args[0], []byte("dht.txn")) {
		return false
	}
	v := args[1]
	return bytes.EqualFold(v, []byte("commit")) || bytes.EqualFold(v, []byte("abort"))
}

// await registers that an ordinary command waits for its keys; the function it
// returns unregisters it.
func (s *Server) await(c *command, args [][]byte) func() {
	tg := s.txn.groups[s.keyGroup(c, args)]
	tg.wmu.Lock()
	c.keys(args, func(k []byte) { tg.waiting[string(k)]++ })
	tg.wmu.Unlock()
	return func() {
		tg.wmu.Lock()
		defer tg.wmu.Unlock()
		c.keys(args, func(k []byte) {
			if tg.waiting[string(k)]--; tg.waiting[string(k)] <= 0 {
				delete(tg.waiting, string(k))
			}
		})
	}
}

// awaited reports whether an ordinary command waits for one of ops' keys, or a
// FLUSHALL for any key of the group.
func (tg *txnGroup) awaited(ops []txn.Op) bool {
	tg.wmu.Lock()
	defer tg.wmu.Unlock()
	if tg.flushes > 0 {
		return true
	}
	if len(tg.waiting) == 0 {
		return false
	}
	for _, op := range ops {
		if tg.waiting[string(op.Key)] > 0 {
			return true
		}
	}
	return false
}

func newTxnState(s *Server) *txnState {
	t := &txnState{
		committed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_txn_committed_total", Help: "Multi-key commands across slot ranges this node coordinated that committed.",
		}),
		aborted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dht_txn_aborted_total", Help: "Multi-key commands across slot ranges this node coordinated that did not commit, by reason.",
		}, []string{"reason"}),
		recovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_txn_recovered_total", Help: "Transactions whose coordinator was gone that this node resolved: found stuck and resolved from their record, or committed and finished from it.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_txn_retries_total", Help: "Attempts of transactions this node coordinated that gave up under contention (wait-die) and were started again.",
		}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_txn_waits_total", Help: "Times a transaction this node coordinated found keys held by a younger one and asked again shortly.",
		}),
		through: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_txn_steps_through_raft_total", Help: "Transaction steps (prepare, commit, abort) this node sent to a group's leader through Raft, as a member of the group, rather than as a request.",
		}),
		participants: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dht_txn_participants", Help: "Slot ranges taking part in each transaction this node coordinated.",
			Buckets: prometheus.LinearBuckets(2, 1, 15),
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dht_txn_commit_latency_seconds", Help: "From starting a transaction to its decision.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
	}
	s.registry.MustRegister(t.committed, t.aborted, t.recovered, t.retries, t.waits, t.through, t.participants, t.latency)
	for range s.slots.Members() {
		t.groups = append(t.groups, &txnGroup{p: txn.NewParticipant(txn.DefaultOptions), released: make(chan struct{}), waiting: map[string]int{}, settling: map[txn.ID]struct{}{}})
	}
	t.coord = &txn.Coordinator{
		Groups:  txnGroups{s},
		GroupOf: func(key []byte) int { return s.slots.Group(keyspace.Slot(key)) },
		Node:    uint32(s.self.Index),
		Now:     time.Now,
		Poll:    2 * time.Millisecond,
		Cleanup: s.cfg.Timeouts.Failover.Duration,
	}
	return t
}

// txnGroups carries the coordinator's commands as DHT.TXN commands, routed as any
// keyed write: proposed here where this node leads the group, forwarded otherwise.
type txnGroups struct{ s *Server }

func (g txnGroups) Call(ctx context.Context, cmd txn.Command) (txn.Reply, error) {
	if err := ctx.Err(); err != nil {
		return txn.Reply{}, err
	}
	args := cmd.AppendArgs([][]byte{[]byte("DHT.TXN")})
	sess := &session{db: g.s.store, txn: true}
	g.s.exec(sess, args, appendCommand(nil, args), true)
	_, reply := redcon.ReadNextRESP(sess.out)
	switch reply.Type {
	case redcon.Bulk:
		return txn.ParseReply(reply.Bytes())
	case redcon.Error:
		return txn.Reply{}, fmt.Errorf("%s %s: %s", cmd.Verb, cmd.ID, reply.Bytes())
	}
	return txn.Reply{}, fmt.Errorf("%s %s: unexpected reply %q", cmd.Verb, cmd.ID, sess.out)
}

// Released returns the channel the participant of route's group closes when it next
// releases a lock, where this node holds the group's replica (or, without
// replication, owns its slots); else nil.
func (g txnGroups) Released(route []byte) <-chan struct{} {
	group := g.s.slots.Group(keyspace.Slot(route))
	if g.s.repl != nil && !g.s.repl.Member(group) ||
		g.s.repl == nil && g.s.slots.Replicas(group)[0].Name != g.s.self.Name {
		return nil
	}
	tg := g.s.txn.groups[group]
	tg.mu.RLock()
	defer tg.mu.RUnlock()
	return tg.released
}

// cmdTxn applies a DHT.TXN command to the participant of its route key's group.
func cmdTxn(s *Server, conn *session, args [][]byte) {
	cmd, err := txn.ParseCommand(args[1:])
	if err != nil {
		conn.WriteError("ERR " + err.Error())
		return
	}
	if s.repl == nil {
		// Run by this node alone: it answers as a leader does before proposing.
		if vote := s.voteWithoutLog(s.commands["dht.txn"], args); vote != nil {
			conn.WriteRaw(vote)
			return
		}
	}
	tg := s.txn.groups[s.slots.Group(keyspace.Slot(cmd.Route))]
	tg.mu.Lock()
	r := tg.p.Apply(storeKV{conn.db}, conn.db.Now(), cmd)
	if cmd.Verb == txn.Commit || cmd.Verb == txn.Abort {
		tg.unsettle(cmd.ID)
		close(tg.released)
		tg.released = make(chan struct{})
	}
	tg.mu.Unlock()
	conn.WriteBulk(txn.AppendReply(nil, r))
}

// storeKV is the store as a participant reads and writes it.
type storeKV struct{ db *store.Store }

func (kv storeKV) Get(key []byte) ([]byte, bool) { return kv.db.Get(key) }
func (kv storeKV) Put(key, value []byte)         { kv.db.Set(key, value, store.SetArgs{}) }
func (kv storeKV) Del(key []byte)                { kv.db.Del(key) }

// crossGroup reports whether a keyed command names keys of several groups.
func (s *Server) crossGroup(c *command, args [][]byte) bool {
	group, cross := -1, false
	c.keys(args, func(k []byte) {
		g := s.slots.Group(keyspace.Slot(k))
		cross = cross || group >= 0 && g != group
		group = g
	})
	return cross
}

// keyGroup is the group of a keyed command's keys (its first key's).
func (s *Server) keyGroup(c *command, args [][]byte) int {
	return s.slots.Group(keyspace.Slot(args[c.firstKey]))
}

// lockedBy reports whether a command must wait for a transaction before it runs in
// group: a write meets any lock on its keys, a read only a write lock. Holders that
// settled reports (when not nil) are passed over (txn.Participant.Blocks). The
// caller holds the group's lock, at least for reading.
func (s *Server) lockedBy(tg *txnGroup, c *command, args [][]byte, settled func(txn.ID) bool) bool {
	if tg.p.Prepared() == 0 {
		return false
	}
	locked := false
	c.keys(args, func(k []byte) {
		locked = locked || tg.p.Blocks(k, c.writes, settled)
	})
	return locked
}

// keysLocked reports whether a transaction holds keys an ordinary write must wait for
// before it is proposed: one whose COMMIT or ABORT this node proposed does not.
func (s *Server) keysLocked(c *command, args [][]byte) bool {
	if c.name == "dht.txn" {
		return false
	}
	tg := s.txn.groups[s.keyGroup(c, args)]
	tg.mu.RLock()
	defer tg.mu.RUnlock()
	return s.lockedBy(tg, c, args, tg.settled)
}

// voteWithoutLog returns the reply of a DHT.TXN prepare that meets a lock, or keys
// an ordinary command waits for, which a leader gives without replicating it (the
// vote changes nothing), or nil. A DECIDE is answered so only with a wait: one that
// dies goes to the log, which records it aborted (an earlier copy of it may still be
// applied, and must not commit then). Nor is a DECIDE turned away from keys an
// ordinary command waits for: it holds no lock once applied, so the command does not
// wait for it, and making it wait instead would let a cycle of waits form.
func (s *Server) voteWithoutLog(c *command, args [][]byte) []byte {
	if c.name != "dht.txn" {
		return nil
	}
	cmd, err := txn.ParseCommand(args[1:])
	if err != nil {
		return nil
	}
	tg := s.txn.groups[s.slots.Group(keyspace.Slot(cmd.Route))]
	tg.mu.RLock()
	r, conflict := tg.p.Conflict(time.Now(), cmd, tg.settled)
	if !conflict && cmd.Verb != txn.Decide && tg.p.WouldLock(cmd) && tg.awaited(cmd.Ops) {
		r, conflict = txn.Reply{Vote: txn.VoteDie}, true
	}
	tg.mu.RUnlock()
	if !conflict || cmd.Verb == txn.Decide && r.Vote != txn.VoteWait {
		return nil
	}
	return redcon.AppendBulk(nil, txn.AppendReply(nil, r))
}

// runUnlocked runs a keyed command (not DHT.TXN) in its group unless a transaction
// holds one of its keys; it returns the channel to wait on when one does.
func (s *Server) runUnlocked(conn *session, c *command, args [][]byte) (wait <-chan struct{}) {
	tg := s.txn.groups[s.keyGroup(c, args)]
	tg.mu.RLock()
	defer tg.mu.RUnlock()
	if s.lockedBy(tg, c, args, nil) {
		return tg.released
	}
	c.run(s, conn, args)
	return nil
}

// runWaiting runs a keyed command in its group, waiting, up to the failover bound,
// for the transactions that hold its keys.
func (s *Server) runWaiting(conn *session, c *command, args [][]byte) {
	wait := s.runUnlocked(conn, c, args)
	if wait == nil {
		return
	}
	deadline := time.NewTimer(s.cfg.Timeouts.Failover.Duration)
	defer deadline.Stop()
	for waited := false; ; waited = true {
		if waited {
			if wait = s.runUnlocked(conn, c, args); wait == nil {
				return
			}
		}
		if !waited {
			defer s.await(c, args)()
		}
		select {
		case <-wait:
		case <-deadline.C:
			conn.WriteError(s.errTxnTimeout())
			return
		case <-s.ctx.Done():
			conn.WriteError(s.errTxnTimeout())
			return
		}
	}
}

// waitReleased waits, until deadline, for a transaction of group to release its
// locks. It reports false once the deadline has passed.
func (s *Server) waitReleased(group int, deadline time.Time) bool {
	tg := s.txn.groups[group]
	tg.mu.RLock()
	ch := tg.released
	tg.mu.RUnlock()
	left := time.Until(deadline)
	if left <= 0 {
		return false
	}
	t := time.NewTimer(min(left, 50*time.Millisecond))
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-s.ctx.Done():
		return false
	}
	return true
}

func (s *Server) errTxnTimeout() string {
	return fmt.Sprintf("%s: a multi-key transaction held the keys for longer than %s", errClusterDown, s.cfg.Timeouts.Failover.Duration)
}

// isTxnLocked reports whether a reply is errTxnLocked's.
func isTxnLocked(reply []byte) bool {
	return bytes.HasPrefix(reply, []byte("-TXNLOCKED "))
}

// txnOps turns a multi-key command into the operations of a transaction.
func txnOps(c *command, args [][]byte) []txn.Op {
	var ops []txn.Op
	switch c.name {
	case "mset", "msetnx":
		kind := txn.OpPut
		if c.name == "msetnx" {
			kind = txn.OpPutNX
		}
		for i := 1; i+1 < len(args); i += 2 {
			ops = append(ops, txn.Op{Kind: kind, Key: args[i], Value: args[i+1]})
		}
	case "del", "unlink":
		for _, k := range args[1:] {
			ops = append(ops, txn.Op{Kind: txn.OpDel, Key: k})
		}
	default:
		for _, k := range args[1:] {
			ops = append(ops, txn.Op{Kind: txn.OpRead, Key: k})
		}
	}
	return ops
}

// execTxn runs a multi-key command whose keys belong to several groups as a
// transaction coordinated by this node, and answers it as the command would be
// answered. It answers once the transaction is decided and tells the participants
// afterwards.
func (s *Server) execTxn(conn *session, c *command, args [][]byte) {
	if why := s.tooLarge(s.keyGroup(c, args), args); c.writes && why != "" {
		conn.WriteError(why)
		return
	}
	if !s.members.BarrierPassed() {
		conn.WriteError(s.unavailable(s.self))
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeouts.Failover.Duration)
	defer cancel()
	start := time.Now()
	res, finish, err := s.txn.coord.Start(ctx, txnOps(c, args))
	s.txn.participants.Observe(float64(res.Participants))
	s.txn.recovered.Add(float64(res.Recovered))
	s.txn.retries.Add(float64(max(0, res.Attempts-1)))
	s.txn.waits.Add(float64(res.Waits))
	switch {
	case errors.Is(err, txn.ErrUnknown):
		s.txn.aborted.WithLabelValues("unknown").Inc()
		conn.WriteError(fmt.Sprintf("%s: the multi-key command was not confirmed within %s; it may still be applied: %v",
			errClusterDown, s.cfg.Timeouts.Failover.Duration, err))
		return
	case err != nil:
		s.txn.aborted.WithLabelValues("failed").Inc()
		conn.WriteError(fmt.Sprintf("TRYAGAIN the multi-key command did not commit (nothing was written): %v", err))
		return
	case !res.Committed:
		s.txn.aborted.WithLabelValues("condition").Inc()
	default:
		s.txn.committed.Inc()
		s.txn.latency.Observe(time.Since(start).Seconds())
	}
	go func() {
		ctx, cancel := context.WithTimeout(s.replCtx, s.cfg.Timeouts.Failover.Duration)
		defer cancel()
		if err := finish(ctx); err != nil {
			s.log.Debug("transaction committed; its participants will resolve it", "err", err)
		}
	}()
	switch c.name {
	case "mset":
		conn.WriteString("OK")
	case "msetnx":
		conn.WriteInt(boolInt(res.Committed))
	case "del", "unlink":
		conn.WriteInt(res.Existed)
	case "mget":
		conn.WriteArray(len(res.Values))
		for i, v := range res.Values {
			if res.Found[i] {
				conn.WriteBulk(v)
			} else {
				conn.WriteNull()
			}
		}
	default: // exists, touch
		n := 0
		for _, f := range res.Found {
			n += boolInt(f)
		}
		conn.WriteInt(n)
	}
}

// recoverLoop resolves, a few times a second, the transactions stuck in the groups
// this node leads (or owns, without replication), and finishes the committed ones
// whose records outlived their coordinators there.
func (s *Server) recoverLoop() {
	t := time.NewTicker(txn.DefaultOptions.Timeout / 8)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		for g, tg := range s.txn.groups {
			if !s.leads(g) {
				continue
			}
			tg.mu.RLock()
			stuck, unfinished := tg.p.Stuck(time.Now()), tg.p.Unfinished(time.Now())
			tg.mu.RUnlock()
			for _, st := range stuck {
				ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeouts.Failover.Duration)
				status, err := txn.Recover(ctx, txnGroups{s}, st)
				cancel()
				if err != nil {
					s.log.Debug("resolving a stuck transaction", "txn", st.ID, "err", err)
					continue
				}
				s.txn.recovered.Inc()
				s.log.Info("resolved a transaction whose coordinator was gone", "txn", st.ID, "group", g, "outcome", status)
			}
			for _, u := range unfinished {
				ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeouts.Failover.Duration)
				err := s.txn.coord.Finish(ctx, u)
				cancel()
				if err != nil {
					s.log.Debug("finishing a committed transaction", "txn", u.ID, "err", err)
					continue
				}
				s.txn.recovered.Inc()
				s.log.Info("finished a committed transaction whose coordinator was gone", "txn", u.ID, "group", g)
			}
		}
	}
}

// leads reports whether this node resolves group g's stuck transactions: it leads
// the group, or, without replication, owns its slots.
func (s *Server) leads(g int) bool {
	if s.repl == nil {
		return s.slots.Owner(s.slots.Range(g).Start).Name == s.self.Name
	}
	l, _ := s.repl.Leader(g)
	return l == cluster.RaftID(s.self.Index)
}

// appendTxnSnapshot appends to b a group's snapshot, framed: the store's part, then
// the participant's.
func (s *Server) appendTxnSnapshot(b []byte, group int, keys []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(keys)))
	b = append(b, keys...)
	tg := s.txn.groups[group]
	tg.mu.RLock()
	defer tg.mu.RUnlock()
	return tg.p.AppendSnapshot(b)
}

// splitTxnSnapshot splits what appendTxnSnapshot wrote.
func splitTxnSnapshot(data []byte) (keys, txnState []byte, err error) {
	n, k := binary.Uvarint(data)
	if k <= 0 || n > uint64(len(data)-k) {
		return nil, nil, errors.New("snapshot: malformed frame")
	}
	return data[k : k+int(n)], data[k+int(n):], nil
}

// restoreTxn replaces a group's participant with a snapshot's.
func (s *Server) restoreTxn(group int, data []byte) error {
	tg := s.txn.groups[group]
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if err := tg.p.Restore(data); err != nil {
		return err
	}
	close(tg.released)
	tg.released = make(chan struct{})
	return nil
}

// txnInfo is INFO's Transactions section.
func (s *Server) txnInfo() []string {
	prepared, unfinished := 0, 0
	for _, tg := range s.txn.groups {
		tg.mu.RLock()
		prepared += tg.p.Prepared()
		committed, _ := tg.p.Records()
		unfinished += committed
		tg.mu.RUnlock()
	}
	var aborted float64
	for _, r := range []string{"condition", "failed", "unknown"} {
		aborted += counterValue(s.txn.aborted.WithLabelValues(r))
	}
	lat := histogramOf(s.txn.latency)
	return []string{
		fmt.Sprintf("txn_committed:%d", int64(counterValue(s.txn.committed))),
		fmt.Sprintf("txn_aborted:%d", int64(aborted)),
		fmt.Sprintf("txn_recovered:%d", int64(counterValue(s.txn.recovered))),
		fmt.Sprintf("txn_retries:%d", int64(counterValue(s.txn.retries))),
		fmt.Sprintf("txn_waits:%d", int64(counterValue(s.txn.waits))),
		fmt.Sprintf("txn_steps_through_raft:%d", int64(counterValue(s.txn.through))),
		fmt.Sprintf("txn_prepared_here:%d", prepared),
		fmt.Sprintf("txn_unfinished_here:%d", unfinished),
		fmt.Sprintf("txn_participants_avg:%.2f", histogramOf(s.txn.participants).mean()),
		fmt.Sprintf("txn_commit_latency_avg_ms:%.3f", 1000*lat.mean()),
		fmt.Sprintf("txn_commit_latency_p50_ms:%.3f", 1000*lat.quantile(0.5)),
		fmt.Sprintf("txn_commit_latency_p99_ms:%.3f", 1000*lat.quantile(0.99)),
	}
}

// histogram is a read of a Prometheus histogram.
type histogram struct{ h *dto.Histogram }

func histogramOf(h prometheus.Histogram) histogram {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		return histogram{&dto.Histogram{}}
	}
	return histogram{m.GetHistogram()}
}

func (h histogram) mean() float64 {
	if h.h.GetSampleCount() == 0 {
		return 0
	}
	return h.h.GetSampleSum() / float64(h.h.GetSampleCount())
}

// quantile is the upper bound of the bucket that holds quantile q.
func (h histogram) quantile(q float64) float64 {
	want := q * float64(h.h.GetSampleCount())
	for _, b := range h.h.GetBucket() {
		if want > 0 && float64(b.GetCumulativeCount()) >= want {
			return b.GetUpperBound()
		}
	}
	return 0
}
