// Package config loads and validates a dht cluster configuration.
//
// The native format is JSON (see examples/cluster.json). A properties file in the
// original assignment's format (node_ips, server_port, dht_num_buckets, ...) loads too:
// Load detects it by its keys.
package config

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/dhtkv/dht/internal/acl"
	"github.com/dhtkv/dht/internal/tlsconf"
)

// Routing modes: what a node does with a request for a slot another node owns.
const (
	// RoutingForward forwards the request to the owner and relays its reply.
	RoutingForward = "forward"
	// RoutingMoved answers -MOVED slot host:port, as Redis Cluster does.
	RoutingMoved = "moved"
)

// Config is a whole cluster's configuration. Every node of a cluster loads the same
// file; Digest tells whether two nodes did.
type Config struct {
	// Nodes lists the cluster's nodes in slot order: the first owns the first slot range.
	Nodes []Node `json:"nodes"`
	// Buckets is the number of lock stripes of each node's table.
	Buckets int `json:"buckets,omitempty"`
	// ReplicationDegree is the number of copies of each key, 1 to the number of nodes.
	// With more than one, each slot range is replicated by a Raft group of that many
	// nodes.
	ReplicationDegree int `json:"replication_degree,omitempty"`
	// Routing is RoutingForward (default) or RoutingMoved.
	Routing string `json:"routing,omitempty"`
	// Limits bound what a client may send.
	Limits Limits `json:"limits"`
	// Timeouts bound waits between nodes.
	Timeouts Timeouts `json:"timeouts"`
	// Workload is the default workload of dht bench.
	Workload Workload `json:"workload"`
	// Auth holds the client password and the cluster secret (see ResolveSecrets).
	Auth Auth `json:"auth"`
	// ProtectedMode, as in Redis, refuses clients from addresses other than loopback
	// while no password is set; nil means true.
	ProtectedMode *bool `json:"protected_mode,omitempty"`
	// Admin configures the admin HTTP server.
	Admin Admin `json:"admin"`
	// TLS, when its cert_file is set, makes every node's addr serve TLS only, to
	// clients and peers alike.
	TLS TLS `json:"tls"`
	// Persistence configures how nodes keep their data on disk.
	Persistence Persistence `json:"persistence"`
}

// TLS names a node's certificate files. Every node loads the same config, so each
// host (or container) holds its own certificate at the same paths.
type TLS struct {
	// CertFile is the node's certificate (PEM), shown to clients and, when a node
	// asks for one, to peers: it must name the host of the node's addr, and be good
	// for client authentication too when client_auth is not "none".
	CertFile string `json:"cert_file,omitempty"`
	// KeyFile is the certificate's private key (PEM).
	KeyFile string `json:"key_file,omitempty"`
	// CAFile is the certificate of the authority that signed the nodes' (and the
	// clients') certificates: nodes check each other's against it.
	CAFile string `json:"ca_file,omitempty"`
	// ClientAuth is "none" (the default: clients show no certificate), "request"
	// (a certificate a client shows must chain to the CA) or "require" (a client
	// must show one).
	ClientAuth string `json:"client_auth,omitempty"`
}

// Enabled reports whether the nodes serve TLS.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// ClientFiles are the files a client of the cluster on a node's host uses: the CA,
// and the node's certificate when the nodes check client certificates.
func (t TLS) ClientFiles() tlsconf.Files {
	f := tlsconf.Files{CA: t.CAFile}
	if t.ClientAuth == tlsconf.ClientAuthRequest || t.ClientAuth == tlsconf.ClientAuthRequire {
		f.Cert, f.Key = t.CertFile, t.KeyFile
	}
	return f
}

// Persistence configures the nodes' write-ahead logs.
type Persistence struct {
	// Fsync is when a node's log is made durable, with Redis's appendfsync names:
	// FsyncAlways, FsyncEverysec (the default) or FsyncNo.
	Fsync string `json:"fsync,omitempty"`
}

// The fsync policies.
const (
	// FsyncAlways fsyncs every batch before it is acknowledged.
	FsyncAlways = "always"
	// FsyncEverysec writes every batch to the operating system before it is
	// acknowledged and fsyncs once a second.
	FsyncEverysec = "everysec"
	// FsyncNo leaves flushing to the operating system.
	FsyncNo = "no"
)

