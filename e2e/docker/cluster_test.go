package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/keyspace"
)

// Ports inside every container, as in deploy/.
const (
	respPort  = 7001
	adminPort = 9001
)

// configPath is where each container finds the cluster config.
const configPath = "/etc/dht/cluster.json"

// The test clusters' timeouts: short, so that failure detection is quick, but
// far enough apart that "answered at once" and "waited for a timeout" differ.
const (
	peerDial      = 500 * time.Millisecond
	peerRequest   = 1500 * time.Millisecond
	probeInterval = 200 * time.Millisecond
	probeFailures = 3
	barrier       = 30 * time.Second
	// failover bounds how long a request waits for its slot range's group to
	// have a leader (replicated clusters only, but the config requires it).
	failover = 3 * time.Second
)

// Bounds the tests hold the cluster to, derived from the timeouts above plus
// slack for a loaded two-core machine.
const (
	// slack absorbs scheduling and docker delays.
	slack = 1500 * time.Millisecond
	// failBound: a request for a lost node's slots gets -CLUSTERDOWN within it,
	// even before the node is marked down (the forward times out).
	failBound = peerDial + peerRequest + slack
	// markDownBound: by then the lost node is marked down (probeFailures
	// probes in a row failed, each bounded by max(probe, peer_dial)) and a
	// request that was already waiting on it has timed out.
	markDownBound = probeFailures*(probeInterval+max(probeInterval, peerDial)) + peerRequest + slack
	// fastBound: once a node is marked down, requests for its slots are
	// refused well under peerRequest.
	fastBound = 500 * time.Millisecond
	// recoverBound: a node back on the network is marked up again within it.
	recoverBound = 15 * time.Second
	// clientTimeout is the go-redis clients' read timeout: a request to a node
	// that does not answer fails within it.
	clientTimeout = peerRequest + slack
)

// cluster is a dht cluster of containers on a private network of one test.
type cluster struct {
	t       *testing.T
	eng     engine
	prefix  string
	network string
	image   string
	ips     []netip.Addr
	cfg     config.Config
	names   []string // container names, by node index
	// access is the network through which the host alone reaches the nodes
	// of a replicated cluster, and accessIPs their addresses on it: a node cut
	// off from the cluster network still answers there. Empty without
	// replication.
	access    string
	accessIPs []netip.Addr
}

// newCluster creates, but does not start, an n-node cluster of image with
// the given replication degree: a private network with a pinned subnet and
// one container per node with a pinned address. A replicated cluster (degree
// above 1) gets a second network, the access network, which the nodes are on
// too but never use for each other. Everything is removed when the test ends.
func newCluster(t *testing.T, eng engine, image string, n, replication int) *cluster {
	t.Helper()
	c := &cluster{t: t, eng: eng, prefix: uniquePrefix(t), image: image}
	var subnet netip.Prefix
	c.network, subnet = c.createNetwork("net")
	var accessNet netip.Prefix
	if replication > 1 {
		c.access, accessNet = c.createNetwork("access")
	}
	c.cfg = config.Default()
	c.cfg.Routing = config.RoutingForward
	c.cfg.ReplicationDegree = replication
	// The test's clients reach the nodes from the host, over a private network
	// of its own: no password, and protected mode off.
	c.cfg.ProtectedMode = new(bool)
	c.cfg.Timeouts = config.Timeouts{
		PeerDial:      config.Duration{Duration: peerDial},
		PeerRequest:   config.Duration{Duration: peerRequest},
		Probe:         config.Duration{Duration: probeInterval},
		ProbeFailures: probeFailures,
		Barrier:       config.Duration{Duration: barrier},
		Failover:      config.Duration{Duration: failover},
	}
	base := subnet.Addr().As4()
	for i := range n {
		ip := base
		ip[3] = byte(11 + i)
		addr := netip.AddrFrom4(ip)
		c.ips = append(c.ips, addr)
		if c.access != "" {
			aip := accessNet.Addr().As4()
			aip[3] = byte(11 + i)
			c.accessIPs = append(c.accessIPs, netip.AddrFrom4(aip))
		}
		c.cfg.Nodes = append(c.cfg.Nodes, config.Node{
			Name:      fmt.Sprintf("n%d", i+1),
			Addr:      netip.AddrPortFrom(addr, respPort).String(),
			AdminAddr: netip.AddrPortFrom(addr, adminPort).String(),
		})
	}
	if err := c.cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	root := c.writeConfig()
	for i := range n {
		c.createNode(i, root)
	}
	t.Cleanup(c.dumpLogsOnFailure)
	return c
}

