package lincheck_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/lincheck"
)

// TestNewClusterClientSendsASetOnce serves a one-node cluster that drops the
// connection on every SET, the way a node dies mid-write, and checks that the
// client reports the failure instead of sending the SET again.
func TestNewClusterClientSendsASetOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	var sets atomic.Int64
	served := make(chan error, 1)
	go func() {
		served <- redcon.Serve(ln, func(conn redcon.Conn, cmd redcon.Command) {
			switch name := strings.ToLower(string(cmd.Args[0])); {
			case name == "set":
				sets.Add(1)
				conn.Close()
			case name == "cluster" && len(cmd.Args) > 1 && strings.EqualFold(string(cmd.Args[1]), "slots"):
				conn.WriteArray(1)
				conn.WriteArray(3)
				conn.WriteInt(0)
				conn.WriteInt(16383)
				conn.WriteArray(3)
				conn.WriteBulkString(host)
				conn.WriteInt(port)
				conn.WriteBulkString(strings.Repeat("a", 40))
			case name == "command":
				conn.WriteArray(0)
			case name == "ping":
				conn.WriteString("PONG")
			default:
				conn.WriteError("ERR unknown command '" + name + "'")
			}
		}, nil, nil)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-served
	})

	c := lincheck.NewClusterClient([]string{ln.Addr().String()})
	defer c.Close()
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err == nil {
		t.Fatal("SET succeeded against a node that drops it")
	}
	if n := sets.Load(); n != 1 {
		t.Fatalf("the node received the SET %d times; want 1", n)
	}
}
