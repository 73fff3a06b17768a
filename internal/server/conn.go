package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/acl"
	"github.com/dhtkv/dht/internal/store"
)

// A node serves its clients on gnet event loops, one per CPU it may use, as Redis
// serves them on its one: a loop reads whatever its sockets have, runs every complete
// command there and then, and writes the replies back in one go. Nothing on a loop
// may wait, so a command that has to (one forwarded to its owner, DHT.BARRIER, the
// commands over the node's keyspace, which wait for their groups' read indexes, INFO
// with the cluster's key count) moves its connection to a worker goroutine, which runs that
// command and every one that follows it, in order, until it has none left; then the
// loop takes the connection back. Replicated writes and reads of the groups this node
// leads, nearly all of a replicated cluster's commands, need no worker: the loop
// proposes them (or asks for a read index), parks the connection, serves the others,
// and answers them when their group wakes it (see parked).

const (
	// maxPendingOutput bounds the replies a connection may have waiting to be sent:
	// past it, the node stops reading the client's commands until the client reads
	// its replies, so a client that pipelines many large reads and never reads never
	// makes the node hold them all.
	maxPendingOutput = 8 << 20
	// flushAt is how many reply bytes a loop collects before it writes them out.
	flushAt = 64 << 10
	// maxQueued bounds the commands a connection may have waiting for its worker.
	maxQueued = 8 << 20
	// recheckEvery is how often a connection that was stopped by one of those
	// bounds looks again.
	recheckEvery = 5 * time.Millisecond
)

// client is one client connection.
type client struct {
	s *Server
	// gc is the connection of a client the event loops serve; nc that of a TLS
	// client, which a goroutine of its own serves.
	gc gnet.Conn
	nc net.Conn
	id int64
	// name is CLIENT SETNAME's (under meta, as CLIENT LIST reads it elsewhere).
	meta sync.Mutex
	name string
	// created is when the connection was accepted; laddr and fd are its local
	// address and file descriptor, for CLIENT LIST.
	created time.Time
	laddr   net.Addr
	fd      int
	// lastCmd is the name of the command the client ran last (CLIENT LIST's cmd).
	lastCmd atomic.Pointer[string]
	// userName is the name of the user the client authenticated as, for CLIENT
	// LIST; nil for the default user.
	userName atomic.Pointer[string]
	// hits and misses count the client's reads of keys that exist and that do not.
	hits, misses atomic.Int64
	// noEvict and noTouch are CLIENT NO-EVICT's and NO-TOUCH's flags.
	noEvict, noTouch atomic.Bool
	// replyOff is set by CLIENT REPLY OFF, skipNext by CLIENT REPLY SKIP; skipping
	// is set while the command after SKIP runs. Only the side that runs commands
	// touches them.
	replyOff, skipNext, skipping bool
	// authed is set once the client may run commands: at once when no password is
	// needed, else by AUTH or HELLO ... AUTH. Only the side that runs commands
	// touches it (as name).
	authed bool
	// remote is the client's address.
	remote net.Addr
	// user is the ACL user the client authenticated as, nil for the default user;
	// restricted is set when that user may not run every command on every key, so
	// that each command is checked. Only the side that runs commands touches them.
	user       *acl.User
	restricted bool
	// peer is the name of the node this connection authenticated as (DHT.AUTHPEER),
	// or empty for a client's connection.
	peer string
	// isPeer is set with peer, for CLIENT LIST and INFO, which read it elsewhere.
	isPeer atomic.Bool
	// denied is set for a client that protected mode refuses: it may only
	// authenticate as a peer.
	denied bool
	// nonce is the challenge DHT.AUTHPEER gave nonceFor, good for one answer.
	nonce, nonceFor string
	// multi is the transaction MULTI opened, nil outside one; watched are the keys
	// WATCH named. Only the side that runs commands touches them (as name).
	multi   *multiState
	watched []watchedKey
	// readonly is set by READONLY: reads of a group this node replicates but does not
	// lead are served here, still linearizable (through a read index).
	readonly atomic.Bool
	// wrote is set once the connection wrote; lastGroup and lastIndex locate its last
	// write in the log (for WAIT), lastIndex 0 when it was forwarded. Only the worker
	// touches them.
	wrote     bool
	lastGroup int
	lastIndex uint64

	// Owned by the connection's event loop.
	sc        scanner
	violation error  // the input broke a limit after what sc passed: answer it and close
	answered  bool   // the violation's error reply is written or queued
	in        []byte // input scanned but not yet run: a partial command, or commands held back
	ends      uint64 // sc.ends when in was last parsed to its end
	hold      bool   // in holds complete commands that were held back by a bound
	args      [][]byte
	loop      session
	// park is the run of replicated commands the loop has the connection wait for
	// (see parked), nil when none.
	park *parked
	// parkedUntil is the deadline of park's waits (Unix ns) once they are started, 0
	// when none: the sweep wakes the connection then.
	parkedUntil atomic.Int64

	// lastRead is when the client last sent anything (Unix nanoseconds, coarse).
	lastRead atomic.Int64
	// closing is set once the connection is to close after the replies so far.
	closing atomic.Bool
	// waking is set while a recheck is scheduled.
	waking atomic.Bool
	// slow is set while the connection's commands go to its worker (in a replicated
	// cluster, from its first command that waits on). Only the event loop sets and
	// clears it.
	slow atomic.Bool
	// inflight is the worker's reply bytes handed to the loop and not yet written or
	// buffered; outbound is the loop's buffered output as last seen for the worker.
	inflight, outbound atomic.Int64

	mu      sync.Mutex
	queue   []queued // commands for the worker, in order
	queued  int      // their bytes
	running bool     // a worker goroutine is running
	// more wakes a worker that waits for the connection's next command.
	more chan struct{}
}

