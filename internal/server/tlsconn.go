package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// With TLS, a node does not start its event loops: gnet reads and writes raw
// sockets and has no TLS of its own. A crypto/tls listener takes their place, and
// each connection is served by a goroutine of its own that reads, decrypts, runs
// the commands through the same exec as the loops' workers (commands that wait
// just wait there) and writes the replies back. A plain-TCP cluster runs exactly
// the code it ran before; see docs/security.md for why this shape.

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// tlsReadBuffer is how much a TLS connection reads at once.
const tlsReadBuffer = 16 << 10

// runTLS serves clients on the TLS listener until ctx ends or accepting fails,
// then drains them and closes their connections.
func (s *Server) runTLS() error {
	var conns sync.WaitGroup
	serveErr := make(chan error, 1)
	s.serving.Store(true)
	go func() { serveErr <- s.acceptTLS(&conns) }()
	s.log.Info("serving", "addr", s.listen, "id", s.self.ID, "slots", s.self.Ranges[0].String(),
		"peers", len(s.peers), "tls", true, "digest", s.digest)
	var err error
	select {
	case <-s.ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("server: serve %s: %w", s.listen, err)
	}
	s.cancel()
	_ = s.tlsLn.Close()
	s.drain()
	s.replCancel()
	s.clientsMu.Lock()
	for cl := range s.clients {
		cl.closeConn()
	}
	s.clientsMu.Unlock()
	conns.Wait()
	return err
}

// acceptTLS accepts connections until the listener is closed, and serves each on a
// goroutine of its own.
func (s *Server) acceptTLS(conns *sync.WaitGroup) error {
	for {
		nc, err := s.tlsLn.Accept()
		switch {
		case errors.Is(err, net.ErrClosed):
			return nil
		case err != nil:
			// Out of file descriptors, say: wait for some to be freed.
			s.log.Warn("accepting a client", "err", err)
			select {
			case <-s.ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if tcp, ok := nc.(*net.TCPConn); ok {
			_ = tcp.SetKeepAlivePeriod(clientKeepAlive)
		}
		tc := tls.Server(nc, s.tlsServer)
		cl, refusal := s.admit(nc.RemoteAddr(), nil, tc)
		if cl == nil {
			conns.Go(func() { refuseTLS(tc, refusal) })
			continue
		}
		conns.Go(func() { s.serveTLS(cl, tc) })
	}
}

// refuseTLS tells a client the node cannot take it, if there is anything to say,
// and closes its connection.
func refuseTLS(tc *tls.Conn, refusal []byte) {
	defer tc.Close()
	if len(refusal) == 0 {
		return
	}
	_ = tc.SetDeadline(time.Now().Add(time.Second))
	_, _ = tc.Write(refusal)
}

// serveTLS serves one client: it reads what the client sends, runs each batch of
// complete commands in order, as a worker runs them, and writes their replies.
func (s *Server) serveTLS(cl *client, tc *tls.Conn) {
	defer s.forget(cl)
	defer tc.Close()
	ctx, cancel := context.WithTimeout(s.ctx, tlsHandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		s.log.Debug("TLS handshake failed", "client", cl.remote, "err", err)
		return
	}
	w := session{c: cl, db: s.store}
	buf := make([]byte, tlsReadBuffer)
	var (
		in    []byte
		batch []queued
		args  [][]byte
	)
	for {
		n, err := tc.Read(buf)
		if n > 0 && !s.draining.Load() {
			cl.lastRead.Store(s.clock.nanos.Load())
			data := buf[:n]
			if cl.violation == nil {
				k, verr := cl.sc.scan(data)
				if verr != nil {
					cl.violation, data = verr, data[:k]
				}
				in = append(in, data...)
			}
			var rest []byte
			batch, args, rest = cl.parse(in, batch[:0], args[:0])
			if cl.violation != nil {
				batch = append(batch, queued{violation: cl.violation})
				s.logViolation(cl)
			}
			if len(batch) > 0 {
				cl.runTLS(&w, batch)
				cl.writeTLS(&w)
			}
			if cl.closing.Load() {
				return
			}
			in = in[:copy(in, rest)]
			if cap(in) > 1<<20 && len(in) < 1<<10 {
				in = append([]byte(nil), in...)
			}
		}
		if err != nil {
			return
		}
	}
}

// parse reads the complete commands at the start of data into batch (their
// arguments appended to args, whose arrays they share) and returns what is left: a
// partial command. A malformed command is the connection's violation.
func (cl *client) parse(data []byte, batch []queued, args [][]byte) ([]queued, [][]byte, []byte) {
	for len(data) > 0 {
		complete, cmd, raw, left, err := nextCommand(data, cl.args[:0])
		if err != nil {
			cl.violation = err
			return batch, args, nil
		}
		if !complete {
			return batch, args, data
		}
		cl.args, data = cmd[:0], left
		if len(cmd) > 0 {
			start := len(args)
			args = append(args, cmd...)
			batch = append(batch, queued{args: args[start:len(args):len(args)], raw: raw})
		}
	}
	return batch, args, nil
}

// writeTLS writes a TLS client's replies to its connection; when that fails, the
// connection is closing.
func (cl *client) writeTLS(w *session) {
	if len(w.out) == 0 {
		return
	}
	if _, err := cl.nc.Write(w.out); err != nil {
		cl.closing.Store(true)
	}
	w.out = w.out[:0]
}

// runTLS runs a batch of a TLS client's commands, marked as working (so that the
// idle cutoff leaves it alone) and counted as busy (so that a drain waits for it).
func (cl *client) runTLS(w *session, batch []queued) {
	cl.s.busy.Add(1)
	defer cl.s.busy.Add(-1)
	cl.mu.Lock()
	cl.running = true
	cl.mu.Unlock()
	defer func() {
		cl.mu.Lock()
		cl.running = false
		cl.mu.Unlock()
	}()
	cl.runQueued(w, batch)
}
