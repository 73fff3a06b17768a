package server

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dhtkv/dht/internal/store"
)

func TestParseSet(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	sec := strconv.FormatInt(now.Unix(), 10)
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	const invalidExpire = "ERR invalid expire time in 'set' command"
	tests := []struct {
		opts string // after SET key value
		want store.SetArgs
		err  string
	}{
		{"", store.SetArgs{}, ""},
		{"NX", store.SetArgs{Mode: store.SetIfAbsent}, ""},
		{"xx", store.SetArgs{Mode: store.SetIfPresent}, ""},
		{"Nx GET", store.SetArgs{Mode: store.SetIfAbsent, Get: true}, ""},
		{"get", store.SetArgs{Get: true}, ""},
		{"NX XX", store.SetArgs{}, errSyntax},
		{"XX NX", store.SetArgs{}, errSyntax},
		{"XX GET NX", store.SetArgs{}, errSyntax},
		{"NX NX", store.SetArgs{Mode: store.SetIfAbsent}, ""},
		{"XX GET XX GET", store.SetArgs{Mode: store.SetIfPresent, Get: true}, ""},
		{"EX 10 EX 20", store.SetArgs{TTL: 20 * time.Second}, ""},
		{"KEEPTTL KEEPTTL", store.SetArgs{KeepTTL: true}, ""},
		{"EX 10 EXAT 20", store.SetArgs{}, errSyntax},

		{"EX 10", store.SetArgs{TTL: 10 * time.Second}, ""},
		{"ex 1", store.SetArgs{TTL: time.Second}, ""},
		{"PX 1500", store.SetArgs{TTL: 1500 * time.Millisecond}, ""},
		{"px 1", store.SetArgs{TTL: time.Millisecond}, ""},
		{"NX EX 5 GET", store.SetArgs{Mode: store.SetIfAbsent, TTL: 5 * time.Second, Get: true}, ""},
		{"EX", store.SetArgs{}, errSyntax},
		{"NX PX", store.SetArgs{}, errSyntax},
		{"EX 0", store.SetArgs{}, invalidExpire},
		{"EX -10", store.SetArgs{}, invalidExpire},
		{"PX 0", store.SetArgs{}, invalidExpire},
		{"EX 70368744177665", store.SetArgs{}, invalidExpire},
		{"EX ten", store.SetArgs{}, errNotInt},
		{"EX 1.5", store.SetArgs{}, errNotInt},
		{"PX 99999999999999999999", store.SetArgs{}, errNotInt},
		{"EX 10 PX 100", store.SetArgs{}, errSyntax},
		{"PX 100 EXAT " + sec, store.SetArgs{}, errSyntax},

		{"EXAT " + strconv.FormatInt(now.Unix()+100, 10), store.SetArgs{TTL: 100 * time.Second}, ""},
		{"PXAT " + strconv.FormatInt(now.UnixMilli()+1500, 10), store.SetArgs{TTL: 1500 * time.Millisecond}, ""},
		// An expiry in the past or now: written and gone at once.
		{"EXAT " + sec, store.SetArgs{TTL: time.Nanosecond}, ""},
		{"EXAT 1", store.SetArgs{TTL: time.Nanosecond}, ""},
		{"PXAT " + ms, store.SetArgs{TTL: time.Nanosecond}, ""},
		{"pxat 1", store.SetArgs{TTL: time.Nanosecond}, ""},
		{"EXAT 0", store.SetArgs{}, invalidExpire},

		{"KEEPTTL", store.SetArgs{KeepTTL: true}, ""},
		{"XX KEEPTTL GET", store.SetArgs{Mode: store.SetIfPresent, KeepTTL: true, Get: true}, ""},
		{"KEEPTTL EX 10", store.SetArgs{}, errSyntax},
		{"EX 10 KEEPTTL", store.SetArgs{}, errSyntax},
		{"PXAT " + ms + " KEEPTTL", store.SetArgs{}, errSyntax},

		{"FOO", store.SetArgs{}, errSyntax},
		{"NX 10", store.SetArgs{}, errSyntax},
		{"EX 10 20", store.SetArgs{}, errSyntax},
	}
	for _, tt := range tests {
		args := [][]byte{[]byte("SET"), []byte("key"), []byte("value")}
		for _, f := range strings.Fields(tt.opts) {
			args = append(args, []byte(f))
		}
		got, err := parseSet(args, now)
		if err != tt.err {
			t.Errorf("SET key value %s: error %q, want %q", tt.opts, err, tt.err)
			continue
		}
		if tt.err == "" && got != tt.want {
			t.Errorf("SET key value %s = %+v, want %+v", tt.opts, got, tt.want)
		}
	}
}

// TestParseSetLongExpiries: expiries too long for a time.Duration saturate; they must
// not wrap around into the past (which would delete the key at once).
func TestParseSetLongExpiries(t *testing.T) {
	now := time.Now()
	for _, opts := range [][]string{
		{"EX", "10000000000"},      // 317 years: 1e19 ns overflows int64
		{"EX", "70368744177664"},   // the largest accepted
		{"PX", "10000000000000"},   // 317 years in ms
		{"PX", "70368744177664"},   // the largest accepted
		{"EXAT", "70368744177664"}, // far past year 292277026596
		{"PXAT", "70368744177664"}, // year 4200
	} {
		args := append([][]byte{[]byte("SET"), []byte("k"), []byte("v")}, []byte(opts[0]), []byte(opts[1]))
		got, err := parseSet(args, now)
		if err != "" {
			t.Errorf("SET k v %s: %s", opts, err)
			continue
		}
		if got.TTL < 100*365*24*time.Hour {
			t.Errorf("SET k v %s: TTL = %v, want more than a century", opts, got.TTL)
		}
	}
	// Just below the overflow, EX is exact.
	n := int64(math.MaxInt64 / int64(time.Second))
	got, err := parseSet([][]byte{[]byte("SET"), []byte("k"), []byte("v"), []byte("EX"), []byte(strconv.FormatInt(n, 10))}, now)
	if err != "" || got.TTL != time.Duration(n)*time.Second {
		t.Errorf("EX %d: TTL %v, %s", n, got.TTL, err)
	}
}

// TestSetLongExpiryKeepsKey checks the whole way to the store: a very long EX keeps
// the key.
func TestSetLongExpiryKeepsKey(t *testing.T) {
	st := store.New(store.Options{Stripes: 1})
	args := [][]byte{[]byte("SET"), []byte("k"), []byte("v"), []byte("EX"), []byte("10000000000")}
	a, err := parseSet(args, time.Now())
	if err != "" {
		t.Fatal(err)
	}
	if r := st.Set(args[1], args[2], a); !r.Written {
		t.Fatal("not written")
	}
	if _, ok := st.Get([]byte("k")); !ok {
		t.Fatal("SET k v EX 10000000000 left no key: the TTL wrapped into the past")
	}
}

func BenchmarkParseSet(b *testing.B) {
	args := [][]byte{[]byte("SET"), []byte("key"), []byte("value"), []byte("NX"), []byte("PX"), []byte("30000"), []byte("GET")}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseSet(args, now); err != "" {
			b.Fatal(err)
		}
	}
}
