package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const threeNodes = `{"nodes": [
	{"id": "n1", "addr": "127.0.0.1:7001"},
	{"id": "n2", "addr": "127.0.0.1:7002"},
	{"id": "n3", "addr": "127.0.0.1:7003"}]`

func TestDefaultIsValidWithNodes(t *testing.T) {
	c := Default()
	if err := c.Validate(); err == nil {
		t.Fatal("Default() without nodes validated; want an error about nodes")
	} else if !strings.Contains(err.Error(), "field nodes: at least one node is required") {
		t.Fatalf("error = %v, want it to name field nodes", err)
	}
	c.Nodes = []Node{{Name: "n1", Addr: "127.0.0.1:7001"}}
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() with one node: %v", err)
	}
}

func TestParseMinimalJSONFillsDefaults(t *testing.T) {
	c, err := Parse([]byte(threeNodes + `}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Nodes = []Node{
		{Name: "n1", Addr: "127.0.0.1:7001"},
		{Name: "n2", Addr: "127.0.0.1:7002"},
		{Name: "n3", Addr: "127.0.0.1:7003"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Parse = %+v\nwant    %+v", c, want)
	}
}

func TestParseOverridesKeepOtherDefaults(t *testing.T) {
	c, err := Parse([]byte(threeNodes + `,
		"routing": "moved",
		"limits": {"max_bulk_len": 1024, "idle_timeout": "90s"},
		"timeouts": {"peer_request": 1500},
		"workload": {"key_max": 50, "mix": {"get": 10, "put": 20, "put_if_absent": 30, "multi_put": 40}}}`))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Routing != RoutingMoved {
		t.Errorf("Routing = %q", c.Routing)
	}
	if c.Limits.MaxBulkLen != 1024 || c.Limits.MaxArgs != d.Limits.MaxArgs || c.Limits.MaxRequestLen != d.Limits.MaxRequestLen {
		t.Errorf("Limits = %+v: want max_bulk_len overridden, the rest default", c.Limits)
	}
	if c.Limits.IdleTimeout.Duration != 90*time.Second {
		t.Errorf("IdleTimeout = %v", c.Limits.IdleTimeout)
	}
	if c.Timeouts.PeerRequest.Duration != 1500*time.Millisecond || c.Timeouts.PeerDial != d.Timeouts.PeerDial {
		t.Errorf("Timeouts = %+v", c.Timeouts)
	}
	if c.Workload.KeyMax != 50 || c.Workload.Threads != d.Workload.Threads {
		t.Errorf("Workload = %+v", c.Workload)
	}
	if (c.Workload.Mix != Mix{Get: 10, Put: 20, PutIfAbsent: 30, MultiPut: 40}) {
		t.Errorf("Mix = %+v", c.Workload.Mix)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings, all required
	}{
		{"syntax error names the line", "{\n\"nodes\": [\n  {\"id\": \"n1\",, }\n]}", []string{"line 3", "invalid JSON"}},
		{"truncated", `{"nodes": [`, []string{"line 1", "invalid JSON"}},
		{"not an object", `[1, 2]`, []string{"expected"}},
		{"wrong type names the field", threeNodes + `, "buckets": "many"}`, []string{"field buckets: expected int, got JSON string"}},
		{"nested wrong type", threeNodes + `, "limits": {"max_args": true}}`, []string{"field limits.max_args: expected int, got JSON bool"}},
		{"unknown field", threeNodes + `, "bukets": 3}`, []string{`unknown field "bukets"`}},
		{"bad duration string", threeNodes + `, "timeouts": {"probe": "soon"}}`, []string{`bad duration "soon"`}},
		{"bad duration type", threeNodes + `, "timeouts": {"probe": [1]}}`, []string{"duration must be a string"}},
		{"no nodes", `{"nodes": []}`, []string{"field nodes: at least one node is required"}},
		{"empty", ``, []string{"invalid JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestParseReportsEveryMistake parses a file with several mistakes of every kind:
// each is reported, with the path of its field, in one error.
func TestParseReportsEveryMistake(t *testing.T) {
	in := `{
	"nodes": [
		{"id": "n1", "adr": "127.0.0.1:7001"},
		{"id": "n2", "addr": "127.0.0.1:7002", "admin": ":9002"}
	],
	"bukets": 3,
	"routing": "moved",
	"limits": {"max_clients": "many"},
	"timeouts": {"probe": "250", "peer_dial": "1s", "barier": "60s"},
	"workload": {"threads": 0, "mix": {"get": 50, "del": 50}}
}`
	_, err := Parse([]byte(in))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	want := []string{
		`field nodes[0].adr: unknown field "adr"`,
		`field nodes[0].addr: must not be empty`,
		`field nodes[1].admin: unknown field "admin"`,
		`field bukets: unknown field "bukets"`,
		`field limits.max_clients: expected int, got JSON string`,
		`field timeouts.probe: bad duration "250"`,
		`field timeouts.barier: unknown field "barier"`,
		`field workload.threads: 0: must be between 1 and 10000`,
		`field workload.mix.del: unknown field "del"`,
		// get replaces the default's 60; put_if_absent keeps the default's 40.
		`field workload.mix: get+put_if_absent+put+multi_put = 90, must be 100`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not report %q", w)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("%d problems reported, want %d", n, len(want))
	}
	if t.Failed() {
		t.Logf("error:\n%v", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "nodes[0].adr" {
		t.Errorf("first problem %v, want a *FieldError for nodes[0].adr", fe)
	}
}

func validConfig() Config {
	c := Default()
	c.Nodes = []Node{{Name: "n1", Addr: "127.0.0.1:7001"}, {Name: "n2", Addr: "127.0.0.1:7002"}}
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" means valid
	}{
		{"valid", func(*Config) {}, ""},
		{"ipv6 and names", func(c *Config) { c.Nodes[0].Addr = "[::1]:7001"; c.Nodes[1].Addr = "db-2.example:55535" }, ""},
		{"too many nodes", func(c *Config) {
			c.Nodes = nil
			for i := range 1001 {
				c.Nodes = append(c.Nodes, Node{Name: "n" + strconv.Itoa(i), Addr: "h" + strconv.Itoa(i) + ":7000"})
			}
		}, "field nodes: 1001 nodes: at most 1000"},
		{"empty id", func(c *Config) { c.Nodes[1].Name = "" }, "field nodes[1].id: must not be empty"},
		{"id with space", func(c *Config) { c.Nodes[0].Name = "n 1" }, `field nodes[0].id: "n 1" must not contain white space`},
		{"duplicate id", func(c *Config) { c.Nodes[1].Name = "n1" }, `field nodes[1].id: "n1" is also nodes[0].id`},
		{"duplicate addr", func(c *Config) { c.Nodes[1].Addr = c.Nodes[0].Addr }, `field nodes[1].addr: "127.0.0.1:7001" is also nodes[0].addr`},
		{"empty addr", func(c *Config) { c.Nodes[0].Addr = "" }, "field nodes[0].addr: must not be empty"},
		{"addr without port", func(c *Config) { c.Nodes[0].Addr = "127.0.0.1" }, "is not host:port"},
		{"addr without host", func(c *Config) { c.Nodes[0].Addr = ":7001" }, "has no host"},
		{"port zero", func(c *Config) { c.Nodes[0].Addr = "h:0" }, "port must be a number between 1 and 55535"},
		{"port leaves no room for bus port", func(c *Config) { c.Nodes[0].Addr = "h:55536" }, "port must be a number between 1 and 55535"},
		{"port not a number", func(c *Config) { c.Nodes[0].Addr = "h:redis" }, "port must be a number"},
		{"bad admin addr", func(c *Config) { c.Nodes[0].AdminAddr = "9001" }, "field nodes[0].admin_addr"},
		{"admin addr any host", func(c *Config) { c.Nodes[0].AdminAddr = ":9001" }, ""},
		{"buckets zero", func(c *Config) { c.Buckets = 0 }, "field buckets: 0: must be between 1 and 1048576"},
		{"buckets too many", func(c *Config) { c.Buckets = 1<<20 + 1 }, "field buckets"},
		{"replication", func(c *Config) { c.ReplicationDegree = len(c.Nodes) + 1 }, "must be between 1 and the number of nodes"},
		{"fsync", func(c *Config) { c.Persistence.Fsync = "sometimes" }, "persistence.fsync"},
		{"routing", func(c *Config) { c.Routing = "proxy" }, `field routing: "proxy": must be "forward" or "moved"`},
		{"routing moved", func(c *Config) { c.Routing = RoutingMoved }, ""},
		{"bulk len zero", func(c *Config) { c.Limits.MaxBulkLen = 0 }, "field limits.max_bulk_len"},
		{"bulk len too big", func(c *Config) { c.Limits.MaxBulkLen = 512<<20 + 1; c.Limits.MaxRequestLen = 1 << 30 }, "field limits.max_bulk_len"},
		{"max args", func(c *Config) { c.Limits.MaxArgs = 2 }, "field limits.max_args: 2: must be at least 3"},
		{"inline len", func(c *Config) { c.Limits.MaxInlineLen = 15 }, "field limits.max_inline_len"},
		{"request smaller than bulk", func(c *Config) { c.Limits.MaxRequestLen = c.Limits.MaxBulkLen - 1 }, "field limits.max_request_len"},
		{"request equal to bulk", func(c *Config) { c.Limits.MaxRequestLen = c.Limits.MaxBulkLen }, ""},
		{"max clients", func(c *Config) { c.Limits.MaxClients = 0 }, "field limits.max_clients"},
		{"idle negative", func(c *Config) { c.Limits.IdleTimeout.Duration = -time.Second }, "field limits.idle_timeout: must not be negative"},
		{"peer dial zero", func(c *Config) { c.Timeouts.PeerDial.Duration = 0 }, "field timeouts.peer_dial: must be positive"},
		{"peer request", func(c *Config) { c.Timeouts.PeerRequest.Duration = -1 }, "field timeouts.peer_request"},
		{"probe", func(c *Config) { c.Timeouts.Probe.Duration = 0 }, "field timeouts.probe: must be positive"},
		{"barrier", func(c *Config) { c.Timeouts.Barrier.Duration = 0 }, "field timeouts.barrier"},
		{"probe failures", func(c *Config) { c.Timeouts.ProbeFailures = 0 }, "field timeouts.probe_failures"},
		{"workload error is included", func(c *Config) { c.Workload.Threads = 0 }, "field workload.threads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate succeeded, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig()
	c.Buckets = 0
	c.Routing = "x"
	c.Limits.MaxClients = 0
	c.Workload.Pipeline = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, f := range []string{"field buckets", "field routing", "field limits.max_clients", "field workload.pipeline"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q is missing %q", err, f)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 4 {
		t.Errorf("%d problems reported, want 4:\n%v", n, err)
	}
}

func TestWorkloadValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Workload)
		want   string
	}{
		{"default", func(*Workload) {}, ""},
		{"key range empty", func(w *Workload) { w.KeyMin, w.KeyMax = 5, 5 }, "field workload.key_max: 5: must be greater than key_min (5)"},
		{"negative requests", func(w *Workload) { w.Requests = -1 }, "field workload.requests: -1"},
		{"nothing to run", func(w *Workload) { w.Requests = 0 }, "nothing to run"},
		{"duration instead of requests", func(w *Workload) { w.Requests = 0; w.Duration.Duration = time.Second }, ""},
		{"negative duration", func(w *Workload) { w.Duration.Duration = -time.Second }, "field workload.duration: must not be negative"},
		{"threads zero", func(w *Workload) { w.Threads = 0 }, "field workload.threads"},
		{"threads too many", func(w *Workload) { w.Threads = 10001 }, "field workload.threads"},
		{"value size", func(w *Workload) { w.ValueSize = 0 }, "field workload.value_size"},
		{"value size too big", func(w *Workload) { w.ValueSize = 64<<20 + 1 }, "field workload.value_size"},
		{"mix sum", func(w *Workload) { w.Mix = Mix{Get: 50, Put: 49} }, "get+put_if_absent+put+multi_put = 99, must be 100"},
		{"mix negative", func(w *Workload) { w.Mix = Mix{Get: 110, Put: -10} }, "percentages must not be negative"},
		{"multi put num unchecked without multi put", func(w *Workload) { w.MultiPutNum = 0 }, ""},
		{"multi put num", func(w *Workload) { w.Mix = Mix{Get: 50, MultiPut: 50}; w.MultiPutNum = 0 }, "field workload.multi_put_num"},
		{"pipeline", func(w *Workload) { w.Pipeline = 10001 }, "field workload.pipeline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Default().Workload
			tt.mutate(&w)
			err := w.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate succeeded, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate = %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{`"1.5s"`, 1500 * time.Millisecond},
		{`"0s"`, 0},
		{`"2h3m"`, 2*time.Hour + 3*time.Minute},
		{`250`, 250 * time.Millisecond},
		{`0.5`, 500 * time.Microsecond},
	} {
		var d Duration
		if err := json.Unmarshal([]byte(tt.in), &d); err != nil {
			t.Errorf("Unmarshal(%s): %v", tt.in, err)
			continue
		}
		if d.Duration != tt.want {
			t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, d.Duration, tt.want)
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back != d {
			t.Errorf("round trip of %v via %s = %v, %v", d, b, back, err)
		}
	}
	b, _ := json.Marshal(Duration{90 * time.Second})
	if string(b) != `"1m30s"` {
		t.Errorf("Marshal(90s) = %s", b)
	}
	for _, bad := range []string{`"1.5"`, `"fast"`, `true`, `{}`} {
		var d Duration
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", bad, d)
		}
	}
}

func TestMarshalledConfigParsesBack(t *testing.T) {
	c := validConfig()
	c.Limits.IdleTimeout.Duration = 5 * time.Minute
	c.Workload.Duration.Duration = 30 * time.Second
	c.Nodes[0].AdminAddr = "127.0.0.1:9001"
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal(c)): %v\n%s", err, b)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", back, c)
	}
}

func TestParseProperties(t *testing.T) {
	c, err := Parse([]byte(`{
		"node_ips": ["10.0.0.1", " 10.0.0.2 ", "::1"],
		"server_port": 5000,
		"dht_num_buckets": 64,
		"replication_degree": 1,
		"key_range": 100000,
		"num_requests": 7,
		"num_threads": 4,
		"multi_put_num": 5,
		"value_size": 100}`))
	if err != nil {
		t.Fatal(err)
	}
	wantNodes := []Node{{Name: "n1", Addr: "10.0.0.1:5000"}, {Name: "n2", Addr: "10.0.0.2:5000"}, {Name: "n3", Addr: "[::1]:5000"}}
	if !reflect.DeepEqual(c.Nodes, wantNodes) {
		t.Errorf("Nodes = %+v, want %+v", c.Nodes, wantNodes)
	}
	if c.Buckets != 64 || c.ReplicationDegree != 1 {
		t.Errorf("Buckets, ReplicationDegree = %d, %d", c.Buckets, c.ReplicationDegree)
	}
	w := c.Workload
	if w.KeyMin != 0 || w.KeyMax != 100000 || w.Requests != 7 || w.Threads != 4 || w.MultiPutNum != 5 || w.ValueSize != 100 {
		t.Errorf("Workload = %+v", w)
	}
	d := Default()
	if c.Limits != d.Limits || c.Timeouts != d.Timeouts || c.Routing != d.Routing || w.Mix != d.Workload.Mix {
		t.Errorf("properties changed settings they do not name: %+v", c)
	}
}

func TestParsePropertiesDefaultsAndAliases(t *testing.T) {
	c, err := Parse([]byte(`{"node_ips": ["h1"], "server_port": 7001, "num_operations": 42}`))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Buckets != d.Buckets || c.Workload.KeyMax != d.Workload.KeyMax || c.Workload.Threads != d.Workload.Threads {
		t.Errorf("absent properties did not keep defaults: %+v", c)
	}
	if c.Workload.Requests != 42 {
		t.Errorf("num_operations: Requests = %d, want 42", c.Workload.Requests)
	}
}

func TestParsePropertiesErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"port missing", `{"node_ips": ["h1"]}`, "field server_port: 0: must be between 1 and 65535"},
		{"port too big", `{"node_ips": ["h1"], "server_port": 70000}`, "field server_port: 70000"},
		{"port with no room for bus port", `{"node_ips": ["h1"], "server_port": 60000}`, "port must be a number between 1 and 55535"},
		{"no ips", `{"node_ips": [], "server_port": 7001}`, "field nodes: at least one node is required"},
		{"duplicate ips", `{"node_ips": ["h1", "h1"], "server_port": 7001}`, `field nodes[1].addr: "h1:7001" is also nodes[0].addr`},
		{"unknown key lists known keys", `{"node_ips": ["h1"], "server_port": 7001, "num_client": 3}`, `unknown field "num_client"`},
		{"wrong type", `{"node_ips": "h1", "server_port": 7001}`, "field node_ips: expected []string, got JSON string"},
		{"zero key range", `{"node_ips": ["h1"], "server_port": 7001, "key_range": 0}`, "field workload.key_max: 0"},
		{"replication", `{"node_ips": ["h1"], "server_port": 7001, "replication_degree": 3}`, "field replication_degree: 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
	_, err := Parse([]byte(`{"node_ips": ["h1"], "server_port": 7001, "bogus": 1}`))
	for _, k := range []string{"dht_num_buckets", "key_range", "node_ips", "num_operations", "num_requests", "num_threads", "server_port", "value_size"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("unknown-key error %v does not list known key %s", err, k)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(threeNodes+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil || len(c.Nodes) != 3 {
		t.Fatalf("Load(good) = %d nodes, %v", len(c.Nodes), err)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"nodes": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "field nodes") {
		t.Fatalf("Load(bad) = %v, want an error naming the file and the field", err)
	}

	_, err = Load(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestLoadExamples(t *testing.T) {
	for _, name := range []string{"cluster.json", "original.properties.json"} {
		path := filepath.Join("..", "..", "examples", name)
		if _, err := os.Stat(path); err != nil {
			t.Logf("skipping %s: %v", name, err)
			continue
		}
		c, err := Load(path)
		if err != nil {
			t.Errorf("Load(%s): %v", path, err)
			continue
		}
		if len(c.Nodes) == 0 {
			t.Errorf("%s: no nodes", path)
		}
	}
}

func TestLocal(t *testing.T) {
	c, err := Local(3, 7001)
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{{Name: "n1", Addr: "127.0.0.1:7001"}, {Name: "n2", Addr: "127.0.0.1:7002"}, {Name: "n3", Addr: "127.0.0.1:7003"}}
	if !reflect.DeepEqual(c.Nodes, want) {
		t.Fatalf("Nodes = %+v", c.Nodes)
	}
	if _, err := Local(0, 7001); err == nil {
		t.Error("Local(0) succeeded")
	}
	if _, err := Local(2, 55535); err == nil {
		t.Error("Local(2, 55535) succeeded, but its second port leaves no room for the bus port")
	}
}

func TestNodeLookup(t *testing.T) {
	c := validConfig()
	n, err := c.Node("n2")
	if err != nil || n != c.Nodes[1] {
		t.Fatalf("Node(n2) = %+v, %v", n, err)
	}
	_, err = c.Node("n9")
	if err == nil || !strings.Contains(err.Error(), `no node "n9"`) || !strings.Contains(err.Error(), "nodes: n1, n2") {
		t.Fatalf("Node(n9) = %v", err)
	}
}

func TestNodeID(t *testing.T) {
	hex40 := regexp.MustCompile(`^[0-9a-f]{40}$`)
	a, b := Node{Name: "n1", Addr: "h:1"}, Node{Name: "n1", Addr: "other:2"}
	if !hex40.MatchString(a.ID()) {
		t.Fatalf("ID = %q, want 40 hex digits", a.ID())
	}
	if a.ID() != b.ID() {
		t.Error("ID depends on more than the name")
	}
	if a.ID() == (Node{Name: "n2"}).ID() {
		t.Error("two names share an ID")
	}
}

func TestDigest(t *testing.T) {
	base := validConfig()
	d := base.Digest()
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(d) {
		t.Fatalf("Digest = %q, want 16 hex digits", d)
	}
	same := []func(*Config){
		func(c *Config) { c.Buckets = 7 },
		func(c *Config) { c.Limits.MaxArgs = 10 },
		func(c *Config) { c.Timeouts.Probe.Duration = time.Hour },
		func(c *Config) { c.Workload.Threads = 99 },
		func(c *Config) { c.Nodes[0].AdminAddr = "127.0.0.1:9999" },
	}
	for i, m := range same {
		c := validConfig()
		m(&c)
		if c.Digest() != d {
			t.Errorf("same[%d]: digest changed by a setting nodes need not agree on", i)
		}
	}
	differ := []func(*Config){
		func(c *Config) { c.Routing = RoutingMoved },
		func(c *Config) { c.ReplicationDegree = 2 },
		func(c *Config) { c.Nodes[1].Addr = "127.0.0.1:7009" },
		func(c *Config) { c.Nodes[1].Name = "x" },
		func(c *Config) { c.Nodes[0], c.Nodes[1] = c.Nodes[1], c.Nodes[0] },
		func(c *Config) { c.Nodes = c.Nodes[:1] },
	}
	for i, m := range differ {
		c := validConfig()
		m(&c)
		if c.Digest() == d {
			t.Errorf("differ[%d]: digest did not change", i)
		}
	}
}

func ExampleParse() {
	c, err := Parse([]byte(`{"node_ips": ["10.0.0.1", "10.0.0.2"], "server_port": 7001}`))
	if err != nil {
		panic(err)
	}
	for _, n := range c.Nodes {
		fmt.Println(n.Name, n.Addr)
	}
	// Output:
	// n1 10.0.0.1:7001
	// n2 10.0.0.2:7001
}