// Auth holds the secrets of a cluster. A secret may sit in the config, in a file the
// config names (so that the config itself holds none), or in an environment variable;
// ResolveSecrets reads the last two.
type Auth struct {
	// Password, if set, is the password of the default user: clients must AUTH with
	// it before any data command.
	Password string `json:"password,omitempty"`
	// PasswordFile names a file holding the password (a trailing newline is dropped).
	PasswordFile string `json:"password_file,omitempty"`
	// ClusterSecret, if set, is what nodes prove to each other that they know before
	// a node takes another's connection for a peer's. Unset, the password is the
	// cluster secret; with neither, peers need no secret.
	ClusterSecret string `json:"cluster_secret,omitempty"`
	// ClusterSecretFile names a file holding the cluster secret.
	ClusterSecretFile string `json:"cluster_secret_file,omitempty"`
	// Users are ACL users besides the default one, whose password is Password and
	// who may run every command on every key.
	Users []User `json:"users,omitempty"`
}

// User is an ACL user, as Redis 7 has them: clients authenticate as one with AUTH
// name password, and may then run only the commands and touch only the keys it
// allows.
type User struct {
	// Name is what AUTH names the user by; not "default".
	Name string `json:"name"`
	// Enabled users may authenticate; nil means true.
	Enabled *bool `json:"enabled,omitempty"`
	// NoPass users take any password.
	NoPass bool `json:"nopass,omitempty"`
	// PasswordHashes are the SHA-256 digests of the user's passwords, 64 hex digits
	// each (as Redis's "#<hash>" rule, the # optional), so that the config holds no
	// password.
	PasswordHashes []string `json:"password_hashes,omitempty"`
	// Commands are Redis's command rules, applied in order to no commands at all:
	// "+@read", "-@dangerous", "+@all", "+get", "-config|set", "allcommands".
	Commands []string `json:"commands,omitempty"`
	// Keys are the key patterns the user may touch ("~user:*", glob as Redis), or
	// "allkeys"; none means no key.
	Keys []string `json:"keys,omitempty"`
}

// IsEnabled reports whether the user may authenticate.
func (u User) IsEnabled() bool { return u.Enabled == nil || *u.Enabled }

// Admin configures the admin HTTP server (metrics, health, profiling).
type Admin struct {
	// PProf serves Go's profiler under /debug/pprof/; off by default.
	PProf bool `json:"pprof,omitempty"`
}

// Environment variables that ResolveSecrets reads.
const (
	// EnvPassword holds the password; it overrides auth.password and auth.password_file.
	EnvPassword = "DHT_PASSWORD"
	// EnvClusterSecret holds the cluster secret; it overrides auth.cluster_secret and
	// auth.cluster_secret_file.
	EnvClusterSecret = "DHT_CLUSTER_SECRET"
)

// ResolveSecrets fills in Auth.Password and Auth.ClusterSecret from the environment
// (looked up with getenv) and from the files the config names: for each secret, the
// environment variable if it is set and not empty, else the file, else the config's
// own field. It clears the file fields, so that a resolved config holds the secrets
// themselves.
func (c *Config) ResolveSecrets(getenv func(string) string) error {
	var errs []error
	resolve := func(value *string, file *string, env, field string) {
		switch {
		case getenv(env) != "":
			*value = getenv(env)
		case *file != "":
			b, err := os.ReadFile(*file)
			if err != nil {
				errs = append(errs, badField(field, "%v", err))
				return
			}
			*value = strings.TrimRight(string(b), "\r\n")
			if *value == "" {
				errs = append(errs, badField(field, "%s is empty", *file))
			}
		}
		*file = ""
	}
	resolve(&c.Auth.Password, &c.Auth.PasswordFile, EnvPassword, "auth.password_file")
	resolve(&c.Auth.ClusterSecret, &c.Auth.ClusterSecretFile, EnvClusterSecret, "auth.cluster_secret_file")
	return errors.Join(errs...)
}

// PeerSecret is the secret nodes prove to each other that they know: the cluster
// secret, or the password when there is no cluster secret (a cluster that asks its
// clients for a password should not take anyone for a peer), or empty: peers then
// need no secret.
func (c Config) PeerSecret() string {
	if c.Auth.ClusterSecret != "" {
		return c.Auth.ClusterSecret
	}
	return c.Auth.Password
}

// Protected reports whether protected mode is on: it is unless protected_mode is false.
func (c Config) Protected() bool { return c.ProtectedMode == nil || *c.ProtectedMode }

// Node is one member of the cluster.
type Node struct {
	// Name identifies the node in the config and on the command line (dht serve --node).
	Name string `json:"id"`
	// Addr is the host:port clients and peers use to reach the node's RESP port.
	Addr string `json:"addr"`
	// AdminAddr, if set, serves /metrics and /healthz over HTTP.
	AdminAddr string `json:"admin_addr,omitempty"`
}

