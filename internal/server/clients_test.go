package server

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/tlsconf"
)

// clientFields parses one line of CLIENT LIST.
func clientFields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

// listed returns the CLIENT LIST line of the client id, if any.
func listed(t *testing.T, admin *redis.Conn, id int64) (map[string]string, bool) {
	t.Helper()
	list, err := admin.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
		if f := clientFields(l); f["id"] == strconv.FormatInt(id, 10) {
			return f, true
		}
	}
	return nil, false
}

// waitGone waits until client id leaves CLIENT LIST.
func waitGone(t *testing.T, admin *redis.Conn, id int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := listed(t, admin, id); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("client %d is still listed after it was killed", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClientRegistry lists and kills clients of the event loops and of the TLS
// front door alike: CLIENT LIST shows each with its addresses and what it did last,
// and CLIENT KILL closes it by id, by address (old form), or by type, sparing the
// client that asks unless SKIPME no.
func TestClientRegistry(t *testing.T) {
	for _, tc := range []struct {
		name string
		dial func(t *testing.T) (addr string, newClient func() *redis.Client)
	}{
		{"plain", func(t *testing.T) (string, func() *redis.Client) {
			addr := startNode(t, nil)
			return addr, func() *redis.Client {
				c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
				t.Cleanup(func() { c.Close() })
				return c
			}
		}},
		{"tls", func(t *testing.T) (string, func() *redis.Client) {
			addr, files := startTLSNode(t, nil)
			return addr, func() *redis.Client { return tlsClient(t, addr, tlsconf.Files{CA: files.CA}, "") }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			addr, newClient := tc.dial(t)
			admin := newClient().Conn()
			victim := newClient().Conn()
			if err := victim.ClientSetName(ctx, "victim").Err(); err != nil {
				t.Fatal(err)
			}
			id, err := victim.ClientID(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			f, ok := listed(t, admin, id)
			if !ok {
				t.Fatalf("CLIENT LIST does not list client %d", id)
			}
			if f["name"] != "victim" || f["laddr"] != addr || f["cmd"] != "client|id" || f["user"] != "default" ||
				f["flags"] != "N" || f["fd"] == "" || f["fd"] == "-1" || f["resp"] != "2" {
				t.Errorf("CLIENT LIST line of the victim: %v", f)
			}
			info, err := victim.ClientInfo(ctx).Result()
			if err != nil || info.ID != id || info.Name != "victim" || info.LAddr != addr {
				t.Errorf("CLIENT INFO = %+v, %v", info, err)
			}
			if n, err := admin.ClientKillByFilter(ctx, "ID", strconv.FormatInt(id, 10)).Result(); err != nil || n != 1 {
				t.Fatalf("CLIENT KILL ID %d = %d, %v", id, n, err)
			}
			if err := victim.Ping(ctx).Err(); err == nil {
				t.Error("the killed client could still run PING")
			}
			waitGone(t, admin, id)

			// The old form, by the address CLIENT INFO reports.
			second := newClient().Conn()
			info, err = second.ClientInfo(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if err := admin.ClientKill(ctx, info.Addr).Err(); err != nil {
				t.Fatalf("CLIENT KILL %s: %v", info.Addr, err)
			}
			waitGone(t, admin, info.ID)
			wantErr(t, admin.ClientKill(ctx, info.Addr).Err(), "ERR No such client")

			// By type: everyone but the client that asks.
			third := newClient().Conn()
			thirdID, err := third.ClientID(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if n, err := admin.ClientKillByFilter(ctx, "TYPE", "normal").Result(); err != nil || n != 1 {
				t.Fatalf("CLIENT KILL TYPE normal = %d, %v; want 1 (the third client)", n, err)
			}
			waitGone(t, admin, thirdID)
			adminID, err := admin.ClientID(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			// Killing itself, the client still gets its answer.
			n, err := admin.ClientKillByFilter(ctx, "ID", strconv.FormatInt(adminID, 10), "SKIPME", "no").Result()
			if err != nil || n != 1 {
				t.Fatalf("CLIENT KILL ID self SKIPME no = %d, %v", n, err)
			}
			if err := admin.Ping(ctx).Err(); err == nil {
				t.Error("a client that killed itself could still run PING")
			}
		})
	}
}

// TestClientReplyOffSuppressesReplies: after CLIENT REPLY OFF the node runs a
// client's commands and sends nothing back, not even errors; CLIENT REPLY SKIP
// silences itself and the next command only.
func TestClientReplyOffSuppressesReplies(t *testing.T) {
	addr := startNode(t, nil)
	ctx := context.Background()
	quiet := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true, ReadTimeout: 300 * time.Millisecond})
	defer quiet.Close()
	pipe := quiet.Pipeline()
	off := pipe.Do(ctx, "CLIENT", "REPLY", "OFF")
	incr := pipe.Incr(ctx, "n")
	bad := pipe.Do(ctx, "INCR")
	incr2 := pipe.Incr(ctx, "n")
	_, err := pipe.Exec(ctx)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a pipeline after CLIENT REPLY OFF: %v; want a read timeout (no reply)", err)
	}
	for _, c := range []redis.Cmder{off, incr, bad, incr2} {
		if !errors.As(c.Err(), &ne) {
			t.Errorf("%v got a reply: %v", c.Args(), c.Err())
		}
	}
	other := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer other.Close()
	if n, err := other.Get(ctx, "n").Int(); err != nil || n != 2 {
		t.Fatalf("GET n = %d, %v: the INCRs sent with replies off must have run", n, err)
	}

	// SKIP, on a connection of its own (go-redis may keep the one whose replies
	// are off): the first reply on the wire is the second INCR's.
	skipper := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true, ReadTimeout: 300 * time.Millisecond})
	defer skipper.Close()
	pipe = skipper.Pipeline()
	skip := pipe.Do(ctx, "CLIENT", "REPLY", "SKIP")
	pipe.Incr(ctx, "n")
	pipe.Incr(ctx, "n")
	_, _ = pipe.Exec(ctx)
	// The pipeline fails reading the replies that never come, and go-redis marks
	// every command failed; the one reply that came is in the first's value.
	if v := skip.Val(); v != int64(4) {
		t.Fatalf("first reply after CLIENT REPLY SKIP: %v (%v); want the second INCR's 4", v, skip.Err())
	}
}

// TestConfigSetMaxclientsAndTimeout: CONFIG SET maxclients refuses connections
// past the new bound (counted in rejected_connections), and CONFIG SET timeout
// closes clients idle that long.
func TestConfigSetMaxclientsAndTimeout(t *testing.T) {
	addr := startNode(t, nil)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, PoolSize: 1})
	defer admin.Close()
	if err := admin.ConfigSet(ctx, "maxclients", "1").Err(); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	c.Close()
	if got := string(buf[:n]); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("a client past maxclients read %q", got)
	}
	if err := admin.ConfigSet(ctx, "maxclients", "10000").Err(); err != nil {
		t.Fatal(err)
	}
	stats, err := admin.Info(ctx, "stats").Result()
	if err != nil || !strings.Contains(stats, "rejected_connections:1\r\n") {
		t.Fatalf("INFO stats after a refusal: %v\n%s", err, stats)
	}

	if err := admin.ConfigSet(ctx, "timeout", "1").Err(); err != nil {
		t.Fatal(err)
	}
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_ = idle.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := idle.Read(buf); err == nil {
		t.Fatal("an idle client read data instead of being closed")
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("the idle client was closed after %s; timeout is 1s", d)
	}
	if got, err := admin.ConfigGet(ctx, "timeout").Result(); err != nil || got["timeout"] != "1" {
		t.Errorf("CONFIG GET timeout = %v, %v", got, err)
	}
}
