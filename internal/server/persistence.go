package server

import (
	"fmt"

	"github.com/dhtkv/dht/internal/replica"
)

// diskStats returns the figures of the node's log; zero when it keeps nothing on
// disk.
func (s *Server) diskStats() replica.DiskStats {
	if s.disk == nil {
		return replica.DiskStats{}
	}
	return s.disk.Stats()
}

// persistenceInfo is INFO's persistence section: Redis's fields that clients and
// tools look for, then the write-ahead log's.
func (s *Server) persistenceInfo() []string {
	lines := []string{"loading:0", "rdb_changes_since_last_save:0"}
	if s.disk == nil {
		return append(lines, "aof_enabled:0", "dht_persistence:memory")
	}
	st := s.disk.Stats()
	var avg float64
	if st.Fsyncs > 0 {
		avg = st.FsyncTotal.Seconds() * 1000 / float64(st.Fsyncs)
	}
	last := int64(0)
	if !st.LastSnapshot.IsZero() {
		last = st.LastSnapshot.Unix()
	}
	return append(lines,
		"aof_enabled:1",
		"dht_persistence:wal",
		"dht_fsync:"+st.Fsync,
		fmt.Sprintf("dht_wal_bytes:%d", st.LogBytes),
		fmt.Sprintf("dht_wal_segments:%d", st.Segments),
		fmt.Sprintf("dht_wal_fsyncs:%d", st.Fsyncs),
		fmt.Sprintf("dht_wal_fsync_last_ms:%.3f", st.LastFsync.Seconds()*1000),
		fmt.Sprintf("dht_wal_fsync_avg_ms:%.3f", avg),
		fmt.Sprintf("dht_snapshots_written:%d", st.Snapshots),
		fmt.Sprintf("dht_last_snapshot_time:%d", last),
		fmt.Sprintf("dht_last_snapshot_ms:%d", st.LastSnapshotDur.Milliseconds()),
		fmt.Sprintf("dht_last_snapshot_bytes:%d", st.LastSnapshotLen),
	)
}
