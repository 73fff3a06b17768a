// Package server is a dht node's RESP front door: it accepts Redis clients, checks
// their input against the limits, routes each command by hash slot to the local store
// or to the owning peer, and probes the peers for the startup barrier and failures.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dhtkv/dht/internal/acl"
	"github.com/dhtkv/dht/internal/cluster"
	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/peer"
	"github.com/dhtkv/dht/internal/replica"
	"github.com/dhtkv/dht/internal/store"
	"github.com/dhtkv/dht/internal/tlsconf"
)

// Options configure a Server.
type Options struct {
	// Config is the whole cluster's config.
	Config config.Config
	// Self is this node's name in Config.
	Self string
	// Listen is the address to listen on; empty means the node's addr.
	Listen string
	// AdminListen is the admin HTTP address; empty means the node's admin_addr, and
	// no admin server when that is empty too.
	AdminListen string
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// EventLoops is how many event loops serve clients; 0 means one per P
	// (GOMAXPROCS).
	EventLoops int
	// PProf serves Go's profiler on the admin server, as admin.pprof in the config
	// does.
	PProf bool
	// DataDir is where the node keeps its write-ahead log and snapshots; empty keeps
	// everything in memory (a restart loses the node's data). With a data directory
	// every slot range is a Raft group, of one member at replication degree 1.
	DataDir string
}

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
	loops   int

	// hasPassword is set when clients must authenticate (the default user has a
	// password).
	hasPassword bool
	// users are the ACL users by name, the default user among them; acl numbers the
	// commands for their permissions.
	users map[string]*acl.User
	acl   *acl.Catalog
	// refusals limits the logging of refused peers.
	refusals refusalLog
	// protected is protected mode (see deniedByProtectedMode).
	protected bool
	// peerSecret is the key of the peer handshake (see cmdAuthPeer).
	peerSecret []byte

	commands map[string]*command
	peers    map[string]*peerLink // by name

	// With a replication degree above 1: this node's Raft groups, its side of each
	// group's state machine (by group; nil where it is not a member), the leaders its
	// peers report, and its Raft links (by node index; nil for itself).
	repl *replica.Host
	// disk holds the groups' logs and snapshots; nil when they are in memory.
	disk      *replica.Disk
	keeping   *store.Store // the store, read without removing expired keys
	shards    []*shard
	view      *leaderView
	raftLinks []*raftLink
	// replCtx outlives ctx by the drain, so that waiting writes can still commit.
	replCtx    context.Context
	replCancel context.CancelFunc
	barriers   *barriers
	txn        *txnState
	metrics    *metrics
	registry   *prometheus.Registry

	listen string // host:port for the event loops to bind
	// With TLS: the listener that takes the place of the event loops, the
	// configuration it serves with, and the one this node dials its peers with.
	tlsLn     net.Listener
	tlsServer *tls.Config
	tlsPeer   *tls.Config
	adminLn   net.Listener
	pprof     bool // serve /debug/pprof/ on the admin server
	engine    chan gnet.Engine
	draining  atomic.Bool
	serving   atomic.Bool
	clock     coarseClock
	// clients are the open client connections, of the event loops and TLS alike.
	clientsMu  sync.Mutex
	clients    map[*client]struct{}
	nextID     atomic.Int64
	connsTotal atomic.Int64
	// maxClients and idleTimeout (nanoseconds) are the settings CONFIG SET
	// maxclients and timeout change.
	maxClients, idleTimeout atomic.Int64
	stats                   serverStats
	slowlog                 *slowlog
	latency                 *latencyMonitor
	// tracking is the settings of the commands' latency histograms.
	tracking latencyTracking
	// busy counts the worker goroutines running commands that wait.
	busy atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
}

