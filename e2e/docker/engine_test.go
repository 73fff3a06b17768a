package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/srcwatch"
)

// labelKey labels every container, network and image the tests create, so that
// leftovers of a killed test binary can be found (see the package doc).
const labelKey = "dht.e2e"

// cleanupTimeout bounds each docker command run while cleaning up.
const cleanupTimeout = 30 * time.Second

// engine runs the docker CLI against the local Docker engine.
type engine struct {
	bin string
}

// run runs docker with args and returns its trimmed standard output. The error
// carries the command line and docker's standard error.
func (e engine) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// runCombined runs docker with args and returns its standard output and
// standard error interleaved, as docker logs needs.
func (e engine) runCombined(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// must runs docker with args under the test's context and fails the test on error.
func (e engine) must(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := e.run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cleanup registers a docker command that runs when the test ends, whether it
// passed or not. A failure is reported but does not stop the other cleanups.
func (e engine) cleanup(t *testing.T, args ...string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if _, err := e.run(ctx, args...); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// requireEngine returns an engine if a Docker engine answers. Otherwise it skips
// the test with the reason, or fails it when CI=true: CI must run these tests.
func requireEngine(t *testing.T) engine {
	t.Helper()
	if testing.Short() {
		t.Skip("container tests do not run in -short mode")
	}
	bin, err := exec.LookPath("docker")
	if err == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		_, err = engine{bin: bin}.run(ctx, "info", "--format", "{{.ServerVersion}}")
	}
	if err != nil {
		msg := fmt.Sprintf("container tests need a Docker engine and none answers: %v", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: failing rather than skipping)")
		}
		t.Skip(msg)
	}
	return engine{bin: bin}
}

// uniquePrefix names one test's containers, network and image: "dhte2e-",
// the (sub)test's name reduced to what docker accepts, and random hex, so
// runs of the same test at the same time (two checkouts, two users) do not
// collide.
func uniquePrefix(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(path.Base(t.Name()))
	name = regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(name, "-")
	name = strings.Trim(name, "-")
	if len(name) > 24 {
		name = name[:24]
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "dhte2e-" + name + "-" + hex.EncodeToString(b[:])
}

// buildImage builds the dht binary with CGO_ENABLED=0 and the image of
// deploy/Dockerfile around it, tagged name:test, and removes the image when
// the test ends. It returns the image reference.
func (e engine) buildImage(t *testing.T, name string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the dht binary needs the go command: %v", err)
	}
	dockerfile, err := filepath.Abs(filepath.Join("..", "..", "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// So that go test's cache runs these tests again once what the image is built
	// from changed.
	if err := srcwatch.Open(filepath.Join("..", "..")); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	buildCtx := t.TempDir()
	if err := os.Mkdir(filepath.Join(buildCtx, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A bound against a hung build only: a cold build cache on a busy machine
	// takes minutes.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", filepath.Join(buildCtx, "dht"), "github.com/dhtkv/dht/cmd/dht")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dht: %v\n%s", err, out)
	}
	image := name + ":test"
	e.must(t, "build", "--quiet", "--label", labelKey+"="+name, "-f", dockerfile, "-t", image, buildCtx)
	e.cleanup(t, "rmi", "--force", image)
	return image
}
