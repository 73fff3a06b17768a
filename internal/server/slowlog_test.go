package server

import (
	"strings"
	"testing"
)

func TestSlowArgsTruncateAsRedis(t *testing.T) {
	args := make([][]byte, 40)
	for i := range args {
		args[i] = []byte("a")
	}
	args[1] = []byte(strings.Repeat("x", 130))
	got := slowArgs(args)
	if len(got) != 32 || got[31] != "... (9 more arguments)" || got[1] != strings.Repeat("x", 128)+"... (2 more bytes)" || got[2] != "a" {
		t.Fatalf("slowArgs = %q", got)
	}
	if got := slowArgs(args[:32]); len(got) != 32 || got[31] != "a" {
		t.Fatalf("slowArgs of 32 arguments = %q", got)
	}
}

// TestSlowlogSkipsPasswordsAndBounds: AUTH and HELLO are never logged, and the log
// keeps at most slowlog-max-len entries, newest first.
func TestSlowlogSkipsPasswordsAndBounds(t *testing.T) {
	addr := startNode(t, nil)
	c, err := dialRESP(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, args := range [][]string{
		{"CONFIG", "SET", "slowlog-log-slower-than", "0", "slowlog-max-len", "3"},
		{"SLOWLOG", "RESET"}, {"AUTH", "secret"}, {"HELLO", "2", "AUTH", "default", "secret"},
		{"ECHO", "1"}, {"ECHO", "2"}, {"ECHO", "3"},
	} {
		if _, err := c.do(args...); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.do("SLOWLOG", "GET", "-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r, "*3\r\n") || strings.Contains(r, "secret") || strings.Count(r, "ECHO") != 3 ||
		strings.Index(r, "$1\r\n3\r\n") > strings.Index(r, "$1\r\n1\r\n") {
		t.Fatalf("SLOWLOG GET -1 = %q; want the 3 ECHOs, newest first, and no password", r)
	}
}
