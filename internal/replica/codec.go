package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A log entry holds a batch of proposals:
//
//	version byte (1) | log time, Unix ns (8 bytes LE) | count (uvarint)
//	count × { proposer (uvarint) | seq (uvarint) | len (uvarint) | command }
//
// The proposer and seq let the node that proposed a command find it when it is
// applied; the other replicas only apply it.
const entryVersion = 1

// maxEntryBytes is the size past which a batch of proposals is split into several
// entries, so that one message carries a bounded amount (one larger command still
// makes one entry of its own).
const maxEntryBytes = 1 << 20

var errBadEntry = errors.New("replica: malformed log entry")

// encodeEntry appends to b an entry of proposals stamped with now.
func encodeEntry(b []byte, proposer uint64, now int64, props []*Proposal) []byte {
	b = append(b, entryVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(now))
	b = binary.AppendUvarint(b, uint64(len(props)))
	for _, p := range props {
		b = binary.AppendUvarint(b, proposer)
		b = binary.AppendUvarint(b, p.seq)
		b = binary.AppendUvarint(b, uint64(len(p.cmd)))
		b = append(b, p.cmd...)
	}
	return b
}

// restamp sets the time of an entry encodeEntry wrote (a follower's, which the
// leader stamps with its own clock); it leaves anything else as it is.
func restamp(data []byte, now int64) {
	if len(data) >= 9 && data[0] == entryVersion {
		binary.LittleEndian.PutUint64(data[1:9], uint64(now))
	}
}

// entryReader walks the proposals of an entry.
type entryReader struct {
	data []byte
	now  int64
	left uint64
}

func readEntry(data []byte) (entryReader, error) {
	if len(data) < 9 || data[0] != entryVersion {
		return entryReader{}, fmt.Errorf("%w: header of %d bytes", errBadEntry, len(data))
	}
	r := entryReader{now: int64(binary.LittleEndian.Uint64(data[1:9]))}
	n, k := binary.Uvarint(data[9:])
	if k <= 0 {
		return entryReader{}, fmt.Errorf("%w: count", errBadEntry)
	}
	r.left, r.data = n, data[9+k:]
	return r, nil
}

// next returns the next proposal, or ok false at the end.
func (r *entryReader) next() (proposer, seq uint64, cmd []byte, ok bool, err error) {
	if r.left == 0 {
		return 0, 0, nil, false, nil
	}
	var vals [3]uint64
	for i := range vals {
		v, k := binary.Uvarint(r.data)
		if k <= 0 {
			return 0, 0, nil, false, fmt.Errorf("%w: proposal header", errBadEntry)
		}
		vals[i], r.data = v, r.data[k:]
	}
	if vals[2] > uint64(len(r.data)) {
		return 0, 0, nil, false, fmt.Errorf("%w: command of %d bytes, %d left", errBadEntry, vals[2], len(r.data))
	}
	cmd, r.data = r.data[:vals[2]], r.data[vals[2]:]
	r.left--
	return vals[0], vals[1], cmd, true, nil
}

// A snapshot's data is the log time it was taken at (8 bytes LE) followed by the
// state machine's snapshot.
func encodeSnapshot(now int64, state []byte) []byte {
	b := make([]byte, 8, 8+len(state))
	binary.LittleEndian.PutUint64(b, uint64(now))
	return append(b, state...)
}

func decodeSnapshot(data []byte) (now int64, state []byte, err error) {
	if len(data) < 8 {
		return 0, nil, fmt.Errorf("replica: snapshot of %d bytes has no header", len(data))
	}
	return int64(binary.LittleEndian.Uint64(data)), data[8:], nil
}
