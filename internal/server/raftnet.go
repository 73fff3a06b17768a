package server

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tidwall/redcon"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/dhtkv/dht/internal/cluster"
	"github.com/dhtkv/dht/internal/tlsconf"
)

// Raft messages travel between nodes as DHT.RAFT commands on a connection of their
// own to each peer: DHT.RAFT <sender> <frame>..., one frame per message, a frame being
// the group number (uvarint) followed by the marshalled message. The connection is
// one-way: the peer answers nothing (Raft needs no acknowledgement of a message; its
// own messages say what arrived), so a batch costs one write here and one read there.
// One goroutine per peer sends them: whatever the node's groups queued while the
// previous batch was being written goes out in the next, so messages are batched
// across groups under load. When the link is idle, the sender writes its messages
// itself, as far as the socket takes them without waiting (the goroutine writes the
// rest), which spares waking the goroutine for every message: read rounds, sent from
// the event loops, are a message to a peer and one back for a few reads.

const (
	// maxRaftQueue bounds the messages waiting for one peer; past it new ones are
	// dropped (and reported unreachable), as a slow network would drop them.
	maxRaftQueue = 8192
	// maxRaftRequest is the size past which a batch of messages is split.
	maxRaftRequest = 8 << 20
	// maxSpareFrames bounds the queue buffer a link keeps for reuse.
	maxSpareFrames = 1024
	// maxSpareRequest bounds the buffer a link keeps for messages senders write.
	maxSpareRequest = 64 << 10
)

// raftFrame is one message for a peer.
type raftFrame struct {
	group int
	msg   raftpb.Message
}

// raftLink sends Raft messages to one peer.
type raftLink struct {
	s    *Server
	to   *cluster.Member
	kick chan struct{}

	// wmu is held to write to the connection: by run, and by a sender that writes
	// its messages itself (see sendNow).
	wmu  sync.Mutex
	conn net.Conn // nil until dialled, and after a failure
	// rest is what a sender could not write without waiting: run writes it first.
	rest []byte
	// direct is the buffer senders encode into.
	direct []byte

	mu    sync.Mutex
	queue []raftFrame
	// spare is the queue's previous buffer, handed back once its batch went out,
	// so that the two take turns rather than a new one growing for every batch.
	spare []raftFrame
}

func newRaftLink(s *Server, to *cluster.Member) *raftLink {
	return &raftLink{s: s, to: to, kick: make(chan struct{}, 1)}
}

// Send sends a group's messages to their peers, or queues them; it never blocks.
func (s *Server) Send(group int, msgs []raftpb.Message) {
	for _, m := range msgs {
		idx := int(m.To) - 1
		if idx < 0 || idx >= len(s.raftLinks) || s.raftLinks[idx] == nil {
			continue
		}
		l := s.raftLinks[idx]
		if l.sendNow(group, m) {
			continue
		}
		l.mu.Lock()
		full := len(l.queue) >= maxRaftQueue
		if !full {
			l.queue = append(l.queue, raftFrame{group, m})
		}
		l.mu.Unlock()
		if full {
			s.metrics.raftDropped.Inc()
			l.failed([]raftFrame{{group, m}})
			continue
		}
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// sendNow writes m itself when the link is idle (connected, not over TLS, nothing
// queued or being written): as much as the socket takes without waiting, leaving the
// rest to run. It reports whether it took m. Snapshots always go through run, which
// reports their delivery.
func (l *raftLink) sendNow(group int, m raftpb.Message) bool {
	if m.Type == raftpb.MsgSnap || !l.wmu.TryLock() {
		return false
	}
	defer l.wmu.Unlock()
	tc, ok := l.conn.(*net.TCPConn)
	if !ok || len(l.rest) > 0 {
		return false
	}
	l.mu.Lock()
	idle := len(l.queue) == 0
	l.mu.Unlock()
	if !idle {
		return false
	}
	frame := []raftFrame{{group, m}}
	l.direct, _ = l.encode(l.direct[:0], frame)
	n, err := writeNoWait(tc, l.direct)
	if err != nil {
		l.s.log.Debug("raft messages not delivered", "peer", l.to.Name, "err", err)
		_ = l.conn.Close()
		l.conn = nil
		l.s.metrics.raftDropped.Inc()
		l.failed(frame)
		return true
	}
	if n < len(l.direct) {
		l.rest = append(l.rest, l.direct[n:]...)
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	if cap(l.direct) > maxSpareRequest {
		l.direct = nil
	}
	l.s.metrics.raftSent.Inc()
	return true
}

// writeNoWait writes b to c as far as its socket buffer takes it now, and returns
// how much it wrote.
func writeNoWait(c *net.TCPConn, b []byte) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var werr error
	if err := rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), b)
		return true
	}); err != nil {
		return 0, err
	}
	switch {
	case werr == syscall.EAGAIN || werr == syscall.EINTR:
		return 0, nil
	case werr != nil:
		return 0, werr
	}
	return n, nil
}