// peerLink is this node's connection to one peer: data requests and probes travel on
// separate pools so that a probe never waits behind data.
type peerLink struct {
	member *cluster.Member
	data   *peer.Pool
	probe  *peer.Pool
	// txn carries the commands of the transactions this node coordinates, which
	// must not queue behind data requests that wait for those transactions' locks.
	txn *peer.Pool
	// wrongSecret is set while the peer refuses this node's cluster secret.
	wrongSecret atomic.Bool
	// tlsProblem is why TLS with the peer fails, or empty (see tlsProblem).
	tlsProblem atomic.Pointer[string]
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
		loops:    opts.EventLoops,
		commands: commandTable(),
		peers:    map[string]*peerLink{},
		barriers: newBarriers(),
		clients:  map[*client]struct{}{},
		engine:   make(chan gnet.Engine, 1),
		registry: prometheus.NewRegistry(),
	}
	s.clock.set(time.Now())
	s.maxClients.Store(int64(cfg.Limits.MaxClients))
	s.idleTimeout.Store(int64(cfg.Limits.IdleTimeout.Duration))
	s.slowlog = newSlowlog()
	s.latency = newLatencyMonitor(time.Now)
	s.tracking.on.Store(true)
	ps := defaultPercentiles()
	s.tracking.percentiles.Store(&ps)
	s.hasPassword = cfg.Auth.Password != ""
	if err := s.newUsers(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.peerSecret = []byte(cfg.PeerSecret())
	s.protected = cfg.Protected()
	if cfg.TLS.Enabled() {
		files := tlsconf.Files{Cert: cfg.TLS.CertFile, Key: cfg.TLS.KeyFile, CA: cfg.TLS.CAFile}
		if s.tlsServer, err = tlsconf.Server(files, cfg.TLS.ClientAuth); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		if s.tlsPeer, err = tlsconf.Client(files); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	var names []string
	for i := range slots.Members() {
		m := &slots.Members()[i]
		if m.Name == self.Name {
			continue
		}
		names = append(names, m.Name)
		auth := func(ctx context.Context, nc net.Conn) error { return s.authPeer(ctx, nc, m) }
		var peerTLS *tls.Config
		if s.tlsPeer != nil {
			peerTLS = tlsconf.ForAddr(s.tlsPeer, m.Addr)
		}
		link := &peerLink{
			member: m,
			data:   peer.NewPool(m.Addr, peer.Options{Conns: 4, DialTimeout: cfg.Timeouts.PeerDial.Duration, OnDial: auth, TLS: peerTLS}),
			probe:  peer.NewPool(m.Addr, peer.Options{Conns: 1, DialTimeout: cfg.Timeouts.PeerDial.Duration, QueueLen: 4, OnDial: auth, TLS: peerTLS}),
			txn:    peer.NewPool(m.Addr, peer.Options{Conns: 2, DialTimeout: cfg.Timeouts.PeerDial.Duration, OnDial: auth, TLS: peerTLS}),
		}
		link.tlsProblem.Store(new(string))
		s.peers[m.Name] = link
	}
	s.members = cluster.NewMembership(s.digest, names, cfg.Timeouts.ProbeFailures)
	s.metrics = newMetrics(s)
	s.txn = newTxnState(s)

	addr := opts.Listen
	if addr == "" {
		addr = self.Addr
	}
	// The event loops bind the address when Run starts; binding it here first reports
	// an address in use now, and resolves a port of 0.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if cfg.TLS.Enabled() {
		// The TLS front door serves on this listener.
		s.tlsLn = ln
	} else {
		_ = ln.Close()
	}
	// Bind the host as given: Go reports 0.0.0.0 as [::], which would bind IPv6 only.
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen: %w", err)
	}
	s.listen = net.JoinHostPort(host, strconv.Itoa(port))
	admin := opts.AdminListen
	if admin == "" {
		if n, err := cfg.Node(self.Name); err == nil {
			admin = n.AdminAddr
		}
	}
	if admin != "" {
		admin, err = adminAddr(admin, log)
		if err != nil {
			return nil, fmt.Errorf("server: admin listen: %w", err)
		}
		if s.adminLn, err = net.Listen("tcp", admin); err != nil {
			return nil, fmt.Errorf("server: admin listen: %w", err)
		}
	}
	s.pprof = opts.PProf || cfg.Admin.PProf
	if slots.Replicated() || opts.DataDir != "" {
		if err := s.newReplication(opts.DataDir); err != nil {
			if s.adminLn != nil {
				_ = s.adminLn.Close()
			}
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	if opts.DataDir == "" {
		s.log.Info("keeping data in memory only: a restart loses this node's data", "replication_degree", cfg.ReplicationDegree)
	}
	return s, nil
}

// newUsers compiles the ACL users: the default one, whose password is auth.password
// (none: it takes any) and who may do anything, and the configured ones. A rule
// naming a command dht does not have is reported at its field.
func (s *Server) newUsers() error {
	var err error
	if s.acl, err = newACLCatalog(s.commands); err != nil {
		return err
	}
	def := acl.Spec{Name: acl.DefaultUser, Enabled: true, NoPass: !s.hasPassword, Commands: []string{"+@all"}, Keys: []string{"allkeys"}}
	if s.hasPassword {
		sum := sha256.Sum256([]byte(s.cfg.Auth.Password))
		def.PasswordHashes = []string{hex.EncodeToString(sum[:])}
	}
	s.users = map[string]*acl.User{}
	if s.users[acl.DefaultUser], err = acl.NewUser(s.acl, def); err != nil {
		return err
	}
	var errs []error
	for i, u := range s.cfg.Auth.Users {
		spec := acl.Spec{Name: u.Name, Enabled: u.IsEnabled(), NoPass: u.NoPass, PasswordHashes: u.PasswordHashes, Commands: u.Commands, Keys: u.Keys}
		compiled, err := acl.NewUser(s.acl, spec)
		var re *acl.RuleError
		if errors.As(err, &re) {
			err = &config.FieldError{Field: fmt.Sprintf("auth.users[%d].commands[%d]", i, re.Index), Problem: re.Error()}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.users[u.Name] = compiled
	}
	return errors.Join(errs...)
}

// adminAddr is where the admin server listens: addr, but on loopback when addr
// names no host (":9001"). The admin server asks for no password, so a host that
// others can reach is honored with a warning.
func adminAddr(addr string, log *slog.Logger) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Warn("the admin HTTP server listens on an address other hosts may reach; it asks for no password", "admin_addr", addr)
	}
	return addr, nil
}