// queued is a command copied out of the read buffer for the worker, or the protocol
// violation that ends the connection, or a run the loop started and the worker is to
// answer from its from'th command on.
type queued struct {
	args      [][]byte
	raw       []byte
	violation error
	run       *localRun
	from      int
}

// parked is a run of writes, or reads, of groups this node leads, which the event
// loop gathers from a connection's input and starts, and answers when its groups are
// done, without a worker: the connection reads nothing more until then, so replies
// stay in order, and its loop serves the other connections meanwhile.
type parked struct {
	run *localRun
	// started is set once the run's proposals or reads are made; left counts the
	// groups that are not done with them yet.
	started bool
	left    atomic.Int32
	// from is the next command to answer, once they are done.
	from int
}

// session is what a command handler writes its reply to: the event loop's buffer, or
// a worker's.
type session struct {
	c   *client
	out []byte
	// db is the table the commands read and write: the node's store, or, when a
	// replicated command is applied, a view of it whose clock is the log's.
	db *store.Store
	// txn is set for the session of a transaction's own commands (txn.go), which
	// are forwarded on their own peer connections.
	txn bool
	// clock is when the last command of the batch being run ended (see
	// Server.commandStart); 0 at the start of a batch.
	clock time.Duration
}

// lastWrite records the log position of the connection's last write, for WAIT; index
// 0 for a write this node forwarded, whose position it does not know.
func (w *session) lastWrite(group int, index uint64) {
	if w.c != nil {
		w.c.wrote, w.c.lastGroup, w.c.lastIndex = true, group, index
	}
}

// WriteString writes a simple string reply.
func (w *session) WriteString(s string) { w.out = redcon.AppendString(w.out, s) }

// WriteError writes an error reply; msg starts with its code (ERR, CLUSTERDOWN, ...).
func (w *session) WriteError(msg string) { w.out = redcon.AppendError(w.out, msg) }

// WriteBulk writes a bulk string reply.
func (w *session) WriteBulk(b []byte) { w.out = redcon.AppendBulk(w.out, b) }

// WriteBulkString writes a bulk string reply.
func (w *session) WriteBulkString(s string) { w.out = redcon.AppendBulkString(w.out, s) }

// WriteInt writes an integer reply.
func (w *session) WriteInt(n int) { w.out = redcon.AppendInt(w.out, int64(n)) }

