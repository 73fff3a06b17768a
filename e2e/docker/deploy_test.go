package docker

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/tlsconf"
)

// deployDir is the repository's deploy/ directory, seen from this package.
const deployDir = "../../deploy"

// readDeploy returns the contents of a file under deploy/.
func readDeploy(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestComposeMatchesConfig checks that deploy/compose.yaml and
// deploy/cluster.json describe the same cluster: every node of the config
// has a service with its id, its pinned address inside the network's subnet,
// a bench client beside it, and ports in compose.ports.yaml. Where a compose tool is installed, it also
// checks that the tool accepts the files.
func TestComposeMatchesConfig(t *testing.T) {
	cfg, err := config.Load(filepath.Join(deployDir, "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	compose, ports := readDeploy(t, "compose.yaml"), readDeploy(t, "compose.ports.yaml")
	m := regexp.MustCompile(`subnet:\s*(\S+)`).FindStringSubmatch(compose)
	if m == nil {
		t.Fatal("compose.yaml: no subnet")
	}
	subnet, err := netip.ParsePrefix(m[1])
	if err != nil {
		t.Fatalf("compose.yaml: subnet: %v", err)
	}
	for i, n := range cfg.Nodes {
		ap, err := netip.ParseAddrPort(n.Addr)
		if err != nil {
			t.Errorf("cluster.json: node %s: addr %q: %v", n.Name, n.Addr, err)
			continue
		}
		if !subnet.Contains(ap.Addr()) {
			t.Errorf("cluster.json: node %s at %s is outside the compose network %s", n.Name, ap.Addr(), subnet)
		}
		for _, want := range []string{
			fmt.Sprintf("\n  %s:\n", n.Name),
			"ipv4_address: " + ap.Addr().String() + "}",
			fmt.Sprintf("serve, --config, /etc/dht/cluster.json, --node, %s,", n.Name),
			fmt.Sprintf("network_mode: \"service:%s\"", n.Name),
			fmt.Sprintf("bench, --config, /etc/dht/cluster.json, --node, %s,", n.Name),
		} {
			if !strings.Contains(compose, want) {
				t.Errorf("compose.yaml has no %q for node %s of cluster.json", want, n.Name)
			}
		}
		want := fmt.Sprintf("\n  %s:\n    ports: [\"127.0.0.1:%d:%d\", \"127.0.0.1:%d:%d\"]\n", n.Name, respPort+i, respPort, adminPort+i, adminPort)
		if !strings.Contains(ports, want) {
			t.Errorf("compose.ports.yaml has no %q for node %s of cluster.json", want, n.Name)
		}
	}

	// Nodes and bench clients get the password from the environment, and compose
	// refuses to start without it.
	if n := strings.Count(compose, "DHT_PASSWORD: ${DHT_PASSWORD:?"); n != 2 {
		t.Errorf("compose.yaml sets DHT_PASSWORD, required, in %d places; want 2 (x-node and x-bench)", n)
	}

	tool := composeTool()
	if tool == nil {
		t.Log("no docker compose or docker-compose installed: compose.yaml checked against cluster.json only")
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	args := append(tool[1:], "-f", filepath.Join(deployDir, "compose.yaml"), "-f", filepath.Join(deployDir, "compose.ports.yaml"), "config", "--quiet")
	check := exec.CommandContext(ctx, tool[0], args...)
	check.Env = append(os.Environ(), "DHT_PASSWORD=test")
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("%s rejects compose.yaml: %v\n%s", strings.Join(tool, " "), err, out)
	}
}

// TestComposeTLSMatchesConfig checks that deploy/cluster.tls.json is
// deploy/cluster.json with a tls section, and that compose.tls.yaml mounts it
// and the certificates into every service of compose.yaml.
func TestComposeTLSMatchesConfig(t *testing.T) {
	cfg, err := config.Load(filepath.Join(deployDir, "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := config.Load(filepath.Join(deployDir, "cluster.tls.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !tlsCfg.TLS.Enabled() {
		t.Fatal("cluster.tls.json has no tls section")
	}
	withoutTLS := tlsCfg
	withoutTLS.TLS = config.TLS{}
	if a, b := fmt.Sprintf("%+v", cfg), fmt.Sprintf("%+v", withoutTLS); a != b {
		t.Errorf("cluster.tls.json is not cluster.json with a tls section:\ncluster.json:     %s\ncluster.tls.json: %s", a, b)
	}
	overlay := readDeploy(t, "compose.tls.yaml")
	for _, want := range []string{"./cluster.tls.json:/etc/dht/cluster.json:ro", "./tls:" + filepath.Dir(tlsCfg.TLS.CAFile) + ":ro"} {
		if !strings.Contains(overlay, want) {
			t.Errorf("compose.tls.yaml does not mount %q", want)
		}
	}
	for i := range cfg.Nodes {
		for _, svc := range []string{fmt.Sprintf("n%d", i+1), fmt.Sprintf("bench%d", i+1)} {
			if !strings.Contains(overlay, "\n  "+svc+": *tls\n") {
				t.Errorf("compose.tls.yaml does not give %s TLS", svc)
			}
		}
	}
	tool := composeTool()
	if tool == nil {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	args := append(tool[1:], "-f", filepath.Join(deployDir, "compose.yaml"), "-f", filepath.Join(deployDir, "compose.tls.yaml"), "config", "--quiet")
	check := exec.CommandContext(ctx, tool[0], args...)
	check.Env = append(os.Environ(), "DHT_PASSWORD=test")
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("%s rejects compose.yaml with compose.tls.yaml: %v\n%s", strings.Join(tool, " "), err, out)
	}
}

// TestKubernetesTLSMatchesConfig checks that deploy/k8s/tls/cluster.json is
// k8s/cluster/cluster.json with a tls section, and, where kubectl is installed,
// that the overlay renders (with certificates made for the test) into a
// StatefulSet that mounts the Secret dht-tls where that section looks.
func TestKubernetesTLSMatchesConfig(t *testing.T) {
	cfg, err := config.Load(filepath.Join(deployDir, "k8s", "cluster", "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := config.Load(filepath.Join(deployDir, "k8s", "tls", "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	withoutTLS := tlsCfg
	withoutTLS.TLS = config.TLS{}
	if !tlsCfg.TLS.Enabled() || fmt.Sprintf("%+v", cfg) != fmt.Sprintf("%+v", withoutTLS) {
		t.Fatalf("k8s/tls/cluster.json is not k8s/cluster/cluster.json with a tls section:\n%+v\n%+v", cfg, tlsCfg)
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Log("no kubectl installed: the overlay is not rendered")
		return
	}
	// The overlay needs ../cluster and its certificates: render a copy.
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(deployDir, "k8s"))); err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "tls", "certs")
	if err := os.RemoveAll(certs); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsconf.GenerateLocal(certs); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), kubectl, "kustomize", filepath.Join(dir, "tls")).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/k8s/tls: %v\n%s", err, out)
	}
	rendered := string(out)
	for _, want := range []string{
		"- mountPath: " + filepath.Dir(tlsCfg.TLS.CertFile) + "\n          name: tls\n",
		"secret:\n          secretName: dht-tls-",
		`"ca_file": "` + tlsCfg.TLS.CAFile + `"`,
	} {
		if !strings.Contains(rendered, want) {
			t.Errorf("kubectl kustomize deploy/k8s/tls has no %q", want)
		}
	}
	for _, f := range []string{tlsCfg.TLS.CertFile, tlsCfg.TLS.KeyFile, tlsCfg.TLS.CAFile} {
		if !strings.Contains(rendered, "\n  "+filepath.Base(f)+": ") {
			t.Errorf("the Secret dht-tls has no %s", filepath.Base(f))
		}
	}
}

// composeTool returns the command line of an installed compose tool, the
// docker CLI plugin first, or nil.
func composeTool() []string {
	if bin, err := exec.LookPath("docker"); err == nil && exec.Command(bin, "compose", "version").Run() == nil {
		return []string{bin, "compose"}
	}
	if bin, err := exec.LookPath("docker-compose"); err == nil {
		return []string{bin}
	}
	return nil
}

// TestKubernetesMatchesConfig checks that deploy/k8s/cluster/cluster.json
// names the StatefulSet's pods and their DNS names under the headless
// Service, and that the StatefulSet runs one pod and the bench Job one
// client per node.
func TestKubernetesMatchesConfig(t *testing.T) {
	cfg, err := config.Load(filepath.Join(deployDir, "k8s", "cluster", "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range cfg.Nodes {
		pod := fmt.Sprintf("dht-%d", i)
		if n.Name != pod {
			t.Errorf("k8s/cluster/cluster.json: node %d is %q, want the pod name %q", i, n.Name, pod)
		}
		if want := fmt.Sprintf("%s.dht:%d", pod, respPort); n.Addr != want {
			t.Errorf("k8s/cluster/cluster.json: node %s addr %q, want the pod's DNS name %q", n.Name, n.Addr, want)
		}
	}
	sts := readDeploy(t, filepath.Join("k8s", "cluster", "statefulset.yaml"))
	for _, want := range []string{
		fmt.Sprintf("replicas: %d\n", len(cfg.Nodes)),
		"serviceName: dht\n",
		"podManagementPolicy: Parallel\n",
		"--node=$(POD_NAME)",
		"- name: DHT_PASSWORD\n              valueFrom:\n                secretKeyRef:\n                  name: dht-auth\n",
	} {
		if !strings.Contains(sts, want) {
			t.Errorf("k8s/cluster/statefulset.yaml has no %q", want)
		}
	}
	svc := readDeploy(t, filepath.Join("k8s", "cluster", "service.yaml"))
	for _, want := range []string{"name: dht\n", "clusterIP: None\n", "publishNotReadyAddresses: true\n"} {
		if !strings.Contains(svc, want) {
			t.Errorf("k8s/cluster/service.yaml has no %q", want)
		}
	}
	job := readDeploy(t, filepath.Join("k8s", "bench", "job.yaml"))
	for _, want := range []string{
		fmt.Sprintf("completions: %d\n", len(cfg.Nodes)),
		fmt.Sprintf("parallelism: %d\n", len(cfg.Nodes)),
		"completionMode: Indexed\n",
		"--node=dht-$(COMPLETION_INDEX)",
		"- name: DHT_PASSWORD\n              valueFrom:\n                secretKeyRef:\n                  name: dht-auth\n",
	} {
		if !strings.Contains(job, want) {
			t.Errorf("k8s/bench/job.yaml has no %q", want)
		}
	}
}