// ID is the node's 40-hex cluster id, derived from its name so that every node and
// every topology reply agree on it without coordination.
func (n Node) ID() string {
	sum := sha1.Sum([]byte("dht-node:" + n.Name))
	return hex.EncodeToString(sum[:])
}

// Limits bound client input; they are checked before anything is buffered.
type Limits struct {
	// MaxBulkLen is the largest bulk string (key or value) accepted, in bytes.
	MaxBulkLen int `json:"max_bulk_len,omitempty"`
	// MaxArgs is the largest number of arguments in one command.
	MaxArgs int `json:"max_args,omitempty"`
	// MaxInlineLen is the longest inline (non-RESP) command line, in bytes.
	MaxInlineLen int `json:"max_inline_len,omitempty"`
	// MaxRequestLen is the largest command, all arguments together, in bytes.
	MaxRequestLen int `json:"max_request_len,omitempty"`
	// MaxClients is the most client connections a node holds at once.
	MaxClients int `json:"max_clients,omitempty"`
	// IdleTimeout closes client connections idle this long (0 disables).
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
}

// Timeouts bound waits between nodes.
type Timeouts struct {
	// PeerDial bounds connecting to a peer.
	PeerDial Duration `json:"peer_dial,omitempty"`
	// PeerRequest bounds one forwarded request; past it the client gets -CLUSTERDOWN.
	PeerRequest Duration `json:"peer_request,omitempty"`
	// Probe is the interval of peer health probes.
	Probe Duration `json:"probe,omitempty"`
	// ProbeFailures is how many probes in a row must fail before a peer is marked down.
	ProbeFailures int `json:"probe_failures,omitempty"`
	// Barrier bounds how long dht bench clients wait for each other.
	Barrier Duration `json:"barrier,omitempty"`
	// Failover bounds how long a request waits for its slot range's group to have a
	// leader, and for its write to be committed, before it gets -CLUSTERDOWN.
	Failover Duration `json:"failover,omitempty"`
}

// Mix is an operation mix in percent; the fields must add up to 100.
type Mix struct {
	// Get reads a key.
	Get int `json:"get"`
	// PutIfAbsent writes a key only if it does not exist (SET NX).
	PutIfAbsent int `json:"put_if_absent"`
	// Put writes a key unconditionally (SET).
	Put int `json:"put"`
	// MultiPut writes MultiPutNum keys at once (MSET).
	MultiPut int `json:"multi_put"`
}

// Workload is what each dht bench client runs.
type Workload struct {
	// KeyMin and KeyMax bound the keys: uniform over [KeyMin, KeyMax).
	KeyMin int64 `json:"key_min"`
	KeyMax int64 `json:"key_max"`
	// Requests is the number of operations per client thread (ignored with Duration).
	Requests int `json:"requests"`
	// Threads is the number of concurrent client threads per client.
	Threads int `json:"threads"`
	// ValueSize is the size of written values, in bytes.
	ValueSize int `json:"value_size"`
	// Mix is the operation mix in percent.
	Mix Mix `json:"mix"`
	// MultiPutNum is the number of keys of one multi-put.
	MultiPutNum int `json:"multi_put_num"`
	// Pipeline is the number of requests a thread keeps in flight (1 = no pipelining).
	Pipeline int `json:"pipeline"`
	// Duration, if set, runs for this long instead of a request count.
	Duration Duration `json:"duration,omitempty"`
}

// Duration is a time.Duration written in JSON as a Go duration string ("1.5s").
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string, or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var ms float64
		if err2 := json.Unmarshal(b, &ms); err2 != nil {
			return fmt.Errorf("duration must be a string like \"1.5s\" or a number of milliseconds: %s", b)
		}
		d.Duration = time.Duration(ms * float64(time.Millisecond))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

