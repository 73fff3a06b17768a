package replica

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/dhtkv/dht/internal/wal"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []diskRecord{
		{group: 3, hs: &raftpb.HardState{Term: 7, Vote: 2, Commit: 41}},
		{group: 0, ents: []raftpb.Entry{{Term: 2, Index: 5, Data: []byte("x")}, {Term: 2, Index: 6, Type: raftpb.EntryConfChange}}},
		{group: 1, hs: &raftpb.HardState{Term: 1}, ents: []raftpb.Entry{{Term: 1, Index: 2, Data: []byte("abc")}}},
		{group: 9, snap: &raftpb.SnapshotMetadata{Index: 100, Term: 4}},
		{group: 9, snap: &raftpb.SnapshotMetadata{Index: 200, Term: 5}, reset: true},
		{group: 2, hs: &raftpb.HardState{Term: 5, Commit: 9}, snap: &raftpb.SnapshotMetadata{Index: 8, Term: 5}},
	} {
		got, err := decodeRecord(encodeRecord(nil, r))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip of %+v = %+v, %v", r, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {9, 0}, {recState}, {recState, 1, 1}, {recSnapshot, 1, 1}} {
		if _, err := decodeRecord(bad); err == nil {
			t.Fatalf("decoding %v succeeded", bad)
		}
	}
}

// TestDiskReplaysTruncatedLog: entries a new leader overwrote are replaced on replay,
// and a snapshot record drops what it covers.
func TestDiskReplaysTruncatedLog(t *testing.T) {
	fsys := wal.NewFaultFS()
	d, err := OpenDisk(DiskOptions{Dir: "/data", Fsync: FsyncAlways, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.Storage(0)
	if err != nil {
		t.Fatal(err)
	}
	l := st.(*diskLog)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 1, Term: 1}, Data: encodeSnapshot(0, nil)}))
	ents := func(term uint64, from, to uint64) []raftpb.Entry {
		var out []raftpb.Entry
		for i := from; i <= to; i++ {
			out = append(out, raftpb.Entry{Term: term, Index: i, Data: fmt.Appendf(nil, "%d/%d", term, i)})
		}
		return out
	}
	must(l.Append(ents(2, 2, 10)))
	must(l.SetHardState(raftpb.HardState{Term: 2, Vote: 1, Commit: 6}))
	must(l.Sync())
	must(l.Append(ents(3, 8, 12))) // a new leader replaced 8..10
	must(l.SetHardState(raftpb.HardState{Term: 3, Vote: 2, Commit: 11}))
	must(l.Sync())
	// Where the records end (the file goes on with preallocated zeros).
	size := d.Stats().LogBytes
	must(d.Close())
	// Torn away: entries and the commit index that counts them.
	d, err = OpenDisk(DiskOptions{Dir: "/data", Fsync: FsyncAlways, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	if st, err = d.Storage(0); err != nil {
		t.Fatal(err)
	}
	l = st.(*diskLog)
	must(l.Append(ents(3, 13, 13)))
	must(l.SetHardState(raftpb.HardState{Term: 3, Vote: 2, Commit: 13}))
	must(l.Sync())
	must(d.Close())
	if err := fsys.Truncate("/data/wal/00000000000000000001.wal", size+5); err != nil {
		t.Fatal(err)
	}

	d, err = OpenDisk(DiskOptions{Dir: "/data", Fsync: FsyncAlways, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	st, err = d.Storage(0)
	if err != nil {
		t.Fatal(err)
	}
	hs, _, _ := st.InitialState()
	if hs.Term != 3 || hs.Vote != 2 || hs.Commit != 11 {
		t.Fatalf("recovered hard state %+v", hs)
	}
	got, err := st.Entries(2, 13, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	want := append(ents(2, 2, 7), ents(3, 8, 12)...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("recovered entries\n%v\nwant\n%v", got, want)
	}
	if _, err := d.Storage(0); err == nil {
		t.Fatal("a group's storage was handed out twice")
	}
	// A snapshot from the leader replaces the whole log, entries past it included.
	l = st.(*diskLog)
	must(l.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 10, Term: 4}, Data: encodeSnapshot(0, []byte("state"))}))
	must(l.SetHardState(raftpb.HardState{Term: 4, Vote: 3, Commit: 10}))
	must(l.Sync())
	must(d.Close())
	d, err = OpenDisk(DiskOptions{Dir: "/data", Fsync: FsyncAlways, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	if st, err = d.Storage(0); err != nil {
		t.Fatal(err)
	}
	snap, _ := st.Snapshot()
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	if snap.Metadata.Index != 10 || first != 11 || last != 10 {
		t.Fatalf("after a snapshot from the leader: snapshot %d, log %d..%d; want 10 and no entries", snap.Metadata.Index, first, last)
	}
	must(d.Close())
}

// crashAll cuts every node off (so that nothing more commits), takes each node's disk
// as a crash of its machine would leave it, and stops them all.
func (c *testCluster) crashAll(rng *rand.Rand) {
	c.net.mu.Lock()
	for id := range c.nodes {
		c.net.cut[id] = true
	}
	c.net.mu.Unlock()
	crashed := map[uint64]*wal.FaultFS{}
	for id := range c.nodes {
		crashed[id] = c.fss[id].Crash(rng)
	}
	for id := range c.nodes {
		c.stop(id)
	}
	c.net.mu.Lock()
	clear(c.net.cut)
	c.net.mu.Unlock()
	c.fss = crashed
}

// TestDurableClusterSurvivesCrashOfEveryNode: with fsync always, every write that was
// acknowledged before all nodes' machines crashed at once is there after they restart
// (from snapshots and the log, across segment rotations and removals); the restarted
// replicas take part in elections at once; and the log's segments stay few.
func TestDurableClusterSurvivesCrashOfEveryNode(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			fss := map[uint64]*wal.FaultFS{}
			for id := uint64(1); id <= 3; id++ {
				fss[id] = wal.NewFaultFS()
			}
			c := startTestCluster(t, 3, fss)
			var mu sync.Mutex
			acked := map[string]string{}
			var writes atomic.Int64
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := 0; ctx.Err() == nil; i++ {
						g := (w + i) % 3
						k, v := fmt.Sprintf("w%d-%d", w, i%40), fmt.Sprintf("v%d", i)
						l, _ := c.nodes[uint64(g+1)].h.Leader(g)
						node := c.nodes[l]
						if node == nil {
							time.Sleep(5 * time.Millisecond)
							continue
						}
						pctx, pcancel := context.WithTimeout(ctx, time.Second)
						_, err := node.h.Propose(g, []byte(k+"="+v)).Wait(pctx)
						pcancel()
						if err == nil {
							mu.Lock()
							acked[fmt.Sprint(g, "/", k)] = v
							mu.Unlock()
							writes.Add(1)
						}
					}
				})
			}
			// Crash after a number of acknowledged writes that the seed picks, not
			// after a time, which a busy machine would fill with fewer.
			crashAfter := int64(100 + rng.IntN(200))
			for deadline := time.Now().Add(30 * time.Second); writes.Load() < crashAfter; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("only %d writes acknowledged in 30s", writes.Load())
				}
			}
			// The writers' nodes map must not change under them: stop them first,
			// but only after the crash point, so that writes are in flight then.
			c.net.mu.Lock()
			for id := range c.nodes {
				c.net.cut[id] = true
			}
			c.net.mu.Unlock()
			cancel()
			wg.Wait()
			c.crashAll(rng)

			for id := uint64(1); id <= 3; id++ {
				c.start(id)
			}
			for g := range 3 {
				// The lead may move while the read waits (it goes back to the
				// preferred leader after the restart): read again at the new one.
				var l uint64
				readDeadline := time.Now().Add(5 * time.Second)
				for {
					l = c.leader(g, 10*time.Second)
					rctx, rcancel := context.WithDeadline(context.Background(), readDeadline)
					err := c.nodes[l].h.ReadIndex(g).Wait(rctx)
					rcancel()
					var nl *NotLeaderError
					if err == nil {
						break
					}
					if !errors.As(err, &nl) || time.Now().After(readDeadline) {
						t.Fatalf("group %d: read after restart: %v", g, err)
					}
				}
				for gk, v := range acked {
					var gg int
					var k string
					fmt.Sscanf(gk, "%d/%s", &gg, &k)
					if gg != g {
						continue
					}
					// A later write of the key may have been applied without its
					// acknowledgement reaching the writer: the value may be newer.
					var want, got int
					fmt.Sscanf(v, "v%d", &want)
					val := c.nodes[l].sms[g].get(k)
					if _, err := fmt.Sscanf(val, "v%d", &got); err != nil || got < want {
						t.Fatalf("group %d: acknowledged %s=%s, after the restart %q", g, k, v, val)
					}
				}
			}
			c.write(0, "after=restart")
			for id, fsys := range c.fss {
				segs, _ := fsys.ReadDir(filepath.Join("/data", "wal"))
				if len(segs) > 40 {
					t.Errorf("node %d keeps %d log segments", id, len(segs))
				}
			}
		})
	}
}

