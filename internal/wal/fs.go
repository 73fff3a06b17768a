package wal

import (
	"fmt"
	"io"
	"os"
)

// FS is the file layer the log works through: the operating system's files, or in
// tests one that tears writes, loses what was not synced and flips bits.
type FS interface {
	// OpenFile opens a file as os.OpenFile does.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// ReadDir lists the names of the files in dir.
	ReadDir(dir string) ([]string, error)
	// Remove deletes a file.
	Remove(name string) error
	// Rename renames a file, replacing newname.
	Rename(oldname, newname string) error
	// MkdirAll creates dir and its parents.
	MkdirAll(dir string, perm os.FileMode) error
	// SyncDir makes the directory's entries (files created, renamed, removed)
	// durable.
	SyncDir(dir string) error
}

// File is an open file of an FS.
type File interface {
	io.Reader
	io.Writer
	io.Closer
	// Sync makes what was written durable.
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Seek sets the offset of the next Read or Write.
	Seek(offset int64, whence int) (int64, error)
}

// OSFS is the operating system's file layer.
type OSFS struct{}

// OpenFile opens a file.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	return os.OpenFile(name, flag, perm)
}

// ReadDir lists the names of the files in dir.
func (OSFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Remove deletes a file.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename renames a file.
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// MkdirAll creates dir and its parents.
func (OSFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }

// SyncDir fsyncs the directory.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
