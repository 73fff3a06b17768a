package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func read(in string, size int) ([]byte, error) {
	return ReadReply(bufio.NewReaderSize(strings.NewReader(in), size), nil)
}

func TestReadReplyValid(t *testing.T) {
	nested := "*2\r\n*3\r\n:1\r\n$-1\r\n+x\r\n*0\r\n"
	tests := []string{
		"+OK\r\n",
		"+\r\n",
		"-ERR unknown command 'x'\r\n",
		"-MOVED 3999 127.0.0.1:7002\r\n",
		":0\r\n",
		":-9223372036854775808\r\n",
		"$0\r\n\r\n",
		"$-1\r\n",
		"$5\r\nhello\r\n",
		"$4\r\na\r\nb\r\n", // CRLF inside a bulk is data
		"$3\r\n\x00\xff\n\r\n",
		"*-1\r\n",
		"*0\r\n",
		"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n",
		nested,
		"+" + strings.Repeat("s", 9000) + "\r\n", // longer than the bufio buffer
		"$100000\r\n" + strings.Repeat("b", 100000) + "\r\n",
	}
	for _, in := range tests {
		for _, size := range []int{16, 4096} {
			got, err := read(in, size)
			if err != nil {
				t.Errorf("ReadReply(%.40q) with a %d-byte buffer: %v", in, size, err)
				continue
			}
			if string(got) != in {
				t.Errorf("ReadReply(%.40q) = %.40q", in, got)
			}
		}
	}
}

// TestReadReplyOneAtATime reads a stream of replies: each call must take exactly one
// reply and leave the next in the reader, whatever the reads underneath return.
func TestReadReplyOneAtATime(t *testing.T) {
	replies := []string{"+OK\r\n", "$3\r\nfoo\r\n", "*2\r\n:1\r\n-ERR x\r\n", "$-1\r\n", ":42\r\n", "*1\r\n*1\r\n*1\r\n+deep\r\n"}
	stream := strings.Join(replies, "")
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(stream),
		"one byte": iotest.OneByteReader(strings.NewReader(stream)),
		"half":     iotest.HalfReader(strings.NewReader(stream)),
	} {
		br := bufio.NewReaderSize(r, 16)
		for i, want := range replies {
			got, err := ReadReply(br, nil)
			if err != nil || string(got) != want {
				t.Fatalf("%s: reply %d = %q, %v; want %q", name, i, got, err, want)
			}
		}
		if _, err := ReadReply(br, nil); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: after the last reply: err = %v, want io.EOF", name, err)
		}
	}
}

func TestReadReplyAppends(t *testing.T) {
	dst := []byte("prefix:")
	got, err := ReadReply(bufio.NewReader(strings.NewReader("$3\r\nabc\r\n")), dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "prefix:$3\r\nabc\r\n" {
		t.Fatalf("got %q", got)
	}
	// With room to spare, ReadReply appends in place.
	buf := make([]byte, 0, 64)
	got, err = ReadReply(bufio.NewReader(strings.NewReader("*1\r\n$2\r\nhi\r\n")), buf)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &buf[:1][0] {
		t.Error("ReadReply reallocated although dst had room")
	}
}

func TestReadReplyErrors(t *testing.T) {
	tests := []struct {
		name, in string
		protocol bool // errors.Is(err, ErrProtocol); otherwise a read error
	}{
		{"empty", "", false},
		{"no line end", "+OK", false},
		{"LF without CR", "+OK\n", true},
		{"too short", "\r\n", true},
		{"unknown type", "!3\r\n", true},
		{"RESP3 map", "%1\r\n+a\r\n+b\r\n", true},
		{"bulk length not a number", "$x\r\n", true},
		{"bulk length empty", "$\r\n", true},
		{"bulk length below -1", "$-2\r\n", true},
		{"bulk length too big", fmt.Sprintf("$%d\r\n", MaxReplyLen+1), true},
		{"bulk short", "$5\r\nabc\r\n", false},
		{"bulk not terminated", "$3\r\nabcde", true},
		{"bulk terminated by LF only", "$3\r\nabc\n\n", true},
		{"array length not a number", "*a\r\n", true},
		{"array length below -1", "*-5\r\n", true},
		{"array short", "*3\r\n:1\r\n:2\r\n", false},
		{"bad element", "*2\r\n:1\r\n?\r\n", true},
		{"too deep", strings.Repeat("*1\r\n", 66) + ":1\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := read(tt.in, 16)
			if err == nil {
				t.Fatalf("ReadReply = %q, want an error", got)
			}
			if got != nil {
				t.Errorf("ReadReply returned %q with the error", got)
			}
			if errors.Is(err, ErrProtocol) != tt.protocol {
				t.Errorf("err = %v; errors.Is(err, ErrProtocol) = %v, want %v", err, !tt.protocol, tt.protocol)
			}
			if !tt.protocol && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("err = %v, want it to wrap the read error (EOF)", err)
			}
		})
	}
}

