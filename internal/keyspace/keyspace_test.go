package keyspace

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// crc16Bitwise is a table-free reference implementation of CRC16-XMODEM.
func crc16Bitwise(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func TestCRC16(t *testing.T) {
	tests := []struct {
		in   string
		want uint16
	}{
		{"", 0},
		{"123456789", 0x31C3},
		{"A", 0x58E5},
		{"foo", 0xAF96},
	}
	for _, tt := range tests {
		if got := CRC16([]byte(tt.in)); got != tt.want {
			t.Errorf("CRC16(%q) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
}

func TestCRC16MatchesBitwise(t *testing.T) {
	buf := make([]byte, 0, 512)
	for i := range 512 {
		if got, want := CRC16(buf), crc16Bitwise(buf); got != want {
			t.Fatalf("CRC16(%d bytes) = %#04x, bitwise reference %#04x", len(buf), got, want)
		}
		buf = append(buf, byte(i*31+7))
	}
}

func TestHashTag(t *testing.T) {
	tests := []struct {
		key, want string
	}{
		{"", ""},
		{"foo", "foo"},
		{"{user1000}.following", "user1000"},
		{"{user1000}.followers", "user1000"},
		{"foo{}{bar}", "foo{}{bar}"},
		{"foo{{bar}}zap", "{bar"},
		{"foo{bar}{zap}", "bar"},
		{"{}", "{}"},
		{"{", "{"},
		{"}", "}"},
		{"}{", "}{"},
		{"foo}bar{", "foo}bar{"},
		{"foo{bar", "foo{bar"},
		{"{a}", "a"},
		{"x{a}", "a"},
		{"key:{tag}:1", "tag"},
		{"a{b\x00c}d", "b\x00c"},
	}
	for _, tt := range tests {
		if got := HashTag([]byte(tt.key)); string(got) != tt.want {
			t.Errorf("HashTag(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestSlotKnownValues(t *testing.T) {
	tests := []struct {
		key  string
		want int
	}{
		{"", 0},
		{"foo", 12182},
		{"bar", 5061},
		{"hello", 866},
		{"123456789", 0x31C3},
		{"{user1000}.following", 3443}, // cross-checked with Python binascii.crc_hqx
		{"user1000", 3443},
	}
	for _, tt := range tests {
		if got := Slot([]byte(tt.key)); got != tt.want {
			t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.want)
		}
		if got := SlotOf(tt.key); got != tt.want {
			t.Errorf("SlotOf(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

func TestSlotSharedTags(t *testing.T) {
	pairs := [][2]string{
		{"{user1000}.following", "{user1000}.followers"},
		{"key:{tag}:1", "key:{tag}:2"},
		{"foo{bar}{zap}", "{bar}"},
		{"foo{{bar}}zap", "x{{bar}"},
	}
	for _, p := range pairs {
		if a, b := SlotOf(p[0]), SlotOf(p[1]); a != b {
			t.Errorf("SlotOf(%q) = %d, SlotOf(%q) = %d; want equal", p[0], a, p[1], b)
		}
	}
}

func TestSlotOfDoesNotAllocate(t *testing.T) {
	keys := []string{"", "foo", "{user1000}.following", strings.Repeat("k", 300)}
	var sink int
	allocs := testing.AllocsPerRun(100, func() {
		for _, k := range keys {
			sink += SlotOf(k)
		}
	})
	if allocs != 0 {
		t.Errorf("SlotOf allocated %v times per run, want 0", allocs)
	}
	_ = sink
}

func TestRange(t *testing.T) {
	tests := []struct {
		r     Range
		len   int
		str   string
		in    []int
		notIn []int
	}{
		{Range{0, 5460}, 5461, "0-5460", []int{0, 1, 5460}, []int{-1, 5461}},
		{Range{42, 42}, 1, "42", []int{42}, []int{41, 43}},
		{Range{0, Slots - 1}, Slots, "0-16383", []int{0, Slots - 1}, []int{Slots}},
		{Range{10, 9}, 0, "10-9", nil, []int{9, 10}},
	}
	for _, tt := range tests {
		if got := tt.r.Len(); got != tt.len {
			t.Errorf("%#v.Len() = %d, want %d", tt.r, got, tt.len)
		}
		if got := tt.r.String(); got != tt.str {
			t.Errorf("%#v.String() = %q, want %q", tt.r, got, tt.str)
		}
		for _, s := range tt.in {
			if !tt.r.Contains(s) {
				t.Errorf("%v.Contains(%d) = false, want true", tt.r, s)
			}
		}
		for _, s := range tt.notIn {
			if tt.r.Contains(s) {
				t.Errorf("%v.Contains(%d) = true, want false", tt.r, s)
			}
		}
	}
}

func TestSplitRedisLayout(t *testing.T) {
	tests := []struct {
		n    int
		want []string
	}{
		{1, []string{"0-16383"}},
		{2, []string{"0-8191", "8192-16383"}},
		{3, []string{"0-5460", "5461-10922", "10923-16383"}},
		{6, []string{"0-2730", "2731-5460", "5461-8191", "8192-10922", "10923-13652", "13653-16383"}},
	}
	for _, tt := range tests {
		ranges, err := Split(tt.n)
		if err != nil {
			t.Fatalf("Split(%d): %v", tt.n, err)
		}
		var got []string
		for _, r := range ranges {
			got = append(got, r.String())
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("Split(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

// redisCLISplit reproduces the slot allocation of redis-cli --cluster create
// (clusterManagerCommandCreate), including its float32 arithmetic.
func redisCLISplit(n int) []Range {
	perNode := float32(Slots) / float32(n)
	var cursor float32
	first := 0
	out := make([]Range, 0, n)
	for i := range n {
		last := int(math.Round(float64(cursor + perNode - 1)))
		if last > Slots || i == n-1 {
			last = Slots - 1
		}
		if last < first {
			last = first
		}
		out = append(out, Range{first, last})
		first = last + 1
		cursor += perNode
	}
	return out
}

func TestSplitMatchesRedisCLI(t *testing.T) {
	// From n=78 on, redis-cli's float32 cursor drifts; see Split.
	for n := 1; n <= 77; n++ {
		got, err := Split(n)
		if err != nil {
			t.Fatalf("Split(%d): %v", n, err)
		}
		want := redisCLISplit(n)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("Split(%d)[%d] = %v, redis-cli gives %v", n, i, got[i], want[i])
			}
		}
	}
}

func TestSplitCoversEverySlotOnce(t *testing.T) {
	counts := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 77, 78, 1000, 2688, Slots - 1, Slots}
	for _, n := range counts {
		ranges, err := Split(n)
		if err != nil {
			t.Fatalf("Split(%d): %v", n, err)
		}
		if len(ranges) != n {
			t.Fatalf("Split(%d) returned %d ranges", n, len(ranges))
		}
		next, minLen, maxLen := 0, Slots, 0
		for i, r := range ranges {
			if r.Start != next {
				t.Fatalf("Split(%d)[%d] = %v starts at %d, want %d", n, i, r, r.Start, next)
			}
			if r.Len() < 1 {
				t.Fatalf("Split(%d)[%d] = %v is empty", n, i, r)
			}
			minLen, maxLen = min(minLen, r.Len()), max(maxLen, r.Len())
			next = r.End + 1
		}
		if next != Slots {
			t.Errorf("Split(%d) ends at slot %d, want %d", n, next-1, Slots-1)
		}
		if maxLen-minLen > 1 {
			t.Errorf("Split(%d) range sizes span %d..%d, want a difference of at most 1", n, minLen, maxLen)
		}
	}
}

func TestSplitInvalid(t *testing.T) {
	for _, n := range []int{-1, 0, Slots + 1} {
		if r, err := Split(n); err == nil || !errors.Is(err, ErrSplitCount) || r != nil {
			t.Errorf("Split(%d) = %v, %v; want nil, ErrSplitCount", n, r, err)
		}
	}
}

func FuzzHashTag(f *testing.F) {
	for _, s := range []string{"", "foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "}{", "{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		tag := HashTag(key)
		if bytes.Equal(tag, key) {
			return
		}
		// A proper tag: non-empty, free of '}', and found right after the
		// key's first '{'.
		open := bytes.IndexByte(key, '{')
		if len(tag) == 0 || bytes.IndexByte(tag, '}') >= 0 || open < 0 ||
			!bytes.HasPrefix(key[open+1:], append(tag, '}')) {
			t.Fatalf("HashTag(%q) = %q is not the first {tag}", key, tag)
		}
		if Slot(key) != Slot(tag) {
			t.Fatalf("Slot(%q) != Slot(%q)", key, tag)
		}
	})
}

func FuzzSlot(f *testing.F) {
	f.Add([]byte("foo"), []byte("user1000"), []byte(".following"), []byte("x"))
	f.Add([]byte(""), []byte("{"), []byte("}"), []byte("{}"))
	f.Fuzz(func(t *testing.T, prefix, tag, suffix1, suffix2 []byte) {
		for _, k := range [][]byte{prefix, tag, suffix1, suffix2} {
			s := Slot(k)
			if s < 0 || s >= Slots {
				t.Fatalf("Slot(%q) = %d, out of range", k, s)
			}
			if s2 := SlotOf(string(k)); s2 != s {
				t.Fatalf("SlotOf(%q) = %d, Slot = %d", k, s2, s)
			}
			if want := int(crc16Bitwise(HashTag(k)) % Slots); s != want {
				t.Fatalf("Slot(%q) = %d, bitwise reference %d", k, s, want)
			}
		}
		// Build two keys with the same tag: the prefix must not open a tag
		// of its own and the tag must not close early.
		prefix = bytes.ReplaceAll(prefix, []byte("{"), nil)
		tag = bytes.ReplaceAll(tag, []byte("}"), nil)
		if len(tag) == 0 {
			return
		}
		k1 := slices.Concat(prefix, []byte("{"), tag, []byte("}"), suffix1)
		k2 := slices.Concat([]byte("{"), tag, []byte("}"), suffix2)
		if Slot(k1) != Slot(k2) || Slot(k1) != Slot(tag) {
			t.Fatalf("keys %q and %q share tag %q but have slots %d and %d (tag %d)",
				k1, k2, tag, Slot(k1), Slot(k2), Slot(tag))
		}
	})
}

func BenchmarkSlot(b *testing.B) {
	keys := [][]byte{
		[]byte("foo"),
		[]byte("user:1000:profile"),
		[]byte("{user1000}.following"),
		[]byte("session:8f14e45fceea167a5a36dedd4bea2543"),
	}
	for _, k := range keys {
		b.Run(string(k), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(k)))
			for b.Loop() {
				Slot(k)
			}
		})
	}
}

func BenchmarkSlotOf(b *testing.B) {
	key := "session:8f14e45fceea167a5a36dedd4bea2543"
	b.ReportAllocs()
	for b.Loop() {
		SlotOf(key)
	}
}

func BenchmarkCRC16(b *testing.B) {
	buf := bytes.Repeat([]byte("0123456789abcdef"), 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		CRC16(buf)
	}
}