// WriteInt64 writes an integer reply.
func (w *session) WriteInt64(n int64) { w.out = redcon.AppendInt(w.out, n) }

// WriteArray writes the header of an array reply of n elements.
func (w *session) WriteArray(n int) { w.out = redcon.AppendArray(w.out, n) }

// WriteNull writes a null bulk reply.
func (w *session) WriteNull() { w.out = redcon.AppendNull(w.out) }

// WriteRaw writes b as it is: a whole RESP reply.
func (w *session) WriteRaw(b []byte) { w.out = append(w.out, b...) }

// Close closes the connection once the replies so far are written (QUIT).
func (w *session) Close() { w.c.closing.Store(true) }

// events are the gnet callbacks of a Server.
type events struct {
	gnet.BuiltinEventEngine
	s *Server
}

// OnBoot hands the engine to Run, which stops it. The listener is bound by now.
func (e *events) OnBoot(eng gnet.Engine) gnet.Action {
	e.s.serving.Store(true)
	e.s.engine <- eng
	return gnet.None
}

// OnOpen admits a client, unless the node is full or shutting down.
func (e *events) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	cl, refusal := e.s.admit(gc.RemoteAddr(), gc, nil)
	if cl == nil {
		return refusal, gnet.Close
	}
	gc.SetContext(cl)
	return nil, gnet.None
}

// admit registers a new client connection from remote, the event loops' (gc) or a
// TLS one (nc), or returns nil and what to tell it when the node is full or shutting
// down.
func (s *Server) admit(remote net.Addr, gc gnet.Conn, nc net.Conn) (*client, []byte) {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	if s.draining.Load() {
		return nil, nil
	}
	if int64(len(s.clients)) >= s.maxClients.Load() {
		s.stats.rejectedConns.Add(1)
		return nil, []byte("-ERR max number of clients reached\r\n")
	}
	cl := &client{s: s, gc: gc, nc: nc, remote: remote, id: s.nextID.Add(1), sc: scanner{lim: s.limits},
		more: make(chan struct{}, 1), created: time.Now()}
	if gc != nil {
		cl.laddr, cl.fd = gc.LocalAddr(), gc.Fd()
	} else {
		cl.laddr, cl.fd = nc.LocalAddr(), connFD(nc)
	}
	cl.loop.c, cl.loop.db = cl, s.store
	cl.denied = deniedByProtectedMode(s.protected, s.hasPassword, cl.remote)
	cl.authed = !s.hasPassword && !cl.denied
	cl.lastRead.Store(s.clock.nanos.Load())
	s.clients[cl] = struct{}{}
	s.connsTotal.Add(1)
	return cl, nil
}

// forget unregisters a client connection.
func (s *Server) forget(cl *client) {
	cl.closing.Store(true)
	s.clientsMu.Lock()
	if _, ok := s.clients[cl]; ok {
		delete(s.clients, cl)
		s.stats.hits.Add(cl.hits.Load())
		s.stats.misses.Add(cl.misses.Load())
	}
	s.clientsMu.Unlock()
}

// OnClose forgets a client; a worker still running for it finds it closing.
func (e *events) OnClose(gc gnet.Conn, _ error) gnet.Action {
	cl, ok := gc.Context().(*client)
	if !ok {
		return gnet.None
	}
	e.s.logViolation(cl)
	if cl.park != nil {
		cl.dropPark()
	}
	e.s.forget(cl)
	return gnet.None
}

// logViolation logs a client that broke a protocol limit.
func (s *Server) logViolation(cl *client) {
	var lim *errLimit
	if errors.As(cl.violation, &lim) {
		s.log.Warn("client broke a protocol limit; disconnected", "client", cl.remote, "err", lim.Error())
	}
}

// OnTraffic runs the client's complete commands.
func (e *events) OnTraffic(gc gnet.Conn) gnet.Action {
	cl := gc.Context().(*client)
	cl.lastRead.Store(e.s.clock.nanos.Load())
	return cl.serve()
}

