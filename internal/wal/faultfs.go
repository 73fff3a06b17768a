package wal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sync"
)

// FaultFS is an in-memory FS for tests that models what a crash leaves on disk: each
// file keeps what was synced apart from what was only written, and Crash returns the
// disk as a machine crash would leave it (what was not synced is lost, or torn, or
// garbage). It can also fail writes part way and flip bits. It is safe for
// concurrent use.
type FaultFS struct {
	mu    sync.Mutex
	files map[string]*faultFile
	dirs  map[string]bool
	// shortWrite, when > 0, makes the next write stop after that many bytes and fail.
	shortWrite int
}

type faultFile struct {
	data   []byte // what a reader sees
	synced []byte // what survives a crash
	// durable is set once the directory entry survives a crash (the directory was
	// synced after the file was created).
	durable bool
}

// NewFaultFS returns an empty FaultFS.
func NewFaultFS() *FaultFS {
	return &FaultFS{files: map[string]*faultFile{}, dirs: map[string]bool{}}
}

// ErrInjected is the error of an injected fault.
var ErrInjected = errors.New("wal: injected fault")

// FailNextWrite makes the next write write only n bytes and then fail.
func (f *FaultFS) FailNextWrite(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shortWrite = n
}

// Crash returns the disk as a crash of the machine would leave it: each file holds
// what was synced and then, chosen by rng, nothing more, a prefix of what was written
// after (a torn write) or that many bytes of garbage. Files whose creation was never
// made durable are gone. f itself is left as it was.
func (f *FaultFS) Crash(rng *rand.Rand) *FaultFS {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := NewFaultFS()
	for d := range f.dirs {
		out.dirs[d] = true
	}
	for name, ff := range f.files {
		if !ff.durable {
			continue
		}
		data := slices.Clone(ff.synced)
		if extra := len(ff.data) - len(ff.synced); extra > 0 && rng != nil {
			switch rng.IntN(3) {
			case 1:
				data = append(data, ff.data[len(ff.synced):len(ff.synced)+rng.IntN(extra+1)]...)
			case 2:
				junk := make([]byte, rng.IntN(extra+1))
				for i := range junk {
					junk[i] = byte(rng.IntN(256))
				}
				data = append(data, junk...)
			}
		}
		out.files[name] = &faultFile{data: data, synced: slices.Clone(data), durable: true}
	}
	return out
}

// FlipBit flips one bit of a file's content (synced or not).
func (f *FaultFS) FlipBit(name string, offset int64, bit uint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, ok := f.files[path.Clean(name)]
	if !ok || offset >= int64(len(ff.data)) {
		return fmt.Errorf("flip %s at %d: no such byte", name, offset)
	}
	ff.data[offset] ^= 1 << bit
	if offset < int64(len(ff.synced)) {
		ff.synced[offset] = ff.data[offset]
	}
	return nil
}

// Truncate cuts a file (synced content too) to size bytes, as a crash in the middle
// of a write leaves it.
func (f *FaultFS) Truncate(name string, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, ok := f.files[path.Clean(name)]
	if !ok || size > int64(len(ff.data)) {
		return fmt.Errorf("truncate %s to %d: no such file or too short", name, size)
	}
	ff.data = ff.data[:size]
	ff.synced = ff.synced[:min(int64(len(ff.synced)), size)]
	return nil
}

// Size returns the size of a file.
func (f *FaultFS) Size(name string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ff, ok := f.files[path.Clean(name)]; ok {
		return int64(len(ff.data))
	}
	return -1
}

// OpenFile opens a file.
func (f *FaultFS) OpenFile(name string, flag int, _ os.FileMode) (File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = path.Clean(name)
	ff, ok := f.files[name]
	if !ok {
		if flag&os.O_CREATE == 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		ff = &faultFile{}
		f.files[name] = ff
	}
	if flag&os.O_TRUNC != 0 {
		ff.data = ff.data[:0]
	}
	h := &faultHandle{fs: f, name: name, f: ff}
	if flag&os.O_APPEND != 0 {
		h.off = int64(len(ff.data))
	}
	return h, nil
}

// ReadDir lists the files of dir.
func (f *FaultFS) ReadDir(dir string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir = path.Clean(dir)
	var names []string
	for name := range f.files {
		if path.Dir(name) == dir {
			names = append(names, path.Base(name))
		}
	}
	slices.Sort(names)
	return names, nil
}

// Remove deletes a file.
func (f *FaultFS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = path.Clean(name)
	if _, ok := f.files[name]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(f.files, name)
	return nil
}

// Rename renames a file; the new name survives a crash once the directory is synced.
func (f *FaultFS) Rename(oldname, newname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	oldname, newname = path.Clean(oldname), path.Clean(newname)
	ff, ok := f.files[oldname]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	delete(f.files, oldname)
	f.files[newname] = &faultFile{data: ff.data, synced: ff.synced}
	return nil
}

// MkdirAll records a directory.
func (f *FaultFS) MkdirAll(dir string, _ os.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dirs[path.Clean(dir)] = true
	return nil
}

// SyncDir makes the creation of dir's files durable.
func (f *FaultFS) SyncDir(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir = path.Clean(dir)
	for name, ff := range f.files {
		if path.Dir(name) == dir {
			ff.durable = true
		}
	}
	return nil
}

type faultHandle struct {
	fs     *FaultFS
	name   string
	f      *faultFile
	off    int64
	closed bool
}

func (h *faultHandle) Read(p []byte) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.off >= int64(len(h.f.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.f.data[h.off:])
	h.off += int64(n)
	return n, nil
}

func (h *faultHandle) Write(p []byte) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return 0, os.ErrClosed
	}
	var err error
	if h.fs.shortWrite > 0 {
		p = p[:min(len(p), h.fs.shortWrite)]
		h.fs.shortWrite = 0
		err = ErrInjected
	}
	if grow := h.off + int64(len(p)) - int64(len(h.f.data)); grow > 0 {
		h.f.data = append(h.f.data, make([]byte, grow)...)
	}
	copy(h.f.data[h.off:], p)
	h.off += int64(len(p))
	return len(p), err
}

func (h *faultHandle) Sync() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	h.f.synced = slices.Clone(h.f.data)
	return nil
}

func (h *faultHandle) Truncate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if size < int64(len(h.f.data)) {
		h.f.data = h.f.data[:size]
	}
	return nil
}

func (h *faultHandle) Seek(offset int64, whence int) (int64, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	switch whence {
	case io.SeekStart:
		h.off = offset
	case io.SeekCurrent:
		h.off += offset
	case io.SeekEnd:
		h.off = int64(len(h.f.data)) + offset
	}
	return h.off, nil
}

func (h *faultHandle) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	h.closed = true
	return nil
}
