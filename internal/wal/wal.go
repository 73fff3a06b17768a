// Package wal is a node's write-ahead log: a directory of segment files holding
// records one after another, each length-prefixed and checksummed.
//
// A segment file starts with an 8-byte magic; each record is
//
//	length of the payload (4 bytes LE) | CRC-32C of the payload (4 bytes LE) | payload
//
// Segments are named by a sequence number and read in that order. The log is written
// by one goroutine at a time (Log is not safe for concurrent use): Append buffers a
// record, Flush hands the buffer to the operating system, Sync makes it durable.
// A segment is synced before the next one is started, so only the last segment can
// end in a torn write (a crash in the middle of the writes since the last sync, which
// may leave a part of them, zeros or any other bytes behind): damage in the last
// segment that no intact record follows is such a tail, and Replay cuts it off and
// says so. Damage anywhere else is an error naming the file and the offset: the log
// never replays past damage silently.
//
// With Options.Preallocate the file of the segment being written is kept filled with
// zeros ahead of what was appended, so that a sync need not write the file's size as
// well as the records (the log syncs with fdatasync where the system has it). Zeros
// from the end of the last record to the end of the last segment are that room, not
// damage; a segment that is not the last is cut to its records when the next starts.
// Writes that were not synced may reach the disk in any order, so a crash can leave
// room no write reached followed by a later write: since a sync makes everything
// written before it durable, a record header of zeros in the last segment comes
// after everything synced, and what follows it is cut off as a torn tail.
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// magic opens every segment file.
const magic = "DHTWAL1\n"

// headerLen is the size of a record's header.
const headerLen = 8

// MaxRecord bounds a record's payload; a header that claims more is damage.
const MaxRecord = 1 << 30

const segmentSuffix = ".wal"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// CorruptError reports damage in the middle of the log.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: %s is damaged at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Options configure a Log.
type Options struct {
	// FS is the file layer; nil means the operating system's.
	FS FS
	// Logger receives what recovery finds; nil discards it.
	Logger *slog.Logger
	// Preallocate, if positive, is how many bytes of zeros the segment being
	// written is extended by whenever appends reach its end (see the package doc).
	Preallocate int64
}

// Log is an open write-ahead log.
type Log struct {
	dir  string
	fs   FS
	log  *slog.Logger
	segs []uint64 // every segment, oldest first; the last is written to

	f    File
	w    *bufio.Writer
	size int64 // of the current segment, what was appended
	// room is the size of the current segment's file, zeros past size included;
	// prealloc is Options.Preallocate.
	room, prealloc int64
	total          int64 // of every segment
	sizes          map[uint64]int64
	header         [headerLen]byte
}

// Open opens the log in dir, creating the directory if needed. Nothing can be
// appended before Replay has read what is there.
func Open(dir string, opts Options) (*Log, error) {
	l := &Log{dir: dir, fs: opts.FS, log: opts.Logger, sizes: map[uint64]int64{}, prealloc: opts.Preallocate}
	if l.fs == nil {
		l.fs = OSFS{}
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	names, err := l.fs.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	for _, n := range names {
		id, ok := parseSegmentName(n)
		if ok {
			l.segs = append(l.segs, id)
		}
	}
	slices.Sort(l.segs)
	return l, nil
}

func segmentName(id uint64) string { return fmt.Sprintf("%020d%s", id, segmentSuffix) }

func parseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(base) != 20 {
		return 0, false
	}
	id, err := strconv.ParseUint(base, 10, 64)
	return id, err == nil
}

func (l *Log) path(id uint64) string { return filepath.Join(l.dir, segmentName(id)) }

// Replay reads every record, oldest first, and hands its payload to fn (the slice is
// valid only during the call); it stops at fn's first error. A torn record at the
// end of the last segment is cut off. Then the log is open for appending, at the end
// of the last segment.
func (l *Log) Replay(fn func(segment uint64, rec []byte) error) error {
	for i, id := range l.segs {
		last := i == len(l.segs)-1
		end, err := l.replaySegment(id, last, fn)
		if err != nil {
			return err
		}
		l.sizes[id] = end
		l.total += end
	}
	if len(l.segs) == 0 {
		return l.create(1)
	}
	id := l.segs[len(l.segs)-1]
	f, err := l.fs.OpenFile(l.path(id), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	room, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = f.Seek(l.sizes[id], io.SeekStart)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("wal: %w", err)
	}
	l.f, l.size, l.room = f, l.sizes[id], room
	l.w = bufio.NewWriterSize(f, 1<<20)
	return nil
}