// serve reads what the client sent, runs or queues its complete commands and writes
// the replies. It runs on the connection's event loop.
func (cl *client) serve() gnet.Action {
	s, gc := cl.s, cl.gc
	if cl.park != nil && !cl.unpark() {
		// The input waits in gnet's buffer, but not without bound.
		if cl.overfull() {
			return gnet.Close
		}
		return gnet.None
	}
	if s.draining.Load() || cl.closing.Load() {
		_, _ = gc.Discard(-1)
		cl.flush()
		return gnet.None
	}
	if cl.full() {
		// Leave the input in gnet's buffer until the client has read its replies, but
		// not without bound.
		if cl.overfull() {
			return gnet.Close
		}
		cl.flush()
		cl.recheck()
		return gnet.None
	}
	buf, _ := gc.Peek(-1)
	if cl.violation == nil && len(buf) > 0 {
		n, err := cl.sc.scan(buf)
		if err != nil {
			cl.violation = err
			buf = buf[:n]
		}
	} else if cl.violation != nil {
		buf = nil // nothing after a violation is read
	}
	data := buf
	if len(cl.in) > 0 {
		cl.in = append(cl.in, buf...)
		data = cl.in
	}
	var rest []byte
	held := false
	if cl.hold || cl.sc.ends != cl.ends {
		// Some command is complete: run them.
		cl.loop.clock = 0
		rest, held = cl.run(data)
	} else {
		rest = data
	}
	if !held {
		cl.ends = cl.sc.ends
	}
	cl.hold = held
	// data may be gnet's read buffer, which the loop reuses: keep the rest.
	if len(cl.in) > 0 {
		cl.in = cl.in[:copy(cl.in, rest)]
		if len(cl.in) == 0 && cap(cl.in) > 1<<20 {
			cl.in = nil
		}
	} else {
		cl.in = append(cl.in, rest...)
	}
	_, _ = gc.Discard(-1)
	if cl.violation != nil && !held && !cl.answered && cl.park == nil {
		// (With a parked run, the error follows its replies: the next look, once it
		// is answered, writes it.)
		cl.answered = true
		if cl.slow.Load() {
			cl.enqueue(queued{violation: cl.violation})
		} else {
			cl.loop.WriteError(cl.violation.Error())
			cl.closing.Store(true)
		}
	}
	cl.flush()
	if cl.closing.Load() && !cl.slow.Load() {
		return gnet.Close
	}
	if held && cl.park == nil {
		cl.recheck()
	}
	return gnet.None
}

// overfull reports whether the client sent more commands ahead of those still being
// answered than it may; it then writes the error, and the connection is to close.
func (cl *client) overfull() bool {
	if cl.gc.InboundBuffered() <= cl.s.limits.MaxRequestLen {
		return false
	}
	cl.violation = &errLimit{fmt.Sprintf("more than %d bytes of commands sent ahead of the ones still being answered", cl.s.limits.MaxRequestLen)}
	cl.flush()
	_, _ = cl.gc.Write(redcon.AppendError(nil, cl.violation.Error()))
	return true
}