// TestIdleGroupDoesNotPinTheLog: groups that stop taking writes are asked for a
// snapshot, so that the segments their entries are in can go while another group
// keeps writing.
func TestIdleGroupDoesNotPinTheLog(t *testing.T) {
	fss := map[uint64]*wal.FaultFS{}
	for id := uint64(1); id <= 3; id++ {
		fss[id] = wal.NewFaultFS()
	}
	c := startTestCluster(t, 3, fss)
	for g := range 3 {
		for i := range 5 {
			c.write(g, fmt.Sprintf("idle%d=%d", i, i))
		}
	}
	segments := func() (most int) {
		for _, fsys := range c.fss {
			segs, _ := fsys.ReadDir("/data/wal")
			most = max(most, len(segs))
		}
		return most
	}
	value := strings.Repeat("x", 200)
	for i := range 600 {
		c.write(0, fmt.Sprintf("busy%d=%s", i%50, value))
	}
	// The idle groups' snapshots are taken and written in the background.
	deadline := time.Now().Add(5 * time.Second)
	for segments() > 6 && time.Now().Before(deadline) {
		c.write(0, "tick="+value)
		time.Sleep(20 * time.Millisecond)
	}
	if n := segments(); n > 6 {
		t.Fatalf("%d log segments of 4 KiB kept after ~150 KiB of writes to one group", n)
	}
}