// newReplication creates this node's Raft groups, one per slot range it replicates,
// with their logs in dataDir (in memory when empty).
func (s *Server) newReplication(dataDir string) error {
	if dataDir != "" {
		fsync, err := replica.ParseFsync(s.cfg.Persistence.Fsync)
		if err != nil {
			return err
		}
		s.disk, err = replica.OpenDisk(replica.DiskOptions{
			Dir: dataDir, Fsync: fsync, Logger: s.log,
			OnFsync: func(d time.Duration) {
				s.metrics.fsyncLatency.Observe(d.Seconds())
				s.latency.note("wal-fsync", d)
			},
		})
		if err != nil {
			return fmt.Errorf("data directory %s: %w", dataDir, err)
		}
		s.log.Info("keeping data on disk", "dir", dataDir, "fsync", fsync.String())
		if s.disk.Empty() {
			s.log.Info("the data directory holds no log: this node starts empty; where its groups hold data, " +
				"its replicas take no part in elections until they have caught up from their leaders")
		}
	}
	err := s.startGroups()
	if err != nil && s.disk != nil {
		_ = s.disk.Close()
		s.disk = nil
	}
	return err
}

// startGroups creates the Raft groups of the slot ranges this node replicates.
func (s *Server) startGroups() error {
	members := s.slots.Members()
	s.shards = make([]*shard, len(members))
	s.view = newLeaderView()
	s.raftLinks = make([]*raftLink, len(members))
	var specs []replica.GroupSpec
	for g := range members {
		reps := s.slots.Replicas(g)
		var voters []uint64
		member := false
		for _, m := range reps {
			voters = append(voters, cluster.RaftID(m.Index))
			member = member || m.Name == s.self.Name
		}
		if !member {
			continue
		}
		s.shards[g] = &shard{s: s, group: g, slots: s.slots.Range(g)}
		spec := replica.GroupSpec{ID: g, Voters: voters, Preferred: voters[0], SM: s.shards[g]}
		if s.disk != nil {
			var err error
			if spec.Log, err = s.disk.Storage(g); err != nil {
				return err
			}
		}
		specs = append(specs, spec)
		for _, m := range reps {
			if m.Name != s.self.Name && s.raftLinks[m.Index] == nil {
				s.raftLinks[m.Index] = newRaftLink(s, m)
			}
		}
	}
	h, err := replica.New(replica.Options{
		Self: cluster.RaftID(s.self.Index), Groups: specs, Transport: s, Logger: s.log,
		OnLeaderChange: s.leaderChanged,
	})
	if err != nil {
		return err
	}
	s.repl = h
	s.keeping = s.store.Keeping()
	for _, g := range h.Groups() {
		if len(s.slots.Replicas(g)) == 1 {
			h.Release(g, "the group has no other member")
		}
	}
	return nil
}

