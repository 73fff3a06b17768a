// Package srcwatch lets go test's cache see the sources of the dht binary in tests
// that build and run that binary themselves. go test answers a test package from
// its cache while the test binary and the files the test opened are unchanged; the
// sources a test hands to another go build are neither, unless the test opens them.
package srcwatch

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Open opens (and reads nothing from) the files of the module at root that the dht
// binary is built from: go.mod, go.sum and every Go file under cmd and internal.
// Called from a running test, it makes go test run that test again once any of
// them changed.
func Open(root string) error {
	for _, name := range []string{"go.mod", "go.sum"} {
		if err := touch(filepath.Join(root, name)); err != nil {
			return err
		}
	}
	for _, dir := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case d.IsDir() && d.Name() == "testdata":
				return filepath.SkipDir
			case d.IsDir():
				return touch(path) // a file added or removed changes the listing
			case strings.HasSuffix(path, ".go"):
				return touch(path)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("srcwatch: %w", err)
		}
	}
	return nil
}

func touch(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("srcwatch: %w", err)
	}
	return f.Close()
}
