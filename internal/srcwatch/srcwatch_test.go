package srcwatch

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOpen(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum", "cmd/dht/main.go", "internal/a/a.go", "internal/a/testdata/x.go"} {
		path := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("package x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Open(root); err != nil {
		t.Fatalf("Open of a module: %v", err)
	}
	if err := os.Remove(filepath.Join(root, "go.sum")); err != nil {
		t.Fatal(err)
	}
	if err := Open(root); err == nil {
		t.Error("Open of a module without go.sum: no error")
	}
	if err := Open(filepath.Join(root, "nowhere")); err == nil {
		t.Error("Open of no module: no error")
	}
}