// leaderChanged logs and counts a change of a group's leader.
func (s *Server) leaderChanged(group int, leader, term uint64) {
	s.metrics.leaderChanges.Inc()
	r := s.slots.Range(group)
	switch {
	case leader == 0:
		// A hand-over of the lead (to the preferred leader) passes through here too,
		// for a moment: only a range still without a leader an election timeout
		// later is a warning.
		s.log.Info("slot range has no leader for now (an election or a hand-over)", "group", group, "slots", r.String(), "term", term)
		after := s.repl.ElectionTimeout()
		time.AfterFunc(after, func() {
			if l, t := s.repl.Leader(group); l == 0 && s.replCtx.Err() == nil {
				s.log.Warn("slot range has had no leader for "+after.String()+"; its requests wait for an election",
					"group", group, "slots", r.String(), "term", t)
			}
		})
	case leader == cluster.RaftID(s.self.Index):
		s.log.Info("leading slot range", "group", group, "slots", r.String(), "term", term)
	default:
		s.log.Info("slot range has a new leader", "group", group, "slots", r.String(), "leader", s.slots.Members()[leader-1].Name, "term", term)
	}
}

// Addr is the host:port the node serves clients on.
func (s *Server) Addr() string { return s.listen }

// AdminAddr is the admin HTTP address, or nil when there is none.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// Healthy reports Redis's cluster_state:ok: the node accepts clients, the barrier
// passed and every peer is up.
func (s *Server) Healthy() bool { return s.serving.Load() && s.clusterOK() }

// clusterOK is cluster_state:ok: the barrier passed and every slot range has a live
// owner (without replication, every peer is up; with it, every group has a leader that
// answers).
func (s *Server) clusterOK() bool {
	if s.repl == nil {
		return s.members.Healthy()
	}
	if !s.members.BarrierPassed() {
		return false
	}
	for g := range s.slots.Members() {
		if l, _ := s.routeReplicated(s.slots.Range(g).Start); l == nil {
			return false
		}
	}
	return true
}

// Run serves until ctx ends, then stops reading from clients, lets the commands that
// are waiting finish, closes the connections (after writing what they are owed) and
// returns.
func (s *Server) Run(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer s.cancel()
	s.replCtx, s.replCancel = context.WithCancel(context.WithoutCancel(ctx))
	defer s.replCancel()
	var wg sync.WaitGroup
	if s.repl != nil {
		wg.Go(func() { s.repl.Run(s.replCtx) })
		for _, l := range s.raftLinks {
			if l != nil {
				wg.Go(l.run)
			}
		}
	}
	for _, p := range s.peers {
		wg.Go(func() { s.probeLoop(p) })
	}
	wg.Go(s.barrierLog)
	wg.Go(s.sweepLoop)
	wg.Go(s.recoverLoop)
	wg.Go(s.idleLoop)
	var adminSrv *http.Server
	if s.adminLn != nil {
		adminSrv = s.newAdminServer()
		wg.Go(func() {
			if err := adminSrv.Serve(s.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("admin server", "err", err)
			}
		})
	}
	var err error
	if s.tlsLn != nil {
		err = s.runTLS()
	} else {
		err = s.runLoops()
	}
	if adminSrv != nil {
		_ = adminSrv.Close()
	}
	for _, p := range s.peers {
		_ = p.data.Close()
		_ = p.txn.Close()
		_ = p.probe.Close()
	}
	wg.Wait()
	if s.disk != nil {
		if derr := s.disk.Close(); derr != nil {
			s.log.Error("closing the log", "err", derr)
		}
	}
	s.log.Info("stopped")
	return err
}

// runLoops serves clients on gnet event loops until ctx ends or serving fails, then
// drains them and stops the loops.
func (s *Server) runLoops() error {
	loops := s.loops
	if loops <= 0 {
		loops = runtime.GOMAXPROCS(0)
	}
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- gnet.Run(&events{s: s}, "tcp://"+s.listen,
			gnet.WithMulticore(true), gnet.WithNumEventLoop(loops), gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithTCPKeepAlive(clientKeepAlive),
			gnet.WithLogger(gnetLogger{s.log}))
	}()
	var (
		err error
		eng gnet.Engine
	)
	select {
	case eng = <-s.engine:
		s.log.Info("serving", "addr", s.listen, "id", s.self.ID, "slots", s.self.Ranges[0].String(),
			"peers", len(s.peers), "event_loops", loops, "digest", s.digest)
		select {
		case <-s.ctx.Done():
		case err = <-serveErr:
		}
	case err = <-serveErr:
	}
	if err != nil {
		err = fmt.Errorf("server: serve %s: %w", s.listen, err)
	}
	s.cancel()
	s.drain()
	s.replCancel()
	if eng.Validate() == nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		if serr := eng.Stop(stopCtx); serr != nil {
			s.log.Warn("stopping the event loops", "err", serr)
		}
		cancel()
		<-serveErr
	}
	return err
}