// replaySegment reads one segment and returns the offset its valid records end at.
func (l *Log) replaySegment(id uint64, last bool, fn func(uint64, []byte) error) (int64, error) {
	name := l.path(id)
	f, err := l.fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var m [len(magic)]byte
	if n, err := io.ReadFull(r, m[:]); err != nil || string(m[:]) != magic {
		if last && (n == 0 || strings.HasPrefix(magic, string(m[:n]))) {
			// Created, and the crash came before its header was on disk.
			return 0, l.cutTail(name, 0, int64(n), "segment header incomplete", l.rewriteHeader)
		}
		return 0, &CorruptError{File: name, Offset: 0, Reason: "not a segment of this log (bad magic)"}
	}
	off := int64(len(magic))
	var buf []byte
	var hdr [headerLen]byte
	for {
		n, err := io.ReadFull(r, hdr[:])
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return l.damaged(name, last, off, fmt.Sprintf("record header incomplete (%d of %d bytes)", n, headerLen))
		}
		size := binary.LittleEndian.Uint32(hdr[0:4])
		sum := binary.LittleEndian.Uint32(hdr[4:8])
		if last && size == 0 && sum == 0 {
			// A sync makes everything written before it durable, so the zeros of
			// room no write reached come after everything synced: what follows
			// them is the rest of a torn tail, or more room.
			zero, err := zerosToEnd(r)
			if err != nil {
				return 0, fmt.Errorf("wal: %s: %w", name, err)
			}
			if zero {
				return off, nil
			}
			rest, err := l.readFrom(name, off)
			if err != nil {
				return 0, err
			}
			return off, l.cutTail(name, off, int64(len(rest)), "writes past the room no write reached", nil)
		}
		if size == 0 || size > MaxRecord {
			return l.damaged(name, last, off, fmt.Sprintf("record length %d out of range", size))
		}
		if cap(buf) < int(size) {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		n, err = io.ReadFull(r, buf)
		if err != nil {
			return l.damaged(name, last, off, fmt.Sprintf("record of %d bytes incomplete (%d there)", size, n))
		}
		if crc32.Checksum(buf, crcTable) != sum {
			return l.damaged(name, last, off, "checksum mismatch")
		}
		if err := fn(id, buf); err != nil {
			return 0, err
		}
		off += headerLen + int64(size)
	}
}