// full reports whether the connection has as much output, or as many commands for
// its worker, as it may hold.
func (cl *client) full() bool {
	if cl.gc.OutboundBuffered() > maxPendingOutput {
		return true
	}
	if !cl.slow.Load() {
		return false
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.queued > maxQueued
}

// recheck schedules another look at the connection, once.
func (cl *client) recheck() {
	if cl.waking.Swap(true) {
		return
	}
	time.AfterFunc(recheckEvery, func() {
		cl.waking.Store(false)
		_ = cl.gc.Wake(nil)
	})
}

// run runs or queues the complete commands at the start of data and returns what is
// left: a partial command, or, when held is true, the commands it held back because
// the connection is full.
func (cl *client) run(data []byte) (rest []byte, held bool) {
	rest, held = cl.runCommands(data)
	if cl.park != nil && !cl.park.started {
		// However the input ended (all of it gathered, a partial command, a protocol
		// violation), the gathered run goes out now.
		cl.startPark()
	}
	return rest, held
}

// runCommands is run's loop over the complete commands.
func (cl *client) runCommands(data []byte) (rest []byte, held bool) {
	for len(data) > 0 {
		complete, args, raw, left, err := nextCommand(data, cl.args[:0])
		if err != nil {
			cl.violation = err
			return nil, false
		}
		if !complete {
			return data, false
		}
		cl.args = args[:0]
		if len(args) == 0 {
			data = left
			continue
		}
		if cl.park != nil {
			if !cl.gather(args, raw) {
				// The commands from this one on wait for the run's replies.
				return data, true
			}
			data = left
			continue
		}
		data = left
		if cl.parkable() && cl.gather(args, raw) {
			continue
		}
		cl.command(args, raw)
		if cl.closing.Load() {
			return nil, false
		}
		if len(cl.loop.out) >= flushAt {
			cl.flush()
		}
		if len(data) > 0 && cl.full() {
			return data, true
		}
	}
	return nil, false
}

// parkable reports whether the loop may gather the connection's next commands into a
// parked run: none of them waits for a worker, and each is answered as it comes.
func (cl *client) parkable() bool {
	return cl.s.repl != nil && !cl.slow.Load() && cl.multi == nil && !cl.quiet() && !cl.denied &&
		cl.s.mayRunLocal(cl)
}

// gather adds a command to the connection's parked run, starting one if there is none,
// and reports whether it did: the command is a write, or read, of a group this node
// leads (as the run's first), and the run is not full.
func (cl *client) gather(args [][]byte, raw []byte) bool {
	q := queued{args: args, raw: raw}
	kind, g := cl.s.localKind(&cl.loop, &q)
	if kind == notLocal || cl.park != nil && (kind != cl.park.run.kind || len(cl.park.run.qs) >= maxRun) {
		return false
	}
	if cl.park == nil {
		cl.park = &parked{run: &localRun{kind: kind, groups: make([]int, 0, 4)}}
	}
	run := cl.park.run
	run.qs = append(run.qs, copyCommand(args, raw))
	run.add(g)
	return true
}

// copyCommand copies a command out of the read buffer, which the loop reuses.
func copyCommand(args [][]byte, raw []byte) queued {
	var q queued
	q.raw = append([]byte(nil), raw...)
	// The arguments point into the copy: reading the same bytes again gives the
	// same arguments, without a second copy of them.
	_, q.args, _, _, _ = nextCommand(q.raw, make([][]byte, 0, len(args)))
	return q
}

// startPark starts the parked run's proposals, or reads; as the last of its groups is
// done, the connection's loop is woken to answer it.
func (cl *client) startPark() {
	p := cl.park
	p.started = true
	p.left.Store(int32(len(p.run.groups)))
	cl.s.busy.Add(1)
	cl.s.startLocal(p.run, func() {
		if p.left.Add(-1) == 0 {
			_ = cl.gc.Wake(nil)
		}
	})
	cl.parkedUntil.Store(p.run.deadline)
}

// unpark answers the parked run, once its groups are done or its deadline passed, and
// reports whether it did. A command of it that has to be routed again goes to the
// worker, with the rest of the run; when the client has as many replies waiting as it
// may, the rest waits until it read them.
func (cl *client) unpark() bool {
	p := cl.park
	if p.left.Load() > 0 && cl.s.clock.nanos.Load() < p.run.deadline && cl.s.ctx.Err() == nil {
		return false
	}
	next, why := cl.s.answerLocal(&cl.loop, p.run, p.from, true)
	switch why {
	case outputFull:
		p.from = next
		cl.flush()
		cl.recheck()
		return false
	case mustRoute:
		cl.dropPark()
		cl.flush()
		cl.slow.Store(true)
		cl.enqueue(queued{run: p.run, from: next})
	default:
		cl.dropPark()
	}
	return true
}

// loopFull writes the loop's replies out once they are many, and reports whether the
// client has as many waiting as it may.
func (cl *client) loopFull() bool {
	if len(cl.loop.out) >= flushAt {
		cl.flush()
	}
	return cl.gc.OutboundBuffered() > maxPendingOutput
}

// dropPark forgets the parked run (started: run starts every run it gathers).
func (cl *client) dropPark() {
	cl.s.busy.Add(-1)
	cl.parkedUntil.Store(0)
	cl.park = nil
}

// nextCommand reads the command at the start of data, appending its arguments to
// args: complete is false when data holds only part of it; raw is the command as
// sent, left what follows it.
func nextCommand(data []byte, args [][]byte) (complete bool, _ [][]byte, raw, left []byte, err error) {
	if data[0] == '$' {
		// A line that starts with '$' is an inline command, as Redis reads it
		// (redcon would take it for another protocol).
		complete, args, left = inlineCommand(data, args)
	} else {
		complete, args, _, left, err = redcon.ReadNextCommand(data, args)
	}
	if err != nil {
		return false, args, nil, nil, fmt.Errorf("ERR %w", err)
	}
	return complete, args, data[:len(data)-len(left)], left, nil
}

// inlineCommand reads one inline line from data: its space-separated words.
func inlineCommand(data []byte, args [][]byte) (complete bool, _ [][]byte, left []byte) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return false, args, data
	}
	return true, append(args, bytes.Fields(data[:i])...), data[i+1:]
}