// createNetwork creates a user-defined bridge network of the test, named
// after it and suffix, with a fixed /24 under 10.231.0.0/16 and returns its
// name and subnet. The network is internal: the containers reach each other
// and the host, nothing else. A subnet that another network (say, a
// concurrent run's) or a host interface already uses is skipped.
func (c *cluster) createNetwork(suffix string) (string, netip.Prefix) {
	c.t.Helper()
	network := c.prefix + "-" + suffix
	hostNets := hostPrefixes(c.t)
	start := rand.IntN(250)
	var lastErr error
	for i := range 250 {
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 231, byte(1 + (start+i)%250), 0}), 24)
		if overlapsAny(subnet, hostNets) {
			continue
		}
		gateway := subnet.Addr().As4()
		gateway[3] = 1
		ctx, cancel := context.WithTimeout(c.t.Context(), time.Minute)
		_, err := c.eng.run(ctx, "network", "create", "--driver", "bridge", "--internal",
			"--subnet", subnet.String(), "--gateway", netip.AddrFrom4(gateway).String(),
			"--label", labelKey+"="+c.prefix, network)
		cancel()
		if err == nil {
			c.eng.cleanup(c.t, "network", "rm", network)
			return network, subnet
		}
		if !strings.Contains(err.Error(), "overlap") {
			c.t.Fatal(err)
		}
		lastErr = err
	}
	c.t.Fatalf("no free /24 under 10.231.0.0/16 for the test network: %v", lastErr)
	return "", netip.Prefix{}
}

