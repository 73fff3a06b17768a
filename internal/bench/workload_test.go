package bench

import (
	"strings"
	"testing"

	"github.com/dhtkv/dht/internal/config"
)

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want config.Mix
	}{
		{"get=60,put_if_absent=40", config.Mix{Get: 60, PutIfAbsent: 40}},
		{"get=60, put=20, multi_put=20", config.Mix{Get: 60, Put: 20, MultiPut: 20}},
		{"setnx=100", config.Mix{PutIfAbsent: 100}},
		{"mset=50,set=50", config.Mix{Put: 50, MultiPut: 50}},
	} {
		got, err := ParseMix(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseMix(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if back, err := ParseMix(FormatMix(got)); err != nil || back != got {
			t.Errorf("FormatMix round trip of %+v: %q -> %+v, %v", got, FormatMix(got), back, err)
		}
	}
	for _, bad := range []string{"get", "get=x", "get=101", "get=-1", "del=10", "get=50,get=50"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) succeeded", bad)
		}
	}
}

func TestPickerFollowsMix(t *testing.T) {
	p := NewPicker(config.Mix{Get: 60, PutIfAbsent: 20, MultiPut: 20})
	var n [NumOps]int
	for r := range 100 {
		n[p.Pick(r)]++
	}
	if n != [NumOps]int{60, 20, 0, 20} {
		t.Fatalf("one draw per percent gave %v, want [60 20 0 20]", n)
	}
}

func TestRandStaysInRange(t *testing.T) {
	w := config.Default().Workload
	w.KeyMin, w.KeyMax = 100, 110
	r := NewRand(1, 2, 3, w)
	seen := map[int64]bool{}
	for range 1000 {
		k := r.Key()
		if k < 100 || k >= 110 {
			t.Fatalf("key %d outside [100, 110)", k)
		}
		seen[k] = true
	}
	if len(seen) != 10 {
		t.Errorf("1000 draws hit %d of 10 keys", len(seen))
	}
	a, b := NewRand(7, 0, 1, w), NewRand(7, 0, 1, w)
	for range 100 {
		if a.Key() != b.Key() || a.Op() != b.Op() {
			t.Fatal("same seed, client and thread drew different workloads")
		}
	}
}

func TestKeyAndValue(t *testing.T) {
	if got := (Keys{Prefix: "key:"}).Key(17); got != "key:17" {
		t.Errorf("Key(17) = %q", got)
	}
	w := Writer{Client: 2, Thread: 5, Seq: 1234}
	v := AppendValue(nil, "abc123", w, 30)
	if len(v) != 30 || !strings.HasPrefix(string(v), "abc123:2:5:1234:") || strings.Trim(string(v[16:]), ".") != "" {
		t.Errorf("value = %q", v)
	}
	if !HasTag(v, "abc123", 30) || HasTag(v, "abc124", 30) {
		t.Error("HasTag does not recognise the run tag")
	}
	short := AppendValue([]byte("x"), "abc123", w, 4)
	if string(short) != "xabc1" {
		t.Errorf("truncated value = %q, want the first 4 bytes of the header after the prefix", short)
	}
	if !HasTag(short[1:], "abc123", 4) {
		t.Error("HasTag rejects a truncated value of the run")
	}
}