// command runs one command on the loop, or hands it to the connection's worker when
// it has to wait or the worker already has commands of this connection.
func (cl *client) command(args [][]byte, raw []byte) {
	if !cl.slow.Load() {
		mark, skip := cl.beginReply(&cl.loop)
		if !cl.s.exec(&cl.loop, args, raw, false) {
			cl.replied(&cl.loop, mark, skip)
			return
		}
		cl.skipping = skip
		// The replies so far go out before the worker's.
		cl.flush()
		cl.slow.Store(true)
	}
	cl.enqueue(copyCommand(args, raw))
}

// enqueue gives the worker a command, starting the worker if none is running.
func (cl *client) enqueue(q queued) {
	cl.mu.Lock()
	cl.queue = append(cl.queue, q)
	cl.queued += len(q.raw)
	start := !cl.running
	cl.running = true
	cl.mu.Unlock()
	if start {
		cl.s.busy.Add(1)
		go cl.work()
		return
	}
	select {
	case cl.more <- struct{}{}:
	default:
	}
}

// flush writes the loop's replies out.
func (cl *client) flush() {
	if len(cl.loop.out) == 0 {
		return
	}
	_, _ = cl.gc.Write(cl.loop.out)
	if cap(cl.loop.out) > 1<<20 {
		cl.loop.out = nil
		return
	}
	cl.loop.out = cl.loop.out[:0]
}

// work runs the connection's queued commands, in order, where they may wait, and
// writes their replies through the event loop. When none is left, it asks the loop to
// take the connection back.
func (cl *client) work() {
	defer cl.s.busy.Add(-1)
	w := session{c: cl, db: cl.s.store}
	// In a replicated cluster the worker waits for the connection's next command
	// until the coarse clock's next tick before it leaves: a client that keeps
	// sending finds it there, rather than a new goroutine (whose stack has to grow
	// again) for each of its commands.
	linger := cl.s.repl != nil
	var idle <-chan struct{}
	for {
		cl.mu.Lock()
		batch := cl.queue
		cl.queue, cl.queued = nil, 0
		if len(batch) == 0 && linger && !cl.closing.Load() {
			if idle == nil {
				idle = cl.s.clock.next()
			}
			cl.mu.Unlock()
			select {
			case <-cl.more:
			case <-idle:
				linger = false
			case <-cl.s.ctx.Done():
				linger = false
			}
			continue
		}
		if len(batch) == 0 || cl.closing.Load() {
			cl.running = false
			cl.mu.Unlock()
			break
		}
		cl.mu.Unlock()
		idle, linger = nil, cl.s.repl != nil
		cl.runQueued(&w, batch)
		cl.asyncWrite(&w)
	}
	if cl.closing.Load() {
		_ = cl.gc.Close()
		return
	}
	// The wake runs on the loop after the writes above.
	_ = cl.gc.Wake(func(gnet.Conn, error) error {
		cl.mu.Lock()
		done := !cl.running
		cl.mu.Unlock()
		if done {
			cl.slow.Store(false)
		}
		return nil
	})
}

