// Package peer keeps pooled, pipelined connections from one node to another.
//
// A Pool multiplexes many concurrent requests over a few TCP connections: each
// connection has a writer that batches queued requests into one write and a reader that
// hands replies back in order. Requests and replies are raw RESP, so a node relays a
// peer's reply to its own client byte for byte.
package peer

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dhtkv/dht/internal/resp"
)

// ErrClosed is returned by a Pool that has been closed.
var ErrClosed = errors.New("peer: pool closed")

// Options configure a Pool.
type Options struct {
	// Conns is the number of connections (default 2).
	Conns int
	// DialTimeout bounds connecting (default 1s).
	DialTimeout time.Duration
	// QueueLen bounds the requests waiting on one connection (default 4096).
	QueueLen int
	// OnDial, if set, runs on every new connection before any request: a handshake
	// (authentication). It may write to and read from nc; ctx bounds it. When it
	// fails, the connection is closed and the request that dialled fails with its
	// error.
	OnDial func(ctx context.Context, nc net.Conn) error
	// TLS, if set, makes every connection a TLS client's, with this configuration;
	// the handshake comes before OnDial.
	TLS *tls.Config
}

// NotSentError is the error of a call that failed before its request was written (the
// peer could not be reached, or the connection died before the request was queued on
// it): the peer certainly did not carry the request out, so it may be sent again.
type NotSentError struct{ Err error }

func (e *NotSentError) Error() string { return e.Err.Error() }

func (e *NotSentError) Unwrap() error { return e.Err }

// NotSent reports whether err is, or wraps, a NotSentError.
func NotSent(err error) bool {
	var ns *NotSentError
	return errors.As(err, &ns)
}

// Pool is a set of pipelined connections to one address. It redials broken
// connections on demand. It is safe for concurrent use.
type Pool struct {
	addr  string
	opts  Options
	next  atomic.Uint32
	slots []slot

	mu     sync.Mutex
	closed bool
}

type slot struct {
	mu sync.Mutex
	c  *conn
}

// NewPool returns a pool for addr. It dials lazily.
func NewPool(addr string, opts Options) *Pool {
	if opts.Conns <= 0 {
		opts.Conns = 2
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = time.Second
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = 4096
	}
	return &Pool{addr: addr, opts: opts, slots: make([]slot, opts.Conns)}
}

// Addr is the address the pool dials.
func (p *Pool) Addr() string { return p.addr }

// Do sends one raw RESP command and returns the raw RESP reply (which may be a RESP
// error: that is a reply, not a Go error). It fails if ctx ends first, if the peer
// cannot be reached, or if the connection breaks.
func (p *Pool) Do(ctx context.Context, req []byte) ([]byte, error) {
	c, err := p.conn(ctx)
	if err != nil {
		return nil, &NotSentError{Err: err}
	}
	call := &call{req: req, done: make(chan struct{}), released: make(chan struct{})}
	select {
	case c.queue <- call:
	case <-c.dead:
		return nil, &NotSentError{Err: c.err()}
	case <-ctx.Done():
		return nil, fmt.Errorf("peer %s: %w", p.addr, ctx.Err())
	}
	// Whatever ends the call, the caller gets req back only once the writer is
	// done with it: callers reuse the buffer for their next request at once.
	defer c.waitReleased(call)
	select {
	case <-call.done:
		return call.reply, call.err
	case <-c.dead:
		// The call may have been queued after the writer drained the queue and
		// left; then nobody will finish it.
		select {
		case <-call.done:
			return call.reply, call.err
		default:
			return nil, c.err()
		}
	case <-ctx.Done():
		// A peer that lets a request pass its deadline may be cut off or stuck;
		// the calls behind it would wait as long. Drop the connection so that
		// the next call dials afresh, and so that a write of this call that is
		// blocked on the peer ends now.
		c.fail(fmt.Errorf("no reply before the call ended: %w", ctx.Err()))
		return nil, fmt.Errorf("peer %s: no reply: %w", p.addr, ctx.Err())
	}
}

