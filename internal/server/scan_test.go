package server

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/redcon"
)

// testLim is small so that every limit is easy to reach; the request limit is
// crossed inside a bulk body by requestTooLong below.
var testLim = Limits{MaxBulkLen: 32, MaxArgs: 4, MaxInlineLen: 16, MaxRequestLen: 100}

func respCmd(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// scanCuts feeds in to a fresh scanner in chunks ending at cuts (ascending) and
// returns the offset in in where it stopped, the error, and the scanner.
func scanCuts(t testing.TB, lim Limits, in []byte, cuts ...int) (int, error, *scanner) {
	s := &scanner{lim: lim}
	off := 0
	for _, end := range append(cuts, len(in)) {
		chunk := in[off:end]
		n, err := s.scan(chunk)
		if n < 0 || n > len(chunk) {
			t.Fatalf("scan(%q) = %d: out of range", chunk, n)
		}
		if err != nil {
			return off + n, err, s
		}
		if n != len(chunk) {
			t.Fatalf("scan(%q) = %d, nil: accepted part of a chunk without an error", chunk, n)
		}
		off = end
	}
	return len(in), nil, s
}

// splits calls fn with every way of cutting in into one, two, three and len(in)
// chunks (all pairs of cuts for short inputs).
func splits(in []byte, fn func(cuts []int)) {
	fn(nil)
	all := make([]int, 0, len(in))
	for k := 1; k < len(in); k++ {
		all = append(all, k)
	}
	fn(all)
	for k := 0; k <= len(in); k++ {
		fn([]int{k})
		if len(in) <= 160 {
			for j := k; j <= len(in); j++ {
				fn([]int{k, j})
			}
		}
	}
}

func TestScanValid(t *testing.T) {
	bulk32 := strings.Repeat("v", 32)
	tests := []struct{ name, in string }{
		{"ping", respCmd("PING")},
		{"set at the bulk limit", respCmd("SET", "k", bulk32)},
		{"empty bulk", respCmd("GET", "")},
		{"args at the limit", respCmd("MSET", "a", "1", "b")},
		{"bodies may hold protocol bytes", respCmd("SET", "*2\r\n$3", "\r\n\n\r$-1*")},
		{"request at the limit", "*3\r\n$30\r\n" + strings.Repeat("a", 30) + "\r\n$30\r\n" + strings.Repeat("b", 30) + "\r\n$15\r\n" + strings.Repeat("c", 15) + "\r\n"},
		{"pipeline", respCmd("SET", "k", bulk32) + respCmd("GET", "k") + respCmd("PING") + respCmd("SET", "k", bulk32)},
		{"inline", "PING\r\n"},
		{"inline at the limit", strings.Repeat("x", 15) + "\r\n"},
		{"inline without CR", "GET key\n"},
		{"inline then resp", "PING\r\n" + respCmd("GET", "k") + "ECHO hi\r\n"},
		{"blank lines", "\n\n" + respCmd("PING") + "\n"},
		{"leading zeros", "*01\r\n$04\r\nPING\r\n"},
		{"two resets of the request budget", strings.Repeat(respCmd("SET", "k", bulk32, "x"), 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			splits(in, func(cuts []int) {
				n, err, s := scanCuts(t, testLim, in, cuts...)
				if err != nil || n != len(in) {
					t.Fatalf("cuts %v: scan stopped at %d of %d: %v", cuts, n, len(in), err)
				}
				if s.state != stStart {
					t.Fatalf("cuts %v: after whole commands the scanner is in state %d, not at a command start", cuts, s.state)
				}
			})
			// Whatever the scanner passes, redcon reads as the same commands.
			if cmds := redconCommands(t, in); len(cmds) == 0 {
				t.Fatalf("redcon parsed no command from %q", in)
			}
		})
	}
}

func TestScanViolations(t *testing.T) {
	a30, b30 := strings.Repeat("a", 30), strings.Repeat("b", 30)
	// 83 bytes of headers and two bulks, then a third bulk that crosses 100 bytes.
	long := "*3\r\n$30\r\n" + a30 + "\r\n$30\r\n" + b30 + "\r\n$30\r\n" + strings.Repeat("c", 30) + "\r\n"
	tests := []struct {
		name string
		ok   string // the bytes within limits
		bad  string // from the byte that breaks a limit on
		msg  string
	}{
		{"bulk longer than the limit", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$33\r", "\n" + strings.Repeat("v", 33) + "\r\n", "invalid bulk length"},
		{"huge bulk length", "*2\r\n$3\r\nGET\r\n$99999999999\r", "\n", "invalid bulk length"},
		{"bulk length of 19 digits", "*1\r\n$000000000000000000", "1\r\n", "invalid bulk length"},
		{"negative bulk length", "*2\r\n$3\r\nGET\r\n$-5\r", "\n", "invalid bulk length"},
		{"null bulk in a request", "*1\r\n$-1\r", "\n", "invalid bulk length"},
		{"garbage bulk length", "*2\r\n$3\r\nGET\r\n$", "x\r\n", "invalid bulk length"},
		{"empty bulk length", "*1\r\n$", "\r\n", "invalid bulk length"},
		{"minus alone", "*1\r\n$-", "\r\n", "invalid bulk length"},
		{"two minus signs", "*1\r\n$-", "-1\r\n", "invalid bulk length"},
		{"minus after digits", "*1\r\n$1", "-\r\n", "invalid bulk length"},
		{"CR inside a bulk length", "*1\r\n$1\r", "0\r\nabcdefghij\r\n", "invalid bulk length"},
		{"bulk length without CR", "*1\r\n$4", "\nPING\r\n", "invalid bulk length"},
		{"too many arguments", "*5\r", "\n$1\r\na\r\n", "invalid multibulk length"},
		{"argument count of 19 digits", "*100000000000000000", "0\r\n", "invalid multibulk length"},
		{"negative argument count", "*-1\r", "\n", "invalid multibulk length"},
		{"binary argument count", "*", "\x00\xff\xfe\r\n", "invalid multibulk length"},
		{"empty argument count", "*", "\r\n", "invalid multibulk length"},
		{"argument count without CR", "*1", "\n$4\r\nPING\r\n", "invalid multibulk length"},
		{"CR inside an argument count", "*1\r", "2\r\n", "invalid multibulk length"},
		{"not a bulk", "*2\r\n$3\r\nGET\r\n", ":12\r\n", "expected '$', got ':'"},
		{"inline inside a multibulk", "*2\r\n$3\r\nGET\r\n", "key\r\n", "expected '$', got 'k'"},
		{"newline instead of a bulk", "*1\r\n", "\r\n", "expected '$', got ' '"},
		{"inline line too long", strings.Repeat("A", 16), "A\r\n", "too big inline request"},
		{"inline line too long after a command", respCmd("PING") + "GET " + strings.Repeat("k", 12), "k\r\n", "too big inline request"},
		{"inline line starting with CR", "\r*1\r\n$30\r\n" + strings.Repeat("a ", 8), strings.Repeat("a ", 7) + "\r\n", "too big inline request"},
		{"request longer than the limit", long[:100], long[100:], "request longer than 100 bytes"},
		{"request one byte too long", "*3\r\n$30\r\n" + a30 + "\r\n$30\r\n" + b30 + "\r\n$16\r\n" + strings.Repeat("c", 16) + "\r", "\n", "request longer than 100 bytes"},
		{"violation after valid commands", respCmd("PING") + "PING\r\n" + respCmd("GET", "k") + "*1\r\n$", "?", "invalid bulk length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.ok + tt.bad)
			want := "ERR Protocol error: " + tt.msg
			splits(in, func(cuts []int) {
				n, err, _ := scanCuts(t, testLim, in, cuts...)
				if err == nil {
					t.Fatalf("cuts %v: no violation found in %q", cuts, in)
				}
				var el *errLimit
				if !errors.As(err, &el) {
					t.Fatalf("cuts %v: err %T is not an *errLimit", cuts, err)
				}
				if err.Error() != want || n != len(tt.ok) {
					t.Fatalf("cuts %v: stopped at %d with %q; want %d (byte %q) with %q", cuts, n, err, len(tt.ok), in[len(tt.ok):][:min(1, len(tt.bad))], want)
				}
			})
		})
	}
}

func TestScanRequestLimitOnInline(t *testing.T) {
	lim := Limits{MaxBulkLen: 8, MaxArgs: 3, MaxInlineLen: 64, MaxRequestLen: 10}
	in := []byte("ECHO 12345678\r\n")
	splits(in, func(cuts []int) {
		n, err, _ := scanCuts(t, lim, in, cuts...)
		if n != 10 || err == nil || err.Error() != "ERR Protocol error: request longer than 10 bytes" {
			t.Fatalf("cuts %v: %d, %v", cuts, n, err)
		}
	})
}

// redconCommands parses in as the RESP server does and checks that each command is
// within testLim.
func redconCommands(t testing.TB, in []byte) []redcon.Command {
	rd := redcon.NewReader(bytes.NewReader(in))
	var out []redcon.Command
	for {
		cmds, err := rd.ReadCommands()
		out = append(out, cmds...)
		if err != nil {
			break
		}
	}
	maxArgs := max(testLim.MaxArgs, (testLim.MaxInlineLen+1)/2)
	maxArg := max(testLim.MaxBulkLen, testLim.MaxInlineLen)
	for _, c := range out {
		if len(c.Args) > maxArgs {
			t.Fatalf("the scanner passed %q, which the server reads as a command of %d arguments", in, len(c.Args))
		}
		total := 0
		for _, a := range c.Args {
			if len(a) > maxArg {
				t.Fatalf("the scanner passed %q, which the server reads as an argument of %d bytes", in, len(a))
			}
			total += len(a)
		}
		if total > testLim.MaxRequestLen {
			t.Fatalf("the scanner passed %q, which the server reads as a command of %d bytes", in, total)
		}
	}
	return out
}

func FuzzScan(f *testing.F) {
	for _, s := range []string{
		respCmd("SET", "k", strings.Repeat("v", 32)), respCmd("PING") + "PING\r\n", "*5\r\n", "*-1\r\n", "$3\r\n",
		"*1\r\n$33\r\n", "*1\r\n$1\r0\r\n", "\r*1\r\n$30\r\n" + strings.Repeat("a ", 15) + "\r\n", "\n\n\r\n",
		"*3\r\n$30\r\n" + strings.Repeat("a", 30) + "\r\n$30\r\n" + strings.Repeat("b", 30) + "\r\n$30\r\n",
		"*2\r\n$3\r\nGET\r\n:1\r\n", strings.Repeat("x", 40),
	} {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		n, err, _ := scanCuts(t, testLim, in)
		if (err == nil) != (n == len(in)) {
			t.Fatalf("scan = %d of %d, %v", n, len(in), err)
		}
		// The same stream in other chunks stops at the same byte with the same error.
		var cuts []int
		for k := 1; k < len(in); k++ {
			cuts = append(cuts, k)
		}
		k := 0
		if len(in) > 0 {
			k = int(cut) % (len(in) + 1)
		}
		for _, cs := range [][]int{cuts, {k}} {
			n2, err2, _ := scanCuts(t, testLim, in, cs...)
			if n2 != n || fmt.Sprint(err2) != fmt.Sprint(err) {
				t.Fatalf("whole: %d, %v; cuts %v: %d, %v", n, err, cs, n2, err2)
			}
		}
		// The server's parser reads no command beyond the limits from the bytes
		// the scanner passed.
		redconCommands(t, in[:n])
	})
}

