package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/dhtkv/dht/internal/config"
)

// Op is an operation type of the workload.
type Op uint8

// The operation types, in the order of config.Mix.
const (
	// OpGet reads one key (GET).
	OpGet Op = iota
	// OpPutIfAbsent writes one key only if it is absent (SET key value NX).
	OpPutIfAbsent
	// OpPut writes one key unconditionally (SET).
	OpPut
	// OpMultiPut writes MultiPutNum keys at once (MSET).
	OpMultiPut
	// NumOps is the number of operation types.
	NumOps
)

// String returns the operation's name as used in the config, JSON and tables.
func (o Op) String() string {
	switch o {
	case OpGet:
		return "get"
	case OpPutIfAbsent:
		return "put_if_absent"
	case OpPut:
		return "put"
	case OpMultiPut:
		return "multi_put"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// ParseOp returns the operation named s. Besides the canonical names it accepts
// the Redis command names (get, setnx, set, mset) and "pia".
func ParseOp(s string) (Op, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "get":
		return OpGet, nil
	case "put_if_absent", "put-if-absent", "pia", "setnx":
		return OpPutIfAbsent, nil
	case "put", "set":
		return OpPut, nil
	case "multi_put", "multi-put", "mset":
		return OpMultiPut, nil
	}
	return 0, fmt.Errorf("unknown operation %q (want get, put_if_absent, put or multi_put)", s)
}

// ParseMix parses an operation mix such as "get=60,put_if_absent=40".
// Operations not named get 0 percent. The sum is checked by config.Workload.Validate.
func ParseMix(s string) (config.Mix, error) {
	var m config.Mix
	seen := map[Op]bool{}
	for part := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return config.Mix{}, fmt.Errorf("%q is not op=percent", part)
		}
		op, err := ParseOp(name)
		if err != nil {
			return config.Mix{}, err
		}
		if seen[op] {
			return config.Mix{}, fmt.Errorf("%s given twice", op)
		}
		seen[op] = true
		p, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || p < 0 || p > 100 {
			return config.Mix{}, fmt.Errorf("%s=%q: percent must be an integer from 0 to 100", op, val)
		}
		*mixField(&m, op) = p
	}
	return m, nil
}

// FormatMix writes a mix as ParseMix reads it, leaving out zero entries.
func FormatMix(m config.Mix) string {
	var parts []string
	for op := range NumOps {
		if p := *mixField(&m, op); p != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", op, p))
		}
	}
	return strings.Join(parts, ",")
}

func mixField(m *config.Mix, op Op) *int {
	switch op {
	case OpGet:
		return &m.Get
	case OpPutIfAbsent:
		return &m.PutIfAbsent
	case OpPut:
		return &m.Put
	default:
		return &m.MultiPut
	}
}

// Overwrites reports whether the mix has operations that overwrite existing
// values (put or multi-put), so that a won put-if-absent may legitimately be
// replaced by a later write.
func Overwrites(m config.Mix) bool { return m.Put > 0 || m.MultiPut > 0 }

// Picker draws operations according to a mix.
type Picker struct {
	// cum[i] is the sum of the percentages of the operations up to and including i.
	cum [NumOps]int
}

// NewPicker returns a Picker for m, which must add up to 100.
func NewPicker(m config.Mix) Picker {
	var p Picker
	sum := 0
	for op := range NumOps {
		sum += *mixField(&m, op)
		p.cum[op] = sum
	}
	return p
}

// Pick maps r, uniform in [0, 100), to an operation.
func (p Picker) Pick(r int) Op {
	for op := range NumOps {
		if r < p.cum[op] {
			return op
		}
	}
	return NumOps - 1
}

// Keys formats key numbers as key strings.
type Keys struct {
	// Prefix comes before the decimal key number.
	Prefix string
}

// Key returns the key string of key number n.
func (k Keys) Key(n int64) string {
	b := make([]byte, 0, len(k.Prefix)+20)
	b = append(b, k.Prefix...)
	return string(strconv.AppendInt(b, n, 10))
}

// Writer identifies one write of a run: the writing client, thread and the
// thread's sequence number.
type Writer struct {
	// Client and Thread identify the writing thread.
	Client int
	Thread int
	// Seq is the thread's sequence number of the request.
	Seq int64
}

// AppendValue appends the value written by w in the run tagged tag, exactly size
// bytes long, to dst. The value starts "tag:client:thread:seq:" and is padded
// with '.'; a header longer than size is truncated.
func AppendValue(dst []byte, tag string, w Writer, size int) []byte {
	start := len(dst)
	dst = append(dst, tag...)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(w.Client), 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(w.Thread), 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, w.Seq, 10)
	dst = append(dst, ':')
	if len(dst)-start > size {
		return dst[:start+size]
	}
	for len(dst)-start < size {
		dst = append(dst, '.')
	}
	return dst
}

// ParseWriter reads the writer from a value AppendValue wrote in the run tagged
// tag; ok is false for any other value, or one too short to name its writer.
func ParseWriter(v []byte, tag string) (w Writer, ok bool) {
	rest, found := bytes.CutPrefix(v, []byte(tag+":"))
	if !found {
		return Writer{}, false
	}
	f := bytes.SplitN(rest, []byte(":"), 4)
	if len(f) != 4 {
		return Writer{}, false
	}
	c, err1 := strconv.Atoi(string(f[0]))
	t, err2 := strconv.Atoi(string(f[1]))
	seq, err3 := strconv.ParseInt(string(f[2]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Writer{}, false
	}
	return Writer{Client: c, Thread: t, Seq: seq}, true
}

// HasTag reports whether v could have been written by a run tagged tag: it
// starts with "tag:", or with as much of it as fits in size bytes.
func HasTag(v []byte, tag string, size int) bool {
	want := tag + ":"
	if len(want) > size {
		want = want[:size]
	}
	return len(v) >= len(want) && string(v[:len(want)]) == want
}

// Rand is the random source of one thread: keys and operations are drawn
// from it, so a thread's workload is reproducible from its seed.
type Rand struct {
	r      *rand.Rand
	picker Picker
	lo, n  int64
}

// NewRand returns the source of thread thread of client client in a run with
// seed seed, drawing operations from w.Mix and keys from [w.KeyMin, w.KeyMax).
func NewRand(seed uint64, client, thread int, w config.Workload) *Rand {
	src := rand.NewPCG(seed, uint64(client)<<32|uint64(thread))
	return &Rand{r: rand.New(src), picker: NewPicker(w.Mix), lo: w.KeyMin, n: w.KeyMax - w.KeyMin}
}

// Op draws an operation.
func (r *Rand) Op() Op { return r.picker.Pick(r.r.IntN(100)) }

// Key draws a key number.
func (r *Rand) Key() int64 { return r.lo + r.r.Int64N(r.n) }