// run sends queued messages until the server stops.
func (l *raftLink) run() {
	defer func() {
		l.wmu.Lock()
		if l.conn != nil {
			_ = l.conn.Close()
		}
		l.wmu.Unlock()
	}()
	var req []byte
	for {
		select {
		case <-l.s.replCtx.Done():
			return
		case <-l.kick:
		}
		// Let the groups that are about to send to this peer too queue their
		// messages first, so that they go out in the same write.
		runtime.Gosched()
		for {
			l.wmu.Lock()
			if len(l.rest) > 0 && l.conn != nil {
				// The end of a message a sender began on this connection (never on
				// another: it would be garbage there).
				if err := l.write(l.rest); err != nil {
					l.s.log.Debug("raft messages not delivered", "peer", l.to.Name, "err", err)
				}
			}
			l.rest = l.rest[:0]
			l.mu.Lock()
			batch := l.queue
			l.queue, l.spare = l.spare, nil
			l.mu.Unlock()
			if len(batch) == 0 {
				l.wmu.Unlock()
				break
			}
			for rest := batch; len(rest) > 0; {
				var n int
				req, n = l.encode(req[:0], rest)
				l.deliver(req, rest[:n])
				rest = rest[n:]
			}
			l.wmu.Unlock()
			if cap(req) > maxRaftRequest {
				req = nil
			}
			if cap(batch) <= maxSpareFrames {
				clear(batch)
				l.mu.Lock()
				l.spare = batch[:0]
				l.mu.Unlock()
			}
		}
	}
}

// encode writes a DHT.RAFT request of the first messages of batch, as many as fit
// maxRaftRequest (at least one), and returns it and how many it holds.
func (l *raftLink) encode(req []byte, batch []raftFrame) ([]byte, int) {
	n, size := 0, 0
	for n < len(batch) && (n == 0 || size < maxRaftRequest) {
		size += batch[n].msg.Size() + 16
		n++
	}
	req = redcon.AppendArray(req, 2+n)
	req = redcon.AppendBulkString(req, "DHT.RAFT")
	req = redcon.AppendBulkString(req, l.s.self.Name)
	for _, f := range batch[:n] {
		var g [binary.MaxVarintLen64]byte
		gl := binary.PutUvarint(g[:], uint64(f.group))
		ml := f.msg.Size()
		req = append(req, '$')
		req = strconv.AppendInt(req, int64(gl+ml), 10)
		req = append(req, '\r', '\n')
		req = append(req, g[:gl]...)
		start := len(req)
		req = append(req, make([]byte, ml)...)
		if _, err := f.msg.MarshalTo(req[start:]); err != nil {
			l.s.log.Error("encoding a raft message", "err", err)
		}
		req = append(req, '\r', '\n')
	}
	return req, n
}

