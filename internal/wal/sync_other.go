//go:build !linux

package wal

// datasync makes what was written to f durable.
func datasync(f File) error { return f.Sync() }