func (p *Pool) conn(ctx context.Context) (*conn, error) {
	s := &p.slots[p.next.Add(1)%uint32(len(p.slots))]
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked under the slot's lock: Close marks the pool closed before it takes the
	// slots' locks, so a connection dialed here is either refused or closed by Close.
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if s.c != nil && !s.c.isDead() {
		return s.c, nil
	}
	d := net.Dialer{Timeout: p.opts.DialTimeout, KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", p.addr, err)
	}
	if p.opts.TLS != nil {
		tc := tls.Client(nc, p.opts.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("peer %s: %w", p.addr, err)
		}
		nc = tc
	}
	if p.opts.OnDial != nil {
		if err := p.opts.OnDial(ctx, nc); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("peer %s: %w", p.addr, err)
		}
	}
	s.c = newConn(nc, p.opts.QueueLen)
	return s.c, nil
}

// Close closes every connection; calls under way fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		if s.c != nil {
			s.c.fail(ErrClosed)
		}
		s.mu.Unlock()
	}
	return nil
}

type call struct {
	req   []byte
	reply []byte
	err   error
	done  chan struct{}
	// released is closed once the connection no longer reads req: the writer
	// wrote it or gave up on it, or it was drained from the queue unwritten.
	released    chan struct{}
	releaseOnce sync.Once
}

func (cl *call) release() { cl.releaseOnce.Do(func() { close(cl.released) }) }

// conn is one pipelined connection: a writer goroutine and a reader goroutine joined
// by the FIFO of calls written but not yet answered.
type conn struct {
	nc      net.Conn
	queue   chan *call
	pending chan *call
	dead    chan struct{}
	// writerDone is closed when the writer has returned: it reads no request
	// any more, including one queued after it drained the queue.
	writerDone chan struct{}

	once    sync.Once
	failErr error
}

func newConn(nc net.Conn, queueLen int) *conn {
	c := &conn{
		nc:         nc,
		queue:      make(chan *call, queueLen),
		pending:    make(chan *call, queueLen),
		dead:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	go c.writeLoop()
	go c.readLoop()
	return c
}

func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

func (c *conn) err() error {
	<-c.dead
	return c.failErr
}

func (c *conn) fail(err error) {
	c.once.Do(func() {
		c.failErr = fmt.Errorf("peer %s: %w", c.nc.RemoteAddr(), err)
		close(c.dead)
		c.nc.Close()
	})
}

// waitReleased waits until the connection no longer reads cl.req.
func (c *conn) waitReleased(cl *call) {
	select {
	case <-cl.released:
	case <-c.writerDone:
	}
}

func (c *conn) writeLoop() {
	defer close(c.writerDone)
	w := bufio.NewWriterSize(c.nc, 64<<10)
	for {
		var first *call
		select {
		case first = <-c.queue:
		case <-c.dead:
			c.drain()
			return
		}
		batch := []*call{first}
	more:
		for len(batch) < 512 {
			select {
			case cl := <-c.queue:
				batch = append(batch, cl)
			default:
				break more
			}
		}
		for _, cl := range batch {
			if c.isDead() {
				cl.finish(nil, c.failErr)
				cl.release()
				continue
			}
			// A call enters pending before its bytes are written, so its reply can
			// never arrive ahead of it. When pending is full, what is buffered goes
			// out first: the replies that free pending need their requests sent.
			select {
			case c.pending <- cl:
			default:
				if err := w.Flush(); err != nil {
					c.fail(err)
				}
				select {
				case c.pending <- cl:
				case <-c.dead:
					cl.finish(nil, c.failErr)
					cl.release()
					continue
				}
			}
			if _, err := w.Write(cl.req); err != nil {
				c.fail(err)
			}
			cl.release()
		}
		if err := w.Flush(); err != nil {
			c.fail(err)
		}
		if c.isDead() {
			c.drain()
			return
		}
	}
}

// drain fails the calls still queued or pending after the connection died.
func (c *conn) drain() {
	for {
		select {
		case cl := <-c.queue:
			cl.finish(nil, c.failErr)
			cl.release() // never seen by the writer
		case cl := <-c.pending:
			cl.finish(nil, c.failErr)
		default:
			return
		}
	}
}

func (c *conn) readLoop() {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		reply, err := resp.ReadReply(r, nil)
		if err != nil {
			c.fail(err)
			c.drain()
			return
		}
		select {
		case cl := <-c.pending:
			cl.finish(reply, nil)
		case <-c.dead:
			c.drain()
			return
		}
	}
}

func (cl *call) finish(reply []byte, err error) {
	cl.reply, cl.err = reply, err
	close(cl.done)
}