// Default returns the defaults that Load fills in for absent fields.
func Default() Config {
	return Config{
		Buckets:           1024,
		ReplicationDegree: 1,
		Routing:           RoutingForward,
		Persistence:       Persistence{Fsync: FsyncEverysec},
		Limits: Limits{
			MaxBulkLen:    64 << 20,
			MaxArgs:       1 << 20,
			MaxInlineLen:  64 << 10,
			MaxRequestLen: 128 << 20,
			MaxClients:    10000,
			IdleTimeout:   Duration{0},
		},
		Timeouts: Timeouts{
			PeerDial:      Duration{time.Second},
			PeerRequest:   Duration{2 * time.Second},
			Probe:         Duration{250 * time.Millisecond},
			ProbeFailures: 3,
			Barrier:       Duration{60 * time.Second},
			Failover:      Duration{5 * time.Second},
		},
		Workload: Workload{
			KeyMin:      0,
			KeyMax:      1000,
			Requests:    10000,
			Threads:     8,
			ValueSize:   30,
			Mix:         Mix{Get: 60, PutIfAbsent: 40},
			MultiPutNum: 3,
			Pipeline:    1,
		},
	}
}

// Local returns a config for n nodes on 127.0.0.1, ports basePort, basePort+1, ...,
// replicated LocalReplication(n) times. Admin ports are left unset.
func Local(n, basePort int) (Config, error) {
	c := Default()
	c.ReplicationDegree = LocalReplication(n)
	for i := 0; i < n; i++ {
		c.Nodes = append(c.Nodes, Node{Name: fmt.Sprintf("n%d", i+1), Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(basePort+i))})
	}
	return c, c.Validate()
}

// LocalReplication is the replication degree of a local cluster of n nodes unless
// one is given: 3, or n when there are fewer nodes.
func LocalReplication(n int) int { return max(1, min(3, n)) }

// Load reads, defaults and validates the config at path. Errors name the file and field.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if n := len(flatten(err)); n > 1 {
		return Config{}, fmt.Errorf("config %s: %d problems:\n%w", path, n, err)
	} else if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes, defaults and validates a config in either format.
func Parse(data []byte) (Config, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return Config{}, describeJSONError(data, err)
	}
	if _, ok := probe["node_ips"]; ok {
		return parseProperties(data)
	}
	c := Default()
	decoding := decodeFields(data, reflect.ValueOf(&c).Elem(), "")
	return c, problems(decoding, c.Validate())
}

// problems joins the problems met decoding a config and those Validate found in
// it, all of them, leaving out what Validate says about a field that could not be
// decoded (it has its default value).
func problems(decoding []error, validation error) error {
	bad := map[string]bool{}
	for _, err := range decoding {
		var fe *FieldError
		if errors.As(err, &fe) {
			bad[fe.Field] = true
		}
	}
	errs := decoding
	for _, err := range flatten(validation) {
		var fe *FieldError
		if errors.As(err, &fe) && bad[fe.Field] {
			continue
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// flatten lists the errors that err joins, recursively.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

func describeJSONError(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line := 1 + strings.Count(string(data[:syn.Offset]), "\n")
		return fmt.Errorf("line %d: invalid JSON: %w", line, err)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Errorf("expected a JSON object, got JSON %s", typ.Value)
	}
	return fmt.Errorf("invalid config: %w", err)
}

// Validate checks every field and reports all problems at once, each a *FieldError.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, badField(field, format, args...))
	}
	if len(c.Nodes) == 0 {
		bad("nodes", "at least one node is required")
	}
	if len(c.Nodes) > 1000 {
		bad("nodes", "%d nodes: at most 1000 are supported", len(c.Nodes))
	}
	names, addrs := map[string]int{}, map[string]int{}
	for i, n := range c.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		switch {
		case n.Name == "":
			bad(f+".id", "must not be empty")
		case strings.ContainsAny(n.Name, " \t\r\n"):
			bad(f+".id", "%q must not contain white space", n.Name)
		case names[n.Name] > 0:
			bad(f+".id", "%q is also nodes[%d].id", n.Name, names[n.Name]-1)
		}
		names[n.Name] = i + 1
		if err := checkHostPort(n.Addr); err != nil {
			bad(f+".addr", "%v", err)
		} else if addrs[n.Addr] > 0 {
			bad(f+".addr", "%q is also nodes[%d].addr", n.Addr, addrs[n.Addr]-1)
		}
		addrs[n.Addr] = i + 1
		if n.AdminAddr != "" {
			if _, _, err := net.SplitHostPort(n.AdminAddr); err != nil {
				bad(f+".admin_addr", "%v", err)
			}
		}
	}
	if c.Buckets < 1 || c.Buckets > 1<<20 {
		bad("buckets", "%d: must be between 1 and %d", c.Buckets, 1<<20)
	}
	if c.ReplicationDegree < 1 || len(c.Nodes) > 0 && c.ReplicationDegree > len(c.Nodes) {
		bad("replication_degree", "%d: must be between 1 and the number of nodes (%d)", c.ReplicationDegree, len(c.Nodes))
	}
	switch c.Persistence.Fsync {
	case FsyncAlways, FsyncEverysec, FsyncNo:
	default:
		bad("persistence.fsync", "%q: must be %q, %q or %q", c.Persistence.Fsync, FsyncAlways, FsyncEverysec, FsyncNo)
	}
	if c.Routing != RoutingForward && c.Routing != RoutingMoved {
		bad("routing", "%q: must be %q or %q", c.Routing, RoutingForward, RoutingMoved)
	}
	l := c.Limits
	if l.MaxBulkLen < 1 || l.MaxBulkLen > 512<<20 {
		bad("limits.max_bulk_len", "%d: must be between 1 and %d", l.MaxBulkLen, 512<<20)
	}
	if l.MaxArgs < 3 {
		bad("limits.max_args", "%d: must be at least 3", l.MaxArgs)
	}
	if l.MaxInlineLen < 16 {
		bad("limits.max_inline_len", "%d: must be at least 16", l.MaxInlineLen)
	}
	if l.MaxRequestLen < l.MaxBulkLen {
		bad("limits.max_request_len", "%d: must be at least limits.max_bulk_len (%d)", l.MaxRequestLen, l.MaxBulkLen)
	}
	if l.MaxClients < 1 {
		bad("limits.max_clients", "%d: must be at least 1", l.MaxClients)
	}
	if l.IdleTimeout.Duration < 0 {
		bad("limits.idle_timeout", "must not be negative")
	}
	t := c.Timeouts
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeouts.peer_dial", t.PeerDial.Duration}, {"timeouts.peer_request", t.PeerRequest.Duration}, {"timeouts.probe", t.Probe.Duration}, {"timeouts.barrier", t.Barrier.Duration}, {"timeouts.failover", t.Failover.Duration}} {
		if d.v <= 0 {
			bad(d.name, "must be positive")
		}
	}
	if t.ProbeFailures < 1 {
		bad("timeouts.probe_failures", "%d: must be at least 1", t.ProbeFailures)
	}
	if c.Auth.Password != "" && c.Auth.PasswordFile != "" {
		bad("auth.password_file", "auth.password is set too: give one of them")
	}
	if c.Auth.ClusterSecret != "" && c.Auth.ClusterSecretFile != "" {
		bad("auth.cluster_secret_file", "auth.cluster_secret is set too: give one of them")
	}
	errs = append(errs, validateUsers(c.Auth.Users)...)
	errs = append(errs, c.TLS.validate()...)
	if err := c.Workload.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validate checks that the TLS settings are all given, or none.
