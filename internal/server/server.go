// Package server is a dht node's RESP front door: it accepts Redis clients, checks
// their input against the limits, routes each command by hash slot to the local store
// or to the owning peer, and probes the peers for the startup barrier and failures.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/cluster"
	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/peer"
	"github.com/dhtkv/dht/internal/store"
)

// Options configure a Server.
type Options struct {
	// Config is the whole cluster's config.
	Config config.Config
	// Self is this node's name in Config.
	Self string
	// Listener, if set, is used instead of listening on Listen.
	Listener net.Listener
	// Listen is the address to listen on; empty means the node's addr.
	Listen string
	// AdminListen is the admin HTTP address; empty means the node's admin_addr, and
	// no admin server when that is empty too.
	AdminListen string
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
}

// clientWriteTimeout cuts off a client that stops reading its replies.
const clientWriteTimeout = 30 * time.Second

// drainTimeout bounds how long shutdown waits for clients to finish.
const drainTimeout = 5 * time.Second

// Server is one dht node.
type Server struct {
	cfg     config.Config
	self    *cluster.Member
	slots   *cluster.SlotMap
	members *cluster.Membership
	store   *store.Store
	log     *slog.Logger
	digest  string
	limits  Limits
	started time.Time

	commands map[string]*command
	peers    map[string]*peerLink // by name
	barriers *barriers
	metrics  *metrics
	registry *prometheus.Registry

	ln         net.Listener
	adminLn    net.Listener
	rc         *redcon.Server
	draining   atomic.Bool
	clock      coarseClock
	clientsMu  sync.Mutex
	clients    map[*guardConn]struct{}
	nextID     atomic.Int64
	connsTotal atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
}

// peerLink is this node's connection to one peer: data requests and probes travel on
// separate pools so that a probe never waits behind data.
type peerLink struct {
	member *cluster.Member
	data   *peer.Pool
	probe  *peer.Pool
}