// zerosToEnd reads r to its end and reports whether it held only zeros.
func zerosToEnd(r io.Reader) (bool, error) {
	buf := make([]byte, 64<<10)
	zero := true
	for {
		n, err := r.Read(buf)
		if zero && slices.ContainsFunc(buf[:n], func(b byte) bool { return b != 0 }) {
			zero = false
		}
		if err == io.EOF {
			return zero, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// damaged handles the damage found at off in a segment: at the end of the last
// segment, where no intact record follows it, it is a torn write (a crash in the
// middle of the last writes, which may leave any bytes behind), cut off; anywhere
// else it is an error.
func (l *Log) damaged(name string, last bool, off int64, reason string) (int64, error) {
	if !last {
		return 0, &CorruptError{File: name, Offset: off, Reason: reason}
	}
	rest, err := l.readFrom(name, off)
	if err != nil {
		return 0, err
	}
	if at, ok := intactRecord(rest[min(1, len(rest)):]); ok {
		return 0, &CorruptError{File: name, Offset: off,
			Reason: fmt.Sprintf("%s, and an intact record follows at offset %d", reason, off+1+int64(at))}
	}
	return off, l.cutTail(name, off, int64(len(rest)), reason, nil)
}

// readFrom reads a file from offset off to its end.
func (l *Log) readFrom(name string, off int64) ([]byte, error) {
	f, err := l.fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	return b, nil
}

// intactRecord returns the first offset in b at which a whole record with a valid
// checksum starts.
func intactRecord(b []byte) (int, bool) {
	for i := 0; i+headerLen < len(b); i++ {
		size := binary.LittleEndian.Uint32(b[i:])
		if size == 0 || size > MaxRecord || int64(size) > int64(len(b)-i-headerLen) {
			continue
		}
		payload := b[i+headerLen : i+headerLen+int(size)]
		if crc32.Checksum(payload, crcTable) == binary.LittleEndian.Uint32(b[i+4:]) {
			return i, true
		}
	}
	return 0, false
}

// cutTail truncates a torn tail of n bytes at off and logs it; then, if set, fix
// repairs what is left.
func (l *Log) cutTail(name string, off, n int64, why string, fix func(string) error) error {
	l.log.Warn("cutting off a torn write at the end of the log (a crash during a write)",
		"file", name, "offset", off, "bytes", n, "why", why)
	f, err := l.fs.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if err := f.Truncate(off); err != nil {
		f.Close()
		return fmt.Errorf("wal: cutting %s at %d: %w", name, off, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("wal: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if fix != nil {
		return fix(name)
	}
	return nil
}

// rewriteHeader writes the magic of a segment whose header was torn.
func (l *Log) rewriteHeader(name string) error {
	f, err := l.fs.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(magic)); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// create starts segment id and makes it the one written to.
func (l *Log) create(id uint64) error {
	name := l.path(id)
	f, err := l.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if _, err := f.Write([]byte(magic)); err != nil {
		f.Close()
		return fmt.Errorf("wal: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("wal: %w", err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		f.Close()
		return fmt.Errorf("wal: %w", err)
	}
	l.segs = append(l.segs, id)
	l.f, l.size, l.room = f, int64(len(magic)), int64(len(magic))
	l.sizes[id] = l.size
	l.total += l.size
	l.w = bufio.NewWriterSize(f, 1<<20)
	return nil
}

// Append adds a record to the current segment's buffer.
func (l *Log) Append(rec []byte) error {
	if l.w == nil {
		return errors.New("wal: append before replay")
	}
	if len(rec) == 0 || len(rec) > MaxRecord {
		return fmt.Errorf("wal: record of %d bytes (1 to %d allowed)", len(rec), MaxRecord)
	}
	binary.LittleEndian.PutUint32(l.header[0:4], uint32(len(rec)))
	binary.LittleEndian.PutUint32(l.header[4:8], crc32.Checksum(rec, crcTable))
	if _, err := l.w.Write(l.header[:]); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if _, err := l.w.Write(rec); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	n := int64(headerLen + len(rec))
	l.size += n
	l.total += n
	l.sizes[l.Segment()] = l.size
	return nil
}

// Flush hands what was appended to the operating system (it survives a crash of the
// process, not of the machine).
func (l *Log) Flush() error {
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// Sync makes everything appended durable.
func (l *Log) Sync() error {
	if err := l.Flush(); err != nil {
		return err
	}
	if l.prealloc > 0 && l.size >= l.room {
		// This sync writes the file's size anyway: have it cover room for the
		// syncs that follow.
		if err := l.extend(); err != nil {
			return err
		}
	}
	if err := datasync(l.f); err != nil {
		return fmt.Errorf("wal: fsync: %w", err)
	}
	return nil
}

// extend fills the current segment's file with Preallocate bytes of zeros past what
// was appended.
func (l *Log) extend() error {
	zeros := make([]byte, min(l.prealloc, 1<<20))
	for l.room = l.size; l.room < l.size+l.prealloc; {
		n, err := l.f.Write(zeros[:min(int64(len(zeros)), l.size+l.prealloc-l.room)])
		l.room += int64(n)
		if err != nil {
			return fmt.Errorf("wal: preallocating: %w", err)
		}
	}
	if _, err := l.f.Seek(l.size, io.SeekStart); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// Segment is the sequence number of the segment being written.
func (l *Log) Segment() uint64 { return l.segs[len(l.segs)-1] }

// SegmentSize is how many bytes the current segment holds.
func (l *Log) SegmentSize() int64 { return l.size }

// Size is how many bytes every segment holds together.
func (l *Log) Size() int64 { return l.total }

// Segments returns the sequence numbers of the segments on disk, oldest first.
func (l *Log) Segments() []uint64 { return slices.Clone(l.segs) }

// Rotate syncs the current segment, cut to its records, and starts the next one.
func (l *Log) Rotate() error {
	if err := l.Flush(); err != nil {
		return err
	}
	// Cut first, then one sync for the records and the size (Sync could extend the
	// room only for it to be cut).
	if l.room > l.size {
		if err := l.f.Truncate(l.size); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("wal: fsync: %w", err)
	}
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return l.create(l.Segment() + 1)
}

// RemoveBefore deletes the segments numbered below id (never the current one).
func (l *Log) RemoveBefore(id uint64) error {
	id = min(id, l.Segment())
	var removed bool
	for len(l.segs) > 1 && l.segs[0] < id {
		if err := l.fs.Remove(l.path(l.segs[0])); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		l.total -= l.sizes[l.segs[0]]
		delete(l.sizes, l.segs[0])
		l.segs = l.segs[1:]
		removed = true
	}
	if removed {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
	}
	return nil
}

// Close syncs and closes the log.
func (l *Log) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.Sync()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wal: %w", cerr)
	}
	l.f, l.w = nil, nil
	return err
}