func (t TLS) validate() []error {
	var errs []error
	if !t.Enabled() {
		for _, f := range []struct{ name, v string }{{"key_file", t.KeyFile}, {"ca_file", t.CAFile}, {"client_auth", t.ClientAuth}} {
			if f.v != "" {
				errs = append(errs, badField("tls."+f.name, "needs tls.cert_file"))
			}
		}
		return errs
	}
	if t.KeyFile == "" {
		errs = append(errs, badField("tls.key_file", "is required with tls.cert_file"))
	}
	if t.CAFile == "" {
		errs = append(errs, badField("tls.ca_file", "is required with tls.cert_file: nodes check each other's certificates against it"))
	}
	switch t.ClientAuth {
	case "", tlsconf.ClientAuthNone, tlsconf.ClientAuthRequest, tlsconf.ClientAuthRequire:
	default:
		errs = append(errs, badField("tls.client_auth", "%q: must be %q, %q or %q", t.ClientAuth,
			tlsconf.ClientAuthNone, tlsconf.ClientAuthRequest, tlsconf.ClientAuthRequire))
	}
	return errs
}

// validateUsers checks the ACL users' fields that do not depend on the server's
// commands (which the server checks when it compiles the rules).
func validateUsers(users []User) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, badField(field, format, args...))
	}
	names := map[string]int{}
	for i, u := range users {
		f := fmt.Sprintf("auth.users[%d]", i)
		switch {
		case u.Name == "":
			bad(f+".name", "must not be empty")
		case u.Name == acl.DefaultUser:
			bad(f+".name", "%q is the user of auth.password, with every permission; give other users other names", u.Name)
		case strings.ContainsFunc(u.Name, func(r rune) bool { return r <= ' ' || r > '~' }):
			bad(f+".name", "%q: must be printable ASCII without spaces", u.Name)
		case names[u.Name] > 0:
			bad(f+".name", "%q is also auth.users[%d].name", u.Name, names[u.Name]-1)
		}
		names[u.Name] = i + 1
		for j, h := range u.PasswordHashes {
			if _, err := acl.ParseHash(h); err != nil {
				bad(fmt.Sprintf("%s.password_hashes[%d]", f, j), "%v", err)
			}
		}
		switch {
		case u.NoPass && len(u.PasswordHashes) > 0:
			bad(f+".nopass", "password_hashes are set too: give one of them")
		case u.IsEnabled() && !u.NoPass && len(u.PasswordHashes) == 0:
			bad(f+".password_hashes", "the user could never authenticate: give at least one, or nopass")
		}
		for j, r := range u.Commands {
			if why := checkCommandRule(r); why != "" {
				bad(fmt.Sprintf("%s.commands[%d]", f, j), "%q: %s", r, why)
			}
		}
		for j, k := range u.Keys {
			if _, err := acl.ParseKeyRule(k); err != nil {
				bad(fmt.Sprintf("%s.keys[%d]", f, j), "%v", err)
			}
		}
	}
	return errs
}

