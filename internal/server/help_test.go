package server

import (
	"bufio"
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestHelpOfContainerCommands asks each container command for HELP, as Redis 7
// answers it: an array of status lines, a heading, each subcommand with its
// description, HELP last. Every subcommand listed must work, and every one dht
// supports must be listed.
func TestHelpOfContainerCommands(t *testing.T) {
	addr := startNode(t, nil)
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	defer c.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		command string
		subs    []string
		try     map[string][]any // arguments to run a listed subcommand with
	}{
		{"CLUSTER", []string{"COUNTKEYSINSLOT", "INFO", "KEYSLOT", "MYID", "NODES", "SHARDS", "SLOTS"},
			map[string][]any{"COUNTKEYSINSLOT": {"0"}, "KEYSLOT": {"foo"}}},
		{"CLIENT", []string{"GETNAME", "ID", "INFO", "KILL", "LIST", "REPLY", "SETINFO", "SETNAME", "NO-EVICT", "NO-TOUCH"},
			map[string][]any{"SETINFO": {"LIB-NAME", "test"}, "SETNAME": {"me"}, "KILL": {"ADDR", "192.0.2.1:1"},
				"REPLY": {"ON"}, "NO-EVICT": {"OFF"}, "NO-TOUCH": {"OFF"}}},
		{"CONFIG", []string{"GET", "SET", "RESETSTAT"}, map[string][]any{"GET": {"maxclients"}, "SET": {"slowlog-max-len", "128"}}},
		{"OBJECT", []string{"ENCODING", "FREQ", "IDLETIME", "REFCOUNT"}, map[string][]any{"ENCODING": {"k"}, "FREQ": {"k"}, "IDLETIME": {"k"}, "REFCOUNT": {"k"}}},
		{"MEMORY", []string{"STATS", "USAGE"}, map[string][]any{"USAGE": {"k"}}},
		{"SLOWLOG", []string{"GET", "LEN", "RESET"}, nil},
		{"COMMAND", []string{"COUNT", "LIST", "INFO", "DOCS", "GETKEYS", "GETKEYSANDFLAGS"},
			map[string][]any{"INFO": {"get"}, "GETKEYS": {"get", "k"}, "GETKEYSANDFLAGS": {"get", "k"}}},
	} {
		t.Run(tc.command, func(t *testing.T) {
			lines, err := c.Do(ctx, strings.ToLower(tc.command), "help").StringSlice()
			if err != nil {
				t.Fatalf("%s HELP: %v", tc.command, err)
			}
			if len(lines) < 3 || lines[0] != tc.command+" <subcommand> [<arg> [value] [opt] ...]. Subcommands are:" ||
				lines[len(lines)-2] != "HELP" || lines[len(lines)-1] != "    Prints this help." {
				t.Fatalf("%s HELP = %q", tc.command, lines)
			}
			var listed []string
			for _, l := range lines[1 : len(lines)-2] {
				if !strings.HasPrefix(l, "    ") {
					name, _, _ := strings.Cut(l, " ")
					listed = append(listed, name)
				}
			}
			for _, sub := range tc.subs {
				if !slices.Contains(listed, sub) {
					t.Errorf("%s HELP does not list %s: %q", tc.command, sub, lines)
				}
			}
			for _, sub := range listed {
				if sub == "(no" {
					continue
				}
				err := c.Do(ctx, append([]any{tc.command, sub}, tc.try[sub]...)...).Err()
				if err != nil && err != redis.Nil {
					t.Errorf("%s %s, listed by HELP: %v", tc.command, sub, err)
				}
			}
			if err := c.Do(ctx, tc.command, "help", "x").Err(); err == nil || !strings.Contains(err.Error(), "wrong number of arguments") {
				t.Errorf("%s HELP x: %v, want a wrong number of arguments", tc.command, err)
			}
		})
	}

	// The reply is status lines, not bulk strings, as in Redis.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("*2\r\n$6\r\nCLIENT\r\n$4\r\nHELP\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	head, err := r.ReadString('\n')
	if err != nil || head != "*41\r\n" {
		t.Fatalf("CLIENT HELP reply starts with %q, %v; want an array of 41", head, err)
	}
	for range 41 {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+") {
			t.Fatalf("CLIENT HELP line %q, %v: want a status line", line, err)
		}
	}
}
