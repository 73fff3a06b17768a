package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/dhtkv/dht/internal/wal"
)

// Fsync says when the node's log is made durable, with Redis's appendfsync names.
type Fsync int

// The fsync policies.
const (
	// FsyncEverysec writes every batch to the operating system before it is
	// acknowledged and fsyncs once a second: a crash of the process loses nothing, a
	// crash of the machine up to a second of writes.
	FsyncEverysec Fsync = iota
	// FsyncAlways fsyncs every batch before it is acknowledged: an acknowledged
	// write is on the disks of a majority of its group.
	FsyncAlways
	// FsyncNo leaves flushing to the operating system.
	FsyncNo
)

// ParseFsync reads a policy name: always, everysec or no.
func ParseFsync(s string) (Fsync, error) {
	switch s {
	case "always":
		return FsyncAlways, nil
	case "everysec", "":
		return FsyncEverysec, nil
	case "no":
		return FsyncNo, nil
	}
	return 0, fmt.Errorf("fsync policy %q: want always, everysec or no", s)
}

func (f Fsync) String() string {
	switch f {
	case FsyncAlways:
		return "always"
	case FsyncNo:
		return "no"
	}
	return "everysec"
}

// DiskOptions configure a Disk.
type DiskOptions struct {
	// Dir is the directory of the log and the snapshots.
	Dir string
	// Fsync is the fsync policy.
	Fsync Fsync
	// SegmentBytes is the size past which the log starts a new segment file (0: 64 MiB).
	SegmentBytes int64
	// FS is the file layer; nil means the operating system's.
	FS wal.FS
	// Logger receives what recovery finds; nil discards it.
	Logger *slog.Logger
	// OnFsync, if set, is called after every fsync of the log with how long it took.
	OnFsync func(time.Duration)
}

// Disk keeps the Raft state of a node's groups on disk: one write-ahead log that all
// the groups share, so that one fsync covers a batch from every group, and a snapshot
// file per group. One goroutine writes the log. A group's LogStore (Storage) keeps its
// log in memory as well, for Raft to read.
type Disk struct {
	dir     string
	fs      wal.FS
	log     *slog.Logger
	fsync   Fsync
	segSize int64
	onFsync func(time.Duration)
	wal     *wal.Log

	reqs chan *diskWrite
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	groups map[int]*diskGroup
	// segMax is, for every segment, the highest entry index of each group in it.
	segMax map[uint64]map[int]uint64
	stats  DiskStats
	closed bool
	empty  bool
}

// diskGroup is what the disk knows of one group: what recovery found, then what was
// written since.
type diskGroup struct {
	hs      raftpb.HardState
	snap    raftpb.SnapshotMetadata // of the newest durable snapshot
	ents    []raftpb.Entry          // recovered, after snap
	store   *diskLog
	writing bool // a snapshot file is being written in the background
}

// DiskStats are figures for INFO persistence and metrics.
type DiskStats struct {
	Fsync           string
	LogBytes        int64
	Segments        int
	Fsyncs          int64
	FsyncTotal      time.Duration
	LastFsync       time.Duration
	Snapshots       int64
	LastSnapshot    time.Time
	LastSnapshotDur time.Duration
	LastSnapshotLen int64
}

// diskWrite is a batch of records for the writer, and the answer: then, if set, is
// called with it (on the writer's goroutine), else it is sent on done.
type diskWrite struct {
	recs []diskRecord
	sync bool
	done chan error
	then func(error)
}

func (w *diskWrite) answer(err error) {
	if w.then != nil {
		w.then(err)
		return
	}
	w.done <- err
}

func (w *diskWrite) hasSnapshot() bool {
	return slices.ContainsFunc(w.recs, func(r diskRecord) bool { return r.snap != nil })
}

// diskRecord is one record of the log: a group's hard state and entries, or the
// index its newest durable snapshot covers.
type diskRecord struct {
	group int
	hs    *raftpb.HardState
	ents  []raftpb.Entry
	snap  *raftpb.SnapshotMetadata
	// reset is set on a snapshot received from the leader: it replaces the whole
	// log, where a snapshot taken here only covers the log up to its index.
	reset bool
}