func TestReadReplyDepthLimit(t *testing.T) {
	ok := strings.Repeat("*1\r\n", 64) + ":1\r\n"
	if _, err := read(ok, 4096); err != nil {
		t.Errorf("64 levels of nesting: %v", err)
	}
	if _, err := read("*1\r\n"+ok, 4096); !errors.Is(err, ErrProtocol) {
		t.Errorf("65 levels of nesting: err = %v, want ErrProtocol", err)
	}
}

// TestReadReplyHugeHeaderAllocatesLazily: a bulk header that announces a huge length
// must not make the reader allocate that much before the bytes arrive.
func TestReadReplyHugeHeaderAllocatesLazily(t *testing.T) {
	in := fmt.Sprintf("$%d\r\nonly a few bytes", MaxReplyLen)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := read(in, 4096)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Fatalf("reading a %d-byte header allocated %d bytes", len(in), alloc)
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", "-ERR x\r\n", ":1\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n",
		"*2\r\n$1\r\na\r\n*1\r\n:5\r\n", "$999999999\r\nab", "*99999999\r\n:1\r\n", strings.Repeat("*1\r\n", 70),
		"$3\r\nabcde", "+OK\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, size := range []int{16, 4096} {
			got, err := ReadReply(bufio.NewReaderSize(bytes.NewReader(in), size), nil)
			if err != nil {
				if got != nil {
					t.Fatalf("reply %q returned with error %v", got, err)
				}
				continue
			}
			// A reply is a prefix of the input, ends with CRLF, and reading it again
			// alone gives the same reply.
			if !bytes.HasPrefix(in, got) || !bytes.HasSuffix(got, []byte("\r\n")) {
				t.Fatalf("reply %q is not a CRLF-terminated prefix of %q", got, in)
			}
			again, err := ReadReply(bufio.NewReader(bytes.NewReader(got)), nil)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("re-reading reply %q: %q, %v", got, again, err)
			}
		}
	})
}

func BenchmarkReadReply(b *testing.B) {
	reply := "*3\r\n$3\r\nfoo\r\n$-1\r\n$30\r\n" + strings.Repeat("v", 30) + "\r\n"
	stream := strings.NewReader(strings.Repeat(reply, 1000))
	r := bufio.NewReader(stream)
	var dst []byte
	b.SetBytes(int64(len(reply)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			stream.Seek(0, io.SeekStart)
			r.Reset(stream)
		}
		var err error
		if dst, err = ReadReply(r, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleReadReply() {
	r := bufio.NewReader(strings.NewReader("*2\r\n$3\r\nfoo\r\n:1\r\n+OK\r\n"))
	for {
		reply, err := ReadReply(r, nil)
		if err != nil {
			break
		}
		fmt.Printf("%q\n", reply)
	}
	// Output:
	// "*2\r\n$3\r\nfoo\r\n:1\r\n"
	// "+OK\r\n"
}