func BenchmarkScan(b *testing.B) {
	var stream []byte
	for i := range 1000 {
		stream = append(stream, respCmd("SET", fmt.Sprintf("key:%d", i), strings.Repeat("v", 100))...)
		stream = append(stream, respCmd("GET", fmt.Sprintf("key:%d", i))...)
	}
	lim := Limits{MaxBulkLen: 64 << 20, MaxArgs: 1 << 20, MaxInlineLen: 64 << 10, MaxRequestLen: 128 << 20}
	s := &scanner{lim: lim}
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		for p := stream; len(p) > 0; {
			k := min(len(p), 16<<10) // socket-sized reads
			if _, err := s.scan(p[:k]); err != nil {
				b.Fatal(err)
			}
			p = p[k:]
		}
	}
}

func ExampleLimits() {
	s := scanner{lim: Limits{MaxBulkLen: 5, MaxArgs: 3, MaxInlineLen: 16, MaxRequestLen: 100}}
	in := []byte("*2\r\n$3\r\nGET\r\n$6\r\nfoobar\r\n")
	n, err := s.scan(in)
	fmt.Printf("%q\n%v\n", in[:n], err)
	// Output:
	// "*2\r\n$3\r\nGET\r\n$6\r"
	// ERR Protocol error: invalid bulk length
}