const (
	recState    = 1
	recSnapshot = 2
	recRestore  = 3
)

// OpenDisk opens (or creates) the directory, reads the log and the snapshots back,
// and starts the writer. A log damaged other than by a torn tail is an error.
func OpenDisk(opts DiskOptions) (*Disk, error) {
	d := &Disk{
		dir: opts.Dir, fs: opts.FS, log: opts.Logger, fsync: opts.Fsync, segSize: opts.SegmentBytes,
		onFsync: opts.OnFsync, reqs: make(chan *diskWrite, 256), stop: make(chan struct{}), done: make(chan struct{}),
		groups: map[int]*diskGroup{}, segMax: map[uint64]map[int]uint64{},
	}
	if d.fs == nil {
		d.fs = wal.OSFS{}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.segSize <= 0 {
		d.segSize = 64 << 20
	}
	// The segment being written grows by zeros ahead of its records, a sixteenth of
	// a segment (at most 1 MiB) at a time, so that its syncs need not write its size.
	l, err := wal.Open(filepath.Join(d.dir, "wal"), wal.Options{FS: d.fs, Logger: d.log,
		Preallocate: min(d.segSize/16, 1<<20)})
	if err != nil {
		return nil, err
	}
	err = l.Replay(func(seg uint64, b []byte) error {
		r, err := decodeRecord(b)
		if err != nil {
			return fmt.Errorf("replica: log segment %d: %w", seg, err)
		}
		d.replay(seg, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.wal = l
	d.empty = len(d.groups) == 0
	for id, g := range d.groups {
		if g.snap.Index == 0 && len(g.ents) > 0 {
			return nil, fmt.Errorf("replica: group %d has log entries but no snapshot record", id)
		}
	}
	d.stats.Fsync = d.fsync.String()
	go d.run()
	return d, nil
}

// replay takes in one record read back from the log.
func (d *Disk) replay(seg uint64, r diskRecord) {
	g := d.group(r.group)
	if r.hs != nil {
		g.hs = *r.hs
	}
	switch {
	case r.reset:
		g.snap, g.ents = *r.snap, nil
	case r.snap != nil && r.snap.Index >= g.snap.Index:
		g.snap = *r.snap
		i, _ := slices.BinarySearchFunc(g.ents, r.snap.Index+1, func(e raftpb.Entry, idx uint64) int {
			return cmpIndex(e.Index, idx)
		})
		g.ents = slices.Clone(g.ents[i:])
	}
	if len(r.ents) > 0 {
		first := r.ents[0].Index
		i, _ := slices.BinarySearchFunc(g.ents, first, func(e raftpb.Entry, idx uint64) int {
			return cmpIndex(e.Index, idx)
		})
		g.ents = append(g.ents[:i], r.ents...)
		if len(g.ents) > 0 && g.ents[0].Index <= g.snap.Index {
			j, _ := slices.BinarySearchFunc(g.ents, g.snap.Index+1, func(e raftpb.Entry, idx uint64) int {
				return cmpIndex(e.Index, idx)
			})
			g.ents = g.ents[j:]
		}
		d.noteEntries(seg, r.group, r.ents[len(r.ents)-1].Index)
	}
}

func cmpIndex(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (d *Disk) group(id int) *diskGroup {
	g := d.groups[id]
	if g == nil {
		g = &diskGroup{}
		d.groups[id] = g
	}
	return g
}

func (d *Disk) noteEntries(seg uint64, group int, last uint64) {
	m := d.segMax[seg]
	if m == nil {
		m = map[int]uint64{}
		d.segMax[seg] = m
	}
	m[group] = max(m[group], last)
}

// Storage returns group's log store: empty for a group this disk has never seen,
// else holding what was recovered (its snapshot's state, then the log after it).
func (d *Disk) Storage(group int) (LogStore, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.group(group)
	if g.store != nil {
		return nil, fmt.Errorf("replica: group %d: storage already taken", group)
	}
	ms := raft.NewMemoryStorage()
	if g.snap.Index > 0 {
		snap, err := d.readSnapshot(group, g.snap)
		if err != nil {
			return nil, err
		}
		if err := ms.ApplySnapshot(snap); err != nil {
			return nil, fmt.Errorf("replica: group %d: %w", group, err)
		}
		if err := ms.Append(g.ents); err != nil {
			return nil, fmt.Errorf("replica: group %d: %w", group, err)
		}
		hs := g.hs
		if last, _ := ms.LastIndex(); hs.Commit > last {
			// The entries the hard state's commit index counts were in the torn tail
			// of the log: nothing of that batch was acknowledged.
			d.log.Warn("the log's commit index is past its last entry; lowering it", "group", group,
				"commit", hs.Commit, "last", last)
			hs.Commit = last
		}
		if err := ms.SetHardState(hs); err != nil {
			return nil, fmt.Errorf("replica: group %d: %w", group, err)
		}
		d.log.Info("recovered a group from disk", "group", group, "snapshot", g.snap.Index,
			"entries", len(g.ents), "term", g.hs.Term, "commit", g.hs.Commit)
	}
	g.ents = nil
	g.store = &diskLog{MemoryStorage: ms, d: d, group: group}
	return g.store, nil
}

// Empty reports whether the disk held no group's state when it was opened (a new
// node, or one whose data directory was lost).
func (d *Disk) Empty() bool { return d.empty }

// Stats returns the disk's figures.
func (d *Disk) Stats() DiskStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Close stops the writer after it has written and synced what it was given.
func (d *Disk) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.stop)
	<-d.done
	return d.wal.Close()
}

// ErrDiskClosed is the error of a write given to a closed Disk.
var ErrDiskClosed = errors.New("replica: the node's log is closed")

// write hands records to the writer and waits until they are written (and synced,
// when sync is set or the policy is always).
func (d *Disk) write(recs []diskRecord, sync bool) error {
	w, err := d.send(recs, sync || d.fsync == FsyncAlways, nil)
	if err != nil {
		return err
	}
	return d.wait(w)
}

// send hands records to the writer, which writes them in the order they came (and
// syncs the log after them when sync is set), then calls then, if given, or answers
// on the write's done channel.
func (d *Disk) send(recs []diskRecord, sync bool, then func(error)) (*diskWrite, error) {
	w := &diskWrite{recs: recs, sync: sync, then: then}
	if then == nil {
		w.done = make(chan error, 1)
	}
	select {
	case d.reqs <- w:
		return w, nil
	case <-d.stop:
		return nil, ErrDiskClosed
	}
}

// wait waits until the writer has done with w.
func (d *Disk) wait(w *diskWrite) error {
	select {
	case err := <-w.done:
		return err
	case <-d.done:
		return ErrDiskClosed
	}
}

// run is the writer: it takes every batch waiting, writes them, syncs once if any of
// them needs it (group commit), and answers them all.
func (d *Disk) run() {
	defer close(d.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	dirty := false
	for {
		var batch []*diskWrite
		select {
		case w := <-d.reqs:
			batch = append(batch, w)
		case <-tick.C:
			if dirty && d.fsync == FsyncEverysec {
				if err := d.syncLog(); err != nil {
					d.log.Error("fsync of the log", "err", err)
				}
				dirty = false
			}
			continue
		case <-d.stop:
			for {
				select {
				case w := <-d.reqs:
					w.answer(ErrDiskClosed)
				default:
					return
				}
			}
		}
	more:
		for len(batch) < 1024 {
			select {
			case w := <-d.reqs:
				batch = append(batch, w)
			default:
				break more
			}
		}
		err := d.writeBatch(batch)
		if err == nil {
			dirty = true
			if slices.ContainsFunc(batch, func(w *diskWrite) bool { return w.sync }) {
				err = d.syncLog()
				dirty = false
			} else {
				err = d.wal.Flush()
			}
		}
		if err == nil && d.wal.SegmentSize() >= d.segSize {
			err = d.rotate()
		} else if err == nil && slices.ContainsFunc(batch, (*diskWrite).hasSnapshot) {
			err = d.removeSegments()
		}
		if err != nil {
			d.log.Error("writing the log", "err", err)
		}
		for _, w := range batch {
			w.answer(err)
		}
		if d.fsync == FsyncAlways {
			// The answers made the groups' goroutines runnable, on this goroutine's
			// processor: let them run before the next fsync blocks it, so that Go's
			// scheduler need not take the processor back from the system call (its
			// monitor thread polls every 20 µs while it keeps doing so), and so
			// that what they append next joins the next batch.
			runtime.Gosched()
		}
	}
}

func (d *Disk) writeBatch(batch []*diskWrite) error {
	var buf []byte
	for _, w := range batch {
		for _, r := range w.recs {
			buf = encodeRecord(buf[:0], r)
			if err := d.wal.Append(buf); err != nil {
				return err
			}
			d.mu.Lock()
			g := d.group(r.group)
			if r.hs != nil {
				g.hs = *r.hs
			}
			if len(r.ents) > 0 {
				d.noteEntries(d.wal.Segment(), r.group, r.ents[len(r.ents)-1].Index)
			}
			if r.snap != nil && (r.reset || r.snap.Index > g.snap.Index) {
				g.snap = *r.snap
			}
			d.stats.LogBytes, d.stats.Segments = d.wal.Size(), len(d.wal.Segments())
			d.mu.Unlock()
		}
	}
	return nil
}

func (d *Disk) syncLog() error {
	start := time.Now()
	err := d.wal.Sync()
	took := time.Since(start)
	d.mu.Lock()
	d.stats.Fsyncs++
	d.stats.FsyncTotal += took
	d.stats.LastFsync = took
	d.mu.Unlock()
	if d.onFsync != nil {
		d.onFsync(took)
	}
	return err
}

// rotate starts a new segment and opens it with every group's hard state and newest
// snapshot, so that no older segment is needed for them; then it removes the segments
// that hold nothing past the snapshots.
func (d *Disk) rotate() error {
	if err := d.wal.Rotate(); err != nil {
		return err
	}
	d.mu.Lock()
	var recs []diskRecord
	for id, g := range d.groups {
		if g.snap.Index == 0 {
			continue
		}
		hs, snap := g.hs, g.snap
		recs = append(recs, diskRecord{group: id, hs: &hs, snap: &snap})
	}
	d.mu.Unlock()
	var buf []byte
	for _, r := range recs {
		buf = encodeRecord(buf[:0], r)
		if err := d.wal.Append(buf); err != nil {
			return err
		}
	}
	if err := d.syncLog(); err != nil {
		return err
	}
	return d.removeSegments()
}

// removeSegments deletes the oldest segments whose entries every group's durable
// snapshot covers.
func (d *Disk) removeSegments() error {
	d.mu.Lock()
	cur := d.wal.Segment()
	keepFrom := cur
	for _, seg := range d.wal.Segments() {
		if seg == cur {
			break
		}
		covered := true
		for g, last := range d.segMax[seg] {
			if last > d.groups[g].snap.Index {
				covered = false
				break
			}
		}
		if !covered {
			keepFrom = seg
			break
		}
	}
	for seg := range d.segMax {
		if seg < keepFrom {
			delete(d.segMax, seg)
		}
	}
	if keepFrom < cur {
		// Groups whose entries keep the oldest segment (an idle group snapshots
		// rarely by itself) are asked for a snapshot, after which it can go.
		for g, last := range d.segMax[keepFrom] {
			if dg := d.groups[g]; last > dg.snap.Index && dg.store != nil {
				dg.store.wanted.Store(true)
			}
		}
	}
	d.mu.Unlock()
	err := d.wal.RemoveBefore(keepFrom)
	d.mu.Lock()
	d.stats.LogBytes, d.stats.Segments = d.wal.Size(), len(d.wal.Segments())
	d.mu.Unlock()
	return err
}

// A snapshot file is named snap-<group>-<index>.snap and holds
//
//	CRC-32C of the rest (4 bytes LE) | raftpb.Snapshot, marshalled
func snapName(group int, index uint64) string {
	return fmt.Sprintf("snap-%d-%020d.snap", group, index)
}

func parseSnapName(name string) (group int, index uint64, ok bool) {
	base, ok1 := strings.CutSuffix(name, ".snap")
	rest, ok2 := strings.CutPrefix(base, "snap-")
	g, i, ok3 := strings.Cut(rest, "-")
	if !ok1 || !ok2 || !ok3 {
		return 0, 0, false
	}
	gi, err1 := strconv.Atoi(g)
	ii, err2 := strconv.ParseUint(i, 10, 64)
	return gi, ii, err1 == nil && err2 == nil
}

var snapCRC = crc32.MakeTable(crc32.Castagnoli)

// writeSnapshot writes a group's snapshot file durably (a temporary file, synced,
// renamed into place, the directory synced).
func (d *Disk) writeSnapshot(group int, snap raftpb.Snapshot) error {
	body, err := snap.Marshal()
	if err != nil {
		return fmt.Errorf("replica: group %d: snapshot: %w", group, err)
	}
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(body)), crc32.Checksum(body, snapCRC))
	b = append(b, body...)
	name := filepath.Join(d.dir, snapName(group, snap.Metadata.Index))
	tmp := name + ".tmp"
	f, err := d.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("replica: group %d: snapshot: %w", group, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.fs.Rename(tmp, name)
	}
	if err == nil {
		err = d.fs.SyncDir(d.dir)
	}
	if err != nil {
		return fmt.Errorf("replica: group %d: snapshot %s: %w", group, name, err)
	}
	return nil
}

// readSnapshot reads a group's snapshot file.
func (d *Disk) readSnapshot(group int, meta raftpb.SnapshotMetadata) (raftpb.Snapshot, error) {
	var snap raftpb.Snapshot
	name := filepath.Join(d.dir, snapName(group, meta.Index))
	f, err := d.fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return snap, fmt.Errorf("replica: group %d: the log names snapshot %d: %w", group, meta.Index, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return snap, fmt.Errorf("replica: group %d: %w", group, err)
	}
	if len(b) < 4 || crc32.Checksum(b[4:], snapCRC) != binary.LittleEndian.Uint32(b) {
		return snap, fmt.Errorf("replica: snapshot file %s is damaged (checksum mismatch)", name)
	}
	if err := snap.Unmarshal(b[4:]); err != nil {
		return snap, fmt.Errorf("replica: snapshot file %s: %w", name, err)
	}
	if snap.Metadata.Index != meta.Index || snap.Metadata.Term != meta.Term {
		return snap, fmt.Errorf("replica: snapshot file %s covers %d/%d, the log says %d/%d",
			name, snap.Metadata.Index, snap.Metadata.Term, meta.Index, meta.Term)
	}
	return snap, nil
}

// removeOldSnapshots deletes a group's snapshot files older than index.
func (d *Disk) removeOldSnapshots(group int, index uint64) {
	names, err := d.fs.ReadDir(d.dir)
	if err != nil {
		return
	}
	for _, n := range names {
		if g, i, ok := parseSnapName(n); ok && g == group && i < index {
			_ = d.fs.Remove(filepath.Join(d.dir, n))
		}
	}
}

// persistSnapshot makes snap the group's durable snapshot: its file, then a record in
// the log naming it; then the older files and the segments it covers go.
func (d *Disk) persistSnapshot(group int, snap raftpb.Snapshot, reset bool) error {
	start := time.Now()
	if err := d.writeSnapshot(group, snap); err != nil {
		return err
	}
	meta := snap.Metadata
	if err := d.write([]diskRecord{{group: group, snap: &meta, reset: reset}}, true); err != nil {
		return err
	}
	d.mu.Lock()
	newest := d.groups[group].snap.Index
	d.stats.Snapshots++
	d.stats.LastSnapshot, d.stats.LastSnapshotDur = time.Now(), time.Since(start)
	d.stats.LastSnapshotLen = int64(len(snap.Data))
	d.mu.Unlock()
	d.removeOldSnapshots(group, newest)
	return nil
}

// diskLog is one group's LogStore on a Disk: Raft's log in memory, every change also
// recorded in the node's log, made durable by Sync.
type diskLog struct {
	*raft.MemoryStorage
	d       *Disk
	group   int
	pending []diskRecord
	// wanted is set when the group's entries keep an old log segment on disk.
	wanted atomic.Bool
}

// snapshotWanted reports whether the disk asks the group for a snapshot.
func (l *diskLog) snapshotWanted() bool { return l.wanted.Load() }

// Append adds entries; they are durable after the next Sync.
func (l *diskLog) Append(ents []raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	if err := l.MemoryStorage.Append(ents); err != nil {
		return err
	}
	l.pending = append(l.pending, diskRecord{group: l.group, ents: ents})
	return nil
}

// SetHardState records the hard state; it is durable after the next Sync.
func (l *diskLog) SetHardState(st raftpb.HardState) error {
	if err := l.MemoryStorage.SetHardState(st); err != nil {
		return err
	}
	l.pending = append(l.pending, diskRecord{group: l.group, hs: &st})
	return nil
}

// Sync writes what was appended since the last Sync, and waits until it is as
// durable as the fsync policy makes it.
func (l *diskLog) Sync() error {
	if len(l.pending) == 0 {
		return nil
	}
	w, err := l.d.send(l.take(), l.d.fsync == FsyncAlways, nil)
	if err != nil {
		return err
	}
	return l.d.wait(w)
}

// StartSync hands what was appended since the last Sync to the node's log writer,
// which calls done once it is as durable as the fsync policy makes it, and after it
// called done for every batch handed to it before. A lazy batch (one that only moves
// the commit index, which Raft learns again from its leader) needs no fsync of its
// own: it is written in order with the rest, and synced with the next batch that
// needs it. done is called on the writer's goroutine, so it must not block.
func (l *diskLog) StartSync(lazy bool, done func(error)) {
	if _, err := l.d.send(l.take(), !lazy && l.d.fsync == FsyncAlways, done); err != nil {
		done(err)
	}
}

// take returns the records appended since it was last called.
func (l *diskLog) take() []diskRecord {
	recs := l.pending
	l.pending = nil
	return recs
}

// ApplySnapshot replaces the log with a snapshot from the leader, durably, before it
// returns.
func (l *diskLog) ApplySnapshot(snap raftpb.Snapshot) error {
	if err := l.Sync(); err != nil {
		return err
	}
	if err := l.d.persistSnapshot(l.group, snap, true); err != nil {
		return err
	}
	return l.MemoryStorage.ApplySnapshot(snap)
}

// CreateSnapshot records a snapshot of the state at index i; it is written to disk in
// the background (one at a time per group), after which the log it covers is dropped.
func (l *diskLog) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (raftpb.Snapshot, error) {
	snap, err := l.MemoryStorage.CreateSnapshot(i, cs, data)
	if err != nil {
		return snap, err
	}
	l.wanted.Store(false)
	d := l.d
	d.mu.Lock()
	g := d.groups[l.group]
	busy := g.writing
	g.writing = true
	d.mu.Unlock()
	if busy {
		return snap, nil
	}
	go func(cur raftpb.Snapshot) {
		for {
			if err := d.persistSnapshot(l.group, cur, false); err != nil && !errors.Is(err, ErrDiskClosed) {
				d.log.Error("writing a snapshot", "group", l.group, "index", cur.Metadata.Index, "err", err)
			}
			// A snapshot taken while this one was written is written next.
			d.mu.Lock()
			next, err := l.MemoryStorage.Snapshot()
			if err != nil || next.Metadata.Index <= cur.Metadata.Index || d.closed {
				g.writing = false
				d.mu.Unlock()
				return
			}
			d.mu.Unlock()
			cur = next
		}
	}(snap)
	return snap, nil
}

// encodeRecord appends a record's payload to b:
//
//	kind (1 byte) | group (uvarint) | ...
//	recState:    has hard state (1 byte) [term, vote, commit (uvarints)] | count (uvarint) | count × { len (uvarint) | raftpb.Entry }
//	recSnapshot, recRestore: index, term (uvarints)
func encodeRecord(b []byte, r diskRecord) []byte {
	if r.snap != nil && r.hs == nil && r.ents == nil {
		kind := byte(recSnapshot)
		if r.reset {
			kind = recRestore
		}
		b = append(b, kind)
		b = binary.AppendUvarint(b, uint64(r.group))
		b = binary.AppendUvarint(b, r.snap.Index)
		return binary.AppendUvarint(b, r.snap.Term)
	}
	b = append(b, recState)
	b = binary.AppendUvarint(b, uint64(r.group))
	if r.hs != nil {
		b = append(b, 1)
		b = binary.AppendUvarint(b, r.hs.Term)
		b = binary.AppendUvarint(b, r.hs.Vote)
		b = binary.AppendUvarint(b, r.hs.Commit)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(r.ents)))
	for i := range r.ents {
		e := &r.ents[i]
		b = binary.AppendUvarint(b, uint64(e.Size()))
		n := len(b)
		b = slices.Grow(b, e.Size())[:n+e.Size()]
		if _, err := e.MarshalToSizedBuffer(b[n:]); err != nil {
			panic(fmt.Sprintf("replica: marshalling a raft entry: %v", err))
		}
	}
	if r.snap != nil {
		// A checkpoint: the hard state and the snapshot it goes with, in one record.
		b[0] = recState | recSnapshot<<4
		b = binary.AppendUvarint(b, r.snap.Index)
		b = binary.AppendUvarint(b, r.snap.Term)
	}
	return b
}

var errBadRecord = errors.New("malformed record")

func decodeRecord(b []byte) (diskRecord, error) {
	var r diskRecord
	if len(b) == 0 {
		return r, errBadRecord
	}
	kind := b[0]
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	g, ok := next()
	if !ok {
		return r, errBadRecord
	}
	r.group = int(g)
	readSnap := func() bool {
		idx, ok1 := next()
		term, ok2 := next()
		r.snap = &raftpb.SnapshotMetadata{Index: idx, Term: term}
		return ok1 && ok2
	}
	switch kind {
	case recSnapshot, recRestore:
		if !readSnap() || len(b) != 0 {
			return r, errBadRecord
		}
		r.reset = kind == recRestore
		return r, nil
	case recState, recState | recSnapshot<<4:
	default:
		return r, fmt.Errorf("%w: kind %d", errBadRecord, kind)
	}
	if len(b) == 0 {
		return r, errBadRecord
	}
	hasHS := b[0] == 1
	b = b[1:]
	if hasHS {
		term, ok1 := next()
		vote, ok2 := next()
		commit, ok3 := next()
		if !ok1 || !ok2 || !ok3 {
			return r, errBadRecord
		}
		r.hs = &raftpb.HardState{Term: term, Vote: vote, Commit: commit}
	}
	n, ok := next()
	if !ok || n > uint64(len(b)) {
		return r, errBadRecord
	}
	r.ents = make([]raftpb.Entry, n)
	for i := range r.ents {
		size, ok := next()
		if !ok || size > uint64(len(b)) {
			return r, errBadRecord
		}
		if err := r.ents[i].Unmarshal(b[:size]); err != nil {
			return r, fmt.Errorf("%w: entry: %w", errBadRecord, err)
		}
		b = b[size:]
	}
	if kind != recState && !readSnap() {
		return r, errBadRecord
	}
	if len(b) != 0 {
		return r, fmt.Errorf("%w: %d bytes left over", errBadRecord, len(b))
	}
	if len(r.ents) == 0 {
		r.ents = nil
	}
	return r, nil
}