// checkCommandRule returns what is wrong with the form of a command rule, or "".
func checkCommandRule(r string) string {
	if strings.EqualFold(r, "allcommands") || strings.EqualFold(r, "nocommands") {
		return ""
	}
	if len(r) < 2 || r[0] != '+' && r[0] != '-' {
		return `must be "+" or "-" and a command name, or "@" and a category ("+@read", "-flushall"), or allcommands or nocommands`
	}
	if cat, ok := strings.CutPrefix(strings.ToLower(r[1:]), "@"); ok && cat != "all" && !acl.IsCategory(cat) {
		return fmt.Sprintf("unknown category; the categories are %s", strings.Join(acl.Categories(), ", "))
	}
	return ""
}

// Validate checks a workload on its own (dht bench validates flag overrides with
// it); each problem is a *FieldError.
func (w Workload) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, badField("workload."+field, format, args...))
	}
	if w.KeyMax <= w.KeyMin {
		bad("key_max", "%d: must be greater than key_min (%d)", w.KeyMax, w.KeyMin)
	}
	if w.Requests < 0 {
		bad("requests", "%d: must not be negative", w.Requests)
	}
	if w.Requests == 0 && w.Duration.Duration <= 0 {
		bad("requests", "0 requests and no duration: nothing to run")
	}
	if w.Threads < 1 || w.Threads > 10000 {
		bad("threads", "%d: must be between 1 and 10000", w.Threads)
	}
	if w.ValueSize < 1 || w.ValueSize > 64<<20 {
		bad("value_size", "%d: must be between 1 and %d", w.ValueSize, 64<<20)
	}
	m := w.Mix
	if m.Get < 0 || m.PutIfAbsent < 0 || m.Put < 0 || m.MultiPut < 0 {
		bad("mix", "percentages must not be negative")
	}
	if sum := m.Get + m.PutIfAbsent + m.Put + m.MultiPut; sum != 100 {
		bad("mix", "get+put_if_absent+put+multi_put = %d, must be 100", sum)
	}
	if m.MultiPut > 0 && (w.MultiPutNum < 1 || w.MultiPutNum > 10000) {
		bad("multi_put_num", "%d: must be between 1 and 10000", w.MultiPutNum)
	}
	if w.Pipeline < 1 || w.Pipeline > 10000 {
		bad("pipeline", "%d: must be between 1 and 10000", w.Pipeline)
	}
	if w.Duration.Duration < 0 {
		bad("duration", "must not be negative")
	}
	return errors.Join(errs...)
}

func checkHostPort(addr string) error {
	if addr == "" {
		return errors.New("must not be empty")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host: peers must be able to dial it", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535-10000 {
		return fmt.Errorf("%q: port must be a number between 1 and %d (port+10000 is reported as the cluster bus port)", addr, 65535-10000)
	}
	return nil
}

// Node returns the node named name.
func (c Config) Node(name string) (Node, error) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	known := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		known[i] = n.Name
	}
	return Node{}, fmt.Errorf("no node %q in the config (nodes: %s)", name, strings.Join(known, ", "))
}

// Digest is a short hash of everything that nodes must agree on: the node list, the
// slot layout it implies, the replication degree and the routing mode. Nodes compare
// digests at the startup barrier.
func (c Config) Digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "v1|rf=%d|routing=%s", c.ReplicationDegree, c.Routing)
	for _, n := range c.Nodes {
		fmt.Fprintf(h, "|%s=%s", n.Name, n.Addr)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