// deliver writes one request, dialling first if need be, and reports the outcome to
// the groups. A write that does not finish within the peer request timeout (a
// paused peer) fails, and the connection is dropped.
func (l *raftLink) deliver(req []byte, frames []raftFrame) {
	err := l.write(req)
	if err != nil {
		if l.s.replCtx.Err() == nil {
			l.s.log.Debug("raft messages not delivered", "peer", l.to.Name, "messages", len(frames), "err", err)
		}
		l.s.metrics.raftDropped.Add(float64(len(frames)))
		l.failed(frames)
		return
	}
	l.s.metrics.raftSent.Add(float64(len(frames)))
	for _, f := range frames {
		if f.msg.Type == raftpb.MsgSnap {
			l.s.metrics.snapshots.WithLabelValues("sent").Inc()
			l.s.repl.ReportSnapshot(f.group, f.msg.To, true)
		}
	}
}

func (l *raftLink) write(req []byte) error {
	if l.conn == nil {
		d := net.Dialer{Timeout: l.s.cfg.Timeouts.PeerDial.Duration, KeepAlive: clientKeepAlive}
		c, err := d.DialContext(l.s.replCtx, "tcp", l.to.Addr)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		ctx, cancel := context.WithTimeout(l.s.replCtx, l.s.cfg.Timeouts.PeerRequest.Duration)
		if l.s.tlsPeer != nil {
			tc := tls.Client(c, tlsconf.ForAddr(l.s.tlsPeer, l.to.Addr))
			if err = tc.HandshakeContext(ctx); err != nil {
				err = fmt.Errorf("tls: %w", err)
			}
			c = tc
		}
		if err == nil {
			err = l.s.authPeer(ctx, c, l.to)
		}
		cancel()
		if err != nil {
			_ = c.Close()
			return err
		}
		l.conn = c
	}
	if err := l.conn.SetWriteDeadline(time.Now().Add(l.s.cfg.Timeouts.PeerRequest.Duration)); err != nil {
		return err
	}
	if _, err := l.conn.Write(req); err != nil {
		_ = l.conn.Close()
		l.conn = nil
		return err
	}
	// No deadline between writes: a sender's own write (sendNow) would fail with
	// one that passed while the link was idle.
	return l.conn.SetWriteDeadline(time.Time{})
}

// failed tells the groups that their messages did not reach the peer.
func (l *raftLink) failed(frames []raftFrame) {
	seen := map[int]bool{}
	for _, f := range frames {
		if f.msg.Type == raftpb.MsgSnap {
			l.s.repl.ReportSnapshot(f.group, f.msg.To, false)
		}
		if !seen[f.group] {
			seen[f.group] = true
			l.s.repl.ReportUnreachable(f.group, f.msg.To)
		}
	}
}

// cmdRaft takes Raft messages from a peer and hands them to the groups. It runs on
// the event loop and never blocks: a group too far behind drops them. It answers
// nothing, unless the request is not one a peer would send; then it answers an
// error and closes the connection.
func cmdRaft(s *Server, conn *session, args [][]byte) {
	refuse := func(msg string) {
		conn.WriteError(msg)
		conn.Close()
	}
	if s.repl == nil {
		refuse("ERR this node does not replicate (replication_degree is 1)")
		return
	}
	if _, ok := s.slots.Member(string(args[1])); !ok {
		refuse(fmt.Sprintf("ERR DHT.RAFT from %q, which is not a node of this cluster", truncate(args[1], 64)))
		return
	}
	if string(args[1]) != conn.c.peer {
		refuse(fmt.Sprintf("ERR DHT.RAFT from %q on a connection of %s", truncate(args[1], 64), conn.c.peer))
		return
	}
	var byGroup map[int][]raftpb.Message
	for _, f := range args[2:] {
		g, k := binary.Uvarint(f)
		if k <= 0 || g >= uint64(len(s.slots.Members())) {
			refuse("ERR DHT.RAFT: malformed frame")
			return
		}
		var m raftpb.Message
		if err := m.Unmarshal(f[k:]); err != nil {
			refuse(fmt.Sprintf("ERR DHT.RAFT: %v", err))
			return
		}
		if byGroup == nil {
			byGroup = map[int][]raftpb.Message{}
		}
		byGroup[int(g)] = append(byGroup[int(g)], m)
	}
	for g, msgs := range byGroup {
		s.repl.Deliver(g, msgs)
	}
}