// runQueued runs commands in order, where they may wait, writing their replies to w
// and sending them on once they are many. In a replicated cluster, writes (or reads)
// in a row go to consensus together.
func (cl *client) runQueued(w *session, batch []queued) {
	w.clock = 0
	for i := 0; i < len(batch); i++ {
		q := batch[i]
		switch {
		case q.violation != nil:
			w.WriteError(q.violation.Error())
			cl.closing.Store(true)
		case q.run != nil:
			_, _ = cl.s.answerLocal(w, q.run, q.from, false)
		case cl.s.repl != nil && cl.multi == nil && !cl.quiet():
			// Inside a transaction the commands are queued, one by one; a client
			// whose replies are withheld has them accounted one by one.
			if n := cl.s.runLocal(w, batch[i:]); n > 0 {
				i += n - 1
				w.clock = 0
				break
			}
			fallthrough
		default:
			mark, skip := cl.beginReply(w)
			cl.s.exec(w, q.args, q.raw, true)
			cl.replied(w, mark, skip)
		}
		if cl.closing.Load() {
			return
		}
		if cl.flushIfLarge(w) {
			w.clock = 0
		}
	}
}

// flushIfLarge hands the worker's replies to the event loop once they are many, and
// then waits while the client has more unread than it may have. A TLS client's are
// written to its connection, which waits for the client by itself. It reports
// whether it wrote or waited (time that belongs to no command).
func (cl *client) flushIfLarge(w *session) bool {
	if cl.nc != nil {
		if len(w.out) < flushAt {
			return false
		}
		cl.writeTLS(w)
		return true
	}
	if len(w.out) >= flushAt {
		cl.asyncWrite(w)
	}
	return cl.waitForReader()
}

// asyncWrite hands the worker's replies to the event loop.
func (cl *client) asyncWrite(w *session) {
	n := int64(len(w.out))
	if n == 0 {
		return
	}
	cl.inflight.Add(n)
	err := cl.gc.AsyncWrite(w.out, func(c gnet.Conn, err error) error {
		cl.inflight.Add(-n)
		if err == nil {
			cl.outbound.Store(int64(c.OutboundBuffered()))
		}
		return nil
	})
	if err != nil {
		cl.inflight.Add(-n)
	}
	w.out = nil
}

// waitForReader holds the worker while the client has more replies waiting than it
// may have, as the event loop holds back a client's commands; it reports whether it
// waited.
func (cl *client) waitForReader() (waited bool) {
	for cl.inflight.Load()+cl.outbound.Load() > maxPendingOutput && !cl.closing.Load() {
		waited = true
		time.Sleep(recheckEvery)
		_ = cl.gc.Wake(func(c gnet.Conn, err error) error {
			if err == nil && !cl.closing.Load() {
				cl.outbound.Store(int64(c.OutboundBuffered()))
			}
			return nil
		})
	}
	return waited
}

// closeConn closes the client's connection.
func (cl *client) closeConn() {
	if cl.nc != nil {
		_ = cl.nc.Close()
		return
	}
	_ = cl.gc.Close()
}

// working reports whether a worker is running the connection's commands.
func (cl *client) working() bool {
	if cl.parkedUntil.Load() != 0 {
		return true
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.running
}

// idleLoop closes clients that have sent nothing for the idle timeout (CONFIG SET
// timeout changes it; 0 closes none); a client whose command is waiting is not idle.
func (s *Server) idleLoop() {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		timeout := time.Duration(s.idleTimeout.Load())
		t.Reset(min(max(timeout/4, 10*time.Millisecond), time.Second))
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if timeout = time.Duration(s.idleTimeout.Load()); timeout <= 0 {
			continue
		}
		cutoff := time.Now().Add(-timeout).UnixNano()
		s.clientsMu.Lock()
		for cl := range s.clients {
			if cl.lastRead.Load() < cutoff && !cl.working() {
				cl.closeConn()
			}
		}
		s.clientsMu.Unlock()
	}
}