// New validates opts and listens. Serving starts with Run.
func New(opts Options) (*Server, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	slots, err := cluster.NewSlotMap(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	self, ok := slots.Member(opts.Self)
	if !ok {
		_, err := opts.Config.Node(opts.Self)
		return nil, fmt.Errorf("server: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("node", self.Name)
	cfg := opts.Config
	s := &Server{
		cfg:    cfg,
		self:   self,
		slots:  slots,
		store:  store.New(store.Options{Stripes: cfg.Buckets}),
		log:    log,
		digest: cfg.Digest(),
		limits: Limits{
			MaxBulkLen:    cfg.Limits.MaxBulkLen,
			MaxArgs:       cfg.Limits.MaxArgs,
			MaxInlineLen:  cfg.Limits.MaxInlineLen,
			MaxRequestLen: cfg.Limits.MaxRequestLen,
		},
		started:  time.Now(),
		commands: commandTable(),
		peers:    map[string]*peerLink{},
		barriers: newBarriers(),
		clients:  map[*guardConn]struct{}{},
		registry: prometheus.NewRegistry(),
	}
	s.clock.set(time.Now())
	var names []string
	for i := range slots.Members() {
		m := &slots.Members()[i]
		if m.Name == self.Name {
			continue
		}
		names = append(names, m.Name)
		s.peers[m.Name] = &peerLink{
			member: m,
			data:   peer.NewPool(m.Addr, peer.Options{Conns: 4, DialTimeout: cfg.Timeouts.PeerDial.Duration}),
			probe:  peer.NewPool(m.Addr, peer.Options{Conns: 1, DialTimeout: cfg.Timeouts.PeerDial.Duration, QueueLen: 4}),
		}
	}
	s.members = cluster.NewMembership(s.digest, names, cfg.Timeouts.ProbeFailures)
	s.metrics = newMetrics(s)

	s.ln = opts.Listener
	if s.ln == nil {
		addr := opts.Listen
		if addr == "" {
			addr = self.Addr
		}
		if s.ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("server: listen: %w", err)
		}
	}
	admin := opts.AdminListen
	if admin == "" {
		if n, err := cfg.Node(self.Name); err == nil {
			admin = n.AdminAddr
		}
	}
	if admin != "" {
		if s.adminLn, err = net.Listen("tcp", admin); err != nil {
			s.ln.Close()
			return nil, fmt.Errorf("server: admin listen: %w", err)
		}
	}
	return s, nil
}

// Addr is the address clients connect to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// AdminAddr is the admin HTTP address, or nil when there is none.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// Healthy reports Redis's cluster_state:ok: the barrier passed and every peer is up.
func (s *Server) Healthy() bool { return s.members.Healthy() }

// Run serves until ctx ends, then stops accepting, lets clients finish the commands
// they sent, closes their connections and returns.
func (s *Server) Run(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer s.cancel()
	s.rc = redcon.NewServer("", s.handle, s.accept, s.closed)
	if d := s.cfg.Limits.IdleTimeout.Duration; d > 0 {
		s.rc.SetIdleClose(d)
	}
	var wg sync.WaitGroup
	for _, p := range s.peers {
		wg.Go(func() { s.probeLoop(p) })
	}
	wg.Go(s.barrierLog)
	wg.Go(s.sweepLoop)
	var adminSrv *http.Server
	if s.adminLn != nil {
		adminSrv = s.newAdminServer()
		wg.Go(func() {
			if err := adminSrv.Serve(s.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("admin server", "err", err)
			}
		})
	}
	s.log.Info("serving", "addr", s.ln.Addr().String(), "id", s.self.ID, "slots", s.self.Ranges[0].String(),
		"peers", len(s.peers), "digest", s.digest)
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- s.rc.Serve(guardListener{Listener: s.ln, wrap: s.wrapConn})
	}()
	var err error
	select {
	case <-s.ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("server: serve: %w", err)
	}
	s.cancel()
	s.drain()
	_ = s.rc.Close()
	if err == nil {
		<-serveErr
	}
	if adminSrv != nil {
		_ = adminSrv.Close()
	}
	for _, p := range s.peers {
		_ = p.data.Close()
		_ = p.probe.Close()
	}
	wg.Wait()
	s.log.Info("stopped")
	return err
}

func (s *Server) wrapConn(c net.Conn) net.Conn {
	return &guardConn{Conn: c, sc: scanner{lim: s.limits}, writeTimeout: clientWriteTimeout, now: s.clock.Now, draining: s.draining.Load}
}

// coarseClock is read on every reply (for write deadlines), where a precise clock
// costs too much; it ticks every coarseTick.
type coarseClock struct{ nanos atomic.Int64 }

const coarseTick = 50 * time.Millisecond

// Now returns the time of the last tick.
func (c *coarseClock) Now() time.Time { return time.Unix(0, c.nanos.Load()) }

func (c *coarseClock) set(t time.Time) { c.nanos.Store(t.UnixNano()) }

// drain stops reading from every client: each connection finishes the commands it has
// read, flushes their replies and closes.
func (s *Server) drain() {
	s.draining.Store(true)
	s.clientsMu.Lock()
	n := len(s.clients)
	for g := range s.clients {
		_ = g.Conn.SetReadDeadline(time.Now())
	}
	s.clientsMu.Unlock()
	if n > 0 {
		s.log.Info("draining client connections", "clients", n)
	}
	deadline := time.Now().Add(drainTimeout)
	for time.Now().Before(deadline) {
		s.clientsMu.Lock()
		n = len(s.clients)
		s.clientsMu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.log.Warn("clients still connected after drain timeout; closing them", "clients", n)
}

// clientState is what the node keeps of one client connection.
type clientState struct {
	id   int64
	name string
	g    *guardConn
	// broken is set when a write to the client failed: the rest of its pipeline is
	// dropped, not answered into a buffer nobody will read.
	broken bool
}

func (s *Server) accept(c redcon.Conn) bool {
	g, _ := c.NetConn().(*guardConn)
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	if s.draining.Load() {
		return false
	}
	if len(s.clients) >= s.cfg.Limits.MaxClients {
		_, _ = c.NetConn().Write([]byte("-ERR max number of clients reached\r\n"))
		return false
	}
	s.clients[g] = struct{}{}
	s.connsTotal.Add(1)
	c.SetContext(&clientState{id: s.nextID.Add(1), g: g})
	return true
}

func (s *Server) closed(c redcon.Conn, err error) {
	st, ok := c.Context().(*clientState)
	if !ok {
		return
	}
	var lim *errLimit
	if errors.As(err, &lim) {
		s.log.Warn("client broke a protocol limit; disconnected", "client", c.RemoteAddr(), "err", lim.Error())
	}
	s.clientsMu.Lock()
	delete(s.clients, st.g)
	s.clientsMu.Unlock()
}

// sweepLoop ticks the coarse clock and, every other tick, removes expired keys.
func (s *Server) sweepLoop() {
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.clock.set(now)
			if i%2 == 0 {
				s.store.SweepExpired(20)
			}
		}
	}
}

// Close releases the listeners of a server whose Run was never called.
func (s *Server) Close() error {
	err := s.ln.Close()
	if s.adminLn != nil {
		err = errors.Join(err, s.adminLn.Close())
	}
	return err
}