// clientKeepAlive is the TCP keep-alive period of client connections, as Go's own
// listeners set it.
const clientKeepAlive = 15 * time.Second

// coarseClock is read on every read from a client (for the idle cutoff), where a
// precise clock costs too much; it ticks every coarseTick. It also bounds waits
// without a timer of their own: a waiter watches the channel closed at the next tick.
type coarseClock struct {
	nanos  atomic.Int64
	ticked atomic.Pointer[chan struct{}]
}

const coarseTick = 50 * time.Millisecond

// set moves the clock to t and wakes the waiters of this tick.
func (c *coarseClock) set(t time.Time) {
	c.nanos.Store(t.UnixNano())
	next := make(chan struct{})
	if old := c.ticked.Swap(&next); old != nil {
		close(*old)
	}
}

// next returns a channel that is closed at the clock's next tick.
func (c *coarseClock) next() <-chan struct{} { return *c.ticked.Load() }

// waitDone waits until done is closed and reports true, or reports false once the
// coarse clock reaches deadline (Unix ns; so up to a coarseTick late) or the server
// stops. Unlike a context with a timeout it costs no timer and no allocation, which
// matters on the path of every replicated command.
func (s *Server) waitDone(done <-chan struct{}, deadline int64) bool {
	for {
		tick := s.clock.next()
		select {
		case <-done:
			return true
		default:
		}
		if s.clock.nanos.Load() >= deadline {
			return false
		}
		select {
		case <-done:
			return true
		case <-tick:
		case <-s.ctx.Done():
			return false
		}
	}
}

// drain stops reading from every client and waits, up to drainTimeout, for the
// commands that were waiting (forwarded, barriers) to be answered.
func (s *Server) drain() {
	s.draining.Store(true)
	s.clientsMu.Lock()
	n := len(s.clients)
	s.clientsMu.Unlock()
	if n > 0 {
		s.log.Info("draining client connections", "clients", n)
	}
	deadline := time.Now().Add(drainTimeout)
	for s.busy.Load() > 0 {
		s.wakeParked(time.Now().UnixNano())
		if time.Now().After(deadline) {
			s.log.Warn("commands still waiting after the drain timeout; closing their clients", "commands", s.busy.Load())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wakeParked wakes the connections whose parked runs are past their deadline (Unix
// ns), to answer them.
func (s *Server) wakeParked(now int64) {
	if s.busy.Load() == 0 {
		return
	}
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	for cl := range s.clients {
		if d := cl.parkedUntil.Load(); d != 0 && d <= now {
			_ = cl.gc.Wake(nil)
		}
	}
}

// gnetLogger passes gnet's logs to the node's: its chatter at debug level.
type gnetLogger struct{ log *slog.Logger }

func (l gnetLogger) Debugf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l gnetLogger) Infof(format string, args ...any)  { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l gnetLogger) Warnf(format string, args ...any)  { l.log.Warn(fmt.Sprintf(format, args...)) }
func (l gnetLogger) Errorf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }
func (l gnetLogger) Fatalf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }

// sweepLoop ticks the coarse clock and the store's access clock and, every other
// tick, removes expired keys or samples the statistics.
func (s *Server) sweepLoop() {
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	var ops opsSampler
	for i := 0; ; i++ {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.clock.set(now)
			s.store.Tick()
			s.wakeParked(now.UnixNano())
			if i%2 != 0 {
				s.sampleStats(&ops, now)
				continue
			}
			start := time.Now()
			if s.repl != nil {
				s.sweepReplicated()
			} else {
				s.store.SweepExpired(20)
			}
			s.latency.note("expire-cycle", time.Since(start))
		}
	}
}

// Close releases the admin listener of a server whose Run was never called.
func (s *Server) Close() error {
	if s.adminLn != nil {
		return s.adminLn.Close()
	}
	return nil
}