// hostPrefixes lists the networks of the host's interfaces.
func hostPrefixes(t *testing.T) []netip.Prefix {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("listing host addresses: %v", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// overlapsAny reports whether p overlaps one of ps.
func overlapsAny(p netip.Prefix, ps []netip.Prefix) bool {
	for _, q := range ps {
		if p.Overlaps(q) {
			return true
		}
	}
	return false
}

// writeConfig writes the cluster config into a directory tree that mirrors
// the container's file system, ready for docker cp, and returns its root.
func (c *cluster) writeConfig() string {
	c.t.Helper()
	data, err := json.MarshalIndent(c.cfg, "", "  ")
	if err != nil {
		c.t.Fatal(err)
	}
	root := c.t.TempDir()
	file := filepath.Join(root, filepath.FromSlash(configPath))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		c.t.Fatal(err)
	}
	return root
}

// createNode creates node i's container with its pinned address and copies
// the config into it. The config is copied rather than bind-mounted so that
// the tests also work against a Docker engine on another machine.
func (c *cluster) createNode(i int, configRoot string) {
	c.t.Helper()
	node := c.cfg.Nodes[i]
	name := c.prefix + "-" + node.Name
	c.names = append(c.names, name)
	c.eng.must(c.t, "create",
		"--name", name,
		"--label", labelKey+"="+c.prefix,
		"--network", c.network,
		"--ip", c.ips[i].String(),
		"--stop-timeout", "10",
		c.image,
		"serve", "--config", configPath, "--node", node.Name,
		"--listen", "0.0.0.0:"+strconv.Itoa(respPort),
		"--admin", "0.0.0.0:"+strconv.Itoa(adminPort),
		"--data-dir", "/data")
	c.eng.cleanup(c.t, "rm", "--force", "--volumes", name)
	if c.access != "" {
		c.eng.must(c.t, "network", "connect", "--ip", c.accessIPs[i].String(), c.access, name)
	}
	c.eng.must(c.t, "cp", configRoot+"/.", name+":/")
}

// dumpLogsOnFailure logs the tail of every container's output if the test failed.
func (c *cluster) dumpLogsOnFailure() {
	if !c.t.Failed() {
		return
	}
	for _, name := range c.names {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		state, serr := c.eng.run(ctx, "inspect", "--format",
			"{{.State.Status}}, exit code {{.State.ExitCode}}, OOM-killed {{.State.OOMKilled}}", name)
		out, err := c.eng.runCombined(ctx, "logs", "--tail", "60", name)
		cancel()
		if serr != nil {
			state = serr.Error()
		}
		if err != nil {
			c.t.Logf("%s (%s): logs: %v", name, state, err)
			continue
		}
		c.t.Logf("last log lines of %s (%s):\n%s", name, state, out)
	}
}

// start starts the containers of the given nodes.
func (c *cluster) start(nodes ...int) {
	c.t.Helper()
	for _, i := range nodes {
		c.eng.must(c.t, "start", c.names[i])
	}
}

// startAll starts every node and waits until the cluster is formed.
func (c *cluster) startAll() {
	c.t.Helper()
	all := make([]int, len(c.names))
	for i := range all {
		all[i] = i
	}
	c.start(all...)
	c.waitState("ok", barrier, all...)
}

// kill sends SIGKILL to node i.
func (c *cluster) kill(i int) { c.t.Helper(); c.eng.must(c.t, "kill", c.names[i]) }

// pause freezes node i's processes; its network stack still accepts connections.
func (c *cluster) pause(i int) { c.t.Helper(); c.eng.must(c.t, "pause", c.names[i]) }

// unpause thaws node i.
func (c *cluster) unpause(i int) { c.t.Helper(); c.eng.must(c.t, "unpause", c.names[i]) }

// disconnect takes node i off the cluster network: it keeps running, alone.
func (c *cluster) disconnect(i int) {
	c.t.Helper()
	c.eng.must(c.t, "network", "disconnect", c.network, c.names[i])
}

// connect puts node i back on the cluster network, at its pinned address.
func (c *cluster) connect(i int) {
	c.t.Helper()
	c.eng.must(c.t, "network", "connect", "--ip", c.ips[i].String(), c.network, c.names[i])
}

// stop sends SIGTERM to node i, waits for it to exit and returns its exit code.
func (c *cluster) stop(i int) int {
	c.t.Helper()
	c.eng.must(c.t, "stop", "--time", "10", c.names[i])
	code, err := strconv.Atoi(c.eng.must(c.t, "inspect", "--format", "{{.State.ExitCode}}", c.names[i]))
	if err != nil {
		c.t.Fatalf("exit code of %s: %v", c.names[i], err)
	}
	return code
}

// addr is node i's RESP address, as in the config.
func (c *cluster) addr(i int) string { return c.cfg.Nodes[i].Addr }

// addrs lists every node's RESP address.
func (c *cluster) addrs() []string {
	out := make([]string, len(c.cfg.Nodes))
	for i := range out {
		out[i] = c.addr(i)
	}
	return out
}

// hostAddr is the address at which the host reaches node i: on the access
// network if the cluster has one, else its config address.
func (c *cluster) hostAddr(i int) string {
	if c.access == "" {
		return c.addr(i)
	}
	return netip.AddrPortFrom(c.accessIPs[i], respPort).String()
}

// client returns a go-redis client of node i alone, at its hostAddr, closed
// when the test ends. It never retries, so each call is one request and its
// duration is what the node took to answer.
func (c *cluster) client(i int) *redis.Client {
	c.t.Helper()
	return c.clientWithin(i, clientTimeout)
}

// clientWithin is client with a read timeout of its own.
func (c *cluster) clientWithin(i int, readTimeout time.Duration) *redis.Client {
	c.t.Helper()
	cl := redis.NewClient(&redis.Options{
		Addr:                     c.hostAddr(i),
		Protocol:                 2,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		DialTimeout:              time.Second,
		DialerRetries:            1,
		ReadTimeout:              readTimeout,
		WriteTimeout:             time.Second,
		MaxRetries:               -1,
		PoolSize:                 4,
		ContextTimeoutEnabled:    true,
	})
	c.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// clusterClient returns a go-redis ClusterClient seeded with every node,
// closed when the test ends. It does not retry either.
func (c *cluster) clusterClient() *redis.ClusterClient {
	c.t.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                    c.addrs(),
		Protocol:                 2,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		DialTimeout:              time.Second,
		DialerRetries:            1,
		ReadTimeout:              clientTimeout,
		WriteTimeout:             time.Second,
		MaxRedirects:             -1,
		PoolSize:                 4,
		ContextTimeoutEnabled:    true,
	})
	c.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// clusterState returns the cluster_state field of the CLUSTER INFO of cl's node.
func clusterState(ctx context.Context, cl *redis.Client) (string, error) {
	info, err := cl.ClusterInfo(ctx).Result()
	if err != nil {
		return "", fmt.Errorf("CLUSTER INFO: %w", err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("CLUSTER INFO has no cluster_state: %q", info)
}

// waitState waits up to within until each of the given nodes reports
// cluster_state:want.
func (c *cluster) waitState(want string, within time.Duration, nodes ...int) {
	c.t.Helper()
	for _, i := range nodes {
		cl := c.client(i)
		eventually(c.t, within, fmt.Sprintf("%s reports cluster_state:%s", c.cfg.Nodes[i].Name, want), func(ctx context.Context) error {
			got, err := clusterState(ctx, cl)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("cluster_state:%s", got)
			}
			return nil
		})
	}
}

// healthz returns the status code of node i's /healthz. It connects to the
// node itself, never through a proxy from the environment.
func (c *cluster) healthz(ctx context.Context, i int) (int, error) {
	ip := c.ips[i]
	if c.access != "" {
		ip = c.accessIPs[i]
	}
	url := "http://" + netip.AddrPortFrom(ip, adminPort).String() + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	direct := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := direct.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// keysOf returns count distinct keys whose slots node i owns, assuming the
// layout of the config: node i owns the i-th of keyspace.Split(len(nodes)).
// startupBarrier checks that layout against CLUSTER SLOTS.
func (c *cluster) keysOf(i, count int) []string {
	c.t.Helper()
	ranges, err := keyspace.Split(len(c.cfg.Nodes))
	if err != nil {
		c.t.Fatal(err)
	}
	var keys []string
	for k := 0; len(keys) < count; k++ {
		key := fmt.Sprintf("%s:key:%d", c.cfg.Nodes[i].Name, k)
		if ranges[i].Contains(keyspace.SlotOf(key)) {
			keys = append(keys, key)
		}
	}
	return keys
}

// dataset is what a test wrote: keys by owning node, and their values.
type dataset struct {
	byNode [][]string
	values map[string]string
}

// seed writes perNode keys into every node's slots through cl, and returns them.
func (c *cluster) seed(cl redis.Cmdable, perNode int) dataset {
	c.t.Helper()
	ds := dataset{values: map[string]string{}}
	for i := range c.cfg.Nodes {
		keys := c.keysOf(i, perNode)
		ds.byNode = append(ds.byNode, keys)
		for _, k := range keys {
			v := "value-of-" + k
			ctx, cancel := context.WithTimeout(c.t.Context(), clientTimeout)
			err := cl.Set(ctx, k, v, 0).Err()
			cancel()
			if err != nil {
				c.t.Fatalf("SET %s (owned by %s): %v", k, c.cfg.Nodes[i].Name, err)
			}
			ds.values[k] = v
		}
	}
	return ds
}

// checkIntact asserts that every key of the given nodes reads back, through
// cl, with the value seed wrote.
func (c *cluster) checkIntact(cl redis.Cmdable, ds dataset, nodes ...int) {
	c.t.Helper()
	for _, i := range nodes {
		for _, k := range ds.byNode[i] {
			ctx, cancel := context.WithTimeout(c.t.Context(), clientTimeout)
			got, err := cl.Get(ctx, k).Result()
			cancel()
			if err != nil {
				c.t.Errorf("GET %s (owned by %s): %v", k, c.cfg.Nodes[i].Name, err)
				continue
			}
			if want := ds.values[k]; got != want {
				c.t.Errorf("GET %s (owned by %s) = %q, want %q", k, c.cfg.Nodes[i].Name, got, want)
			}
		}
	}
}

// isClusterDown reports whether err is a -CLUSTERDOWN reply.
func isClusterDown(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "CLUSTERDOWN")
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var nerr net.Error
	return errors.As(err, &nerr) && nerr.Timeout()
}

// timed runs f under a context bounded by limit+slack and returns how long it took.
func timed(t *testing.T, limit time.Duration, f func(ctx context.Context) error) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit+slack)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	return time.Since(start), err
}

// eventually calls f every 100ms until it returns nil, failing the test with
// f's last error if that has not happened within the bound. Each call of f
// gets a context that ends with the bound.
func eventually(t *testing.T, within time.Duration, what string, f func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	start := time.Now()
	var last error
	for {
		err := f(ctx)
		if err == nil {
			return
		}
		if ctx.Err() == nil || last == nil {
			last = err // keep the cause, not the deadline that cut the last try short
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %v: still not true that %s: %v", time.Since(start).Round(time.Millisecond), what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
