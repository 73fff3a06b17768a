package wal

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func rec(i int) []byte { return fmt.Appendf(nil, "record %d %s", i, make([]byte, i%50)) }

func openReplay(t *testing.T, fsys FS, dir string) (*Log, [][]byte, error) {
	t.Helper()
	return openReplayWith(t, dir, Options{FS: fsys})
}

func openReplayWith(t *testing.T, dir string, opts Options) (*Log, [][]byte, error) {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	err = l.Replay(func(_ uint64, r []byte) error {
		got = append(got, slices.Clone(r))
		return nil
	})
	return l, got, err
}

func checkRecords(t *testing.T, got [][]byte, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("replayed %d records, want %d", len(got), n)
	}
	for i, r := range got {
		if string(r) != string(rec(i)) {
			t.Fatalf("record %d = %q, want %q", i, r, rec(i))
		}
	}
}

// TestAppendReplayRotate: records come back in order across segments, on the real file
// system, and appending goes on where the log ended.
func TestAppendReplayRotate(t *testing.T) {
	dir := t.TempDir()
	l, got, err := openReplay(t, nil, dir)
	if err != nil || len(got) != 0 {
		t.Fatalf("new log: %d records, %v", len(got), err)
	}
	for i := range 100 {
		if err := l.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
		if i%30 == 29 {
			if err := l.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, got, err = openReplay(t, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, got, 100)
	if segs := l.Segments(); len(segs) != 4 {
		t.Fatalf("segments %v, want 4", segs)
	}
	for i := 100; i < 110; i++ {
		if err := l.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	size := l.Size()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var onDisk int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, _ := e.Info()
		onDisk += fi.Size()
	}
	if onDisk != size {
		t.Fatalf("Size() = %d, files hold %d", size, onDisk)
	}
	l, got, err = openReplay(t, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, got, 110)
	if err := l.RemoveBefore(l.Segment()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	_, got, err = openReplay(t, nil, dir)
	if err != nil || len(got) != 20 {
		t.Fatalf("after removing all but the last segment: %d records, %v; want 20", len(got), err)
	}
}

// TestCrashKeepsWhatWasSynced: after a crash at any point, with the unsynced tail lost,
// torn or garbage, replay returns exactly the synced records (or more of those
// appended, never a damaged one), cuts the tail, and the log takes appends again.
func TestCrashKeepsWhatWasSynced(t *testing.T) {
	for _, prealloc := range []int64{0, 100} {
		t.Run(fmt.Sprintf("preallocate=%d", prealloc), func(t *testing.T) { crashKeepsWhatWasSynced(t, prealloc) })
	}
}

func crashKeepsWhatWasSynced(t *testing.T, prealloc int64) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		fsys := NewFaultFS()
		l, _, err := openReplayWith(t, "/d", Options{FS: fsys, Preallocate: prealloc})
		if err != nil {
			t.Fatal(err)
		}
		synced := 0
		n := 1 + rng.IntN(60)
		for i := range n {
			if err := l.Append(rec(i)); err != nil {
				t.Fatal(err)
			}
			switch rng.IntN(6) {
			case 0:
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
				synced = i + 1
			case 1:
				if err := l.Flush(); err != nil {
					t.Fatal(err)
				}
			case 2:
				if rng.IntN(4) == 0 {
					if err := l.Rotate(); err != nil {
						t.Fatal(err)
					}
					synced = i + 1
				}
			}
		}
		crashed := fsys.Crash(rng)
		l2, got, err := openReplayWith(t, "/d", Options{FS: crashed, Preallocate: prealloc})
		if err != nil {
			t.Fatalf("seed %d: replay after crash: %v", seed, err)
		}
		if len(got) < synced || len(got) > n {
			t.Fatalf("seed %d: %d records after crash; %d were synced of %d", seed, len(got), synced, n)
		}
		checkRecords(t, got, len(got))
		if err := l2.Append(rec(len(got))); err != nil {
			t.Fatal(err)
		}
		if err := l2.Sync(); err != nil {
			t.Fatal(err)
		}
		_, again, err := openReplay(t, crashed, "/d")
		if err != nil {
			t.Fatalf("seed %d: replay after appending past a cut tail: %v", seed, err)
		}
		checkRecords(t, again, len(got)+1)
	}
}

// TestPreallocatedSegments: the segment being written has zeros ahead of its records,
// which replay takes for the room they are, silently; a segment that is not the last
// is cut to its records; appending after a replay goes on where the records end.
func TestPreallocatedSegments(t *testing.T) {
	dir := t.TempDir()
	var logged bytes.Buffer
	opts := Options{Preallocate: 1000, Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	l, _, err := openReplayWith(t, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := l.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if i%30 == 29 {
			if err := l.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkFiles := func(l *Log) {
		t.Helper()
		for _, id := range l.Segments() {
			b, err := os.ReadFile(l.path(id))
			if err != nil {
				t.Fatal(err)
			}
			data := l.sizes[id]
			if id != l.Segment() {
				if int64(len(b)) != data {
					t.Fatalf("segment %d holds %d bytes of records in a file of %d", id, data, len(b))
				}
				continue
			}
			if int64(len(b)) <= data || slices.ContainsFunc(b[data:], func(c byte) bool { return c != 0 }) {
				t.Fatalf("the last segment (%d bytes of records, file of %d) has no room of zeros", data, len(b))
			}
		}
	}
	checkFiles(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, got, err := openReplayWith(t, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, got, 100)
	for i := 100; i < 110; i++ {
		if err := l.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkFiles(l)
	l.Close()
	_, got, err = openReplayWith(t, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, got, 110)
	if logged.Len() > 0 {
		t.Fatalf("replaying a preallocated log logged:\n%s", logged.String())
	}
}

// TestDamageInTheMiddleStops: a flipped bit in a record followed by others, or in a
// segment before the last, stops replay with an error naming the file and offset.
func TestDamageInTheMiddleStops(t *testing.T) {
	for _, tc := range []struct {
		name    string
		segment int   // index into Segments
		record  int   // flip inside this record of the segment
		at      int64 // at this offset into the record
	}{
		{"last segment, not its last record", 1, 2, headerLen + 3},
		{"last segment, a length that runs past the end", 1, 2, 2},
		{"earlier segment, its last record", 0, 4, headerLen + 3},
		{"earlier segment, first record", 0, 0, headerLen + 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := NewFaultFS()
			l, _, _ := openReplay(t, fsys, "/d")
			var offsets [][]int64
			for s := range 2 {
				offsets = append(offsets, nil)
				for i := range 5 {
					offsets[s] = append(offsets[s], l.SegmentSize())
					if err := l.Append(rec(s*5 + i)); err != nil {
						t.Fatal(err)
					}
				}
				if s == 0 {
					if err := l.Rotate(); err != nil {
						t.Fatal(err)
					}
				}
			}
			segs := l.Segments()
			l.Close()
			name := filepath.Join("/d", segmentName(segs[tc.segment]))
			off := offsets[tc.segment][tc.record] + tc.at
			if err := fsys.FlipBit(name, off, 2); err != nil {
				t.Fatal(err)
			}
			_, _, err := openReplay(t, fsys, "/d")
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.File != name || ce.Offset != offsets[tc.segment][tc.record] {
				t.Fatalf("replay = %v; want damage in %s at %d", err, name, offsets[tc.segment][tc.record])
			}
		})
	}
}

// TestShortWriteIsTornTail: a write that fails part way leaves a tail that recovery
// cuts off, keeping every record before it.
func TestShortWriteIsTornTail(t *testing.T) {
	fsys := NewFaultFS()
	l, _, _ := openReplay(t, fsys, "/d")
	for i := range 3 {
		if err := l.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(rec(3)); err != nil {
		t.Fatal(err)
	}
	fsys.FailNextWrite(5)
	if err := l.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("sync with a short write: %v", err)
	}
	_, got, err := openReplay(t, fsys, "/d")
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, got, 3)
}

// TestForeignFileRefused: a segment that does not start with the magic is damage.
func TestForeignFileRefused(t *testing.T) {
	fsys := NewFaultFS()
	l, _, _ := openReplay(t, fsys, "/d")
	l.Append(rec(0))
	l.Rotate()
	l.Close()
	if err := fsys.FlipBit(filepath.Join("/d", segmentName(1)), 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openReplay(t, fsys, "/d"); err == nil {
		t.Fatal("replay of a segment with a bad magic succeeded")
	}
}

func TestAppendLimits(t *testing.T) {
	l, _, _ := openReplay(t, NewFaultFS(), "/d")
	if err := l.Append(nil); err == nil {
		t.Fatal("empty record accepted")
	}
	if err := (&Log{}).Append([]byte("x")); err == nil {
		t.Fatal("append before replay accepted")
	}
}
