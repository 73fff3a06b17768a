package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/dhtkv/dht/internal/acl"
	"github.com/dhtkv/dht/internal/config"
)

func sha256Hex(pw string) string {
	s := sha256.Sum256([]byte(pw))
	return hex.EncodeToString(s[:])
}

// aclTestUsers are the users of the ACL tests, set up alike on dht (in the config)
// and on redis-server (with ACL SETUSER).
func aclTestUsers() []config.User {
	off := false
	return []config.User{
		{Name: "alice", PasswordHashes: []string{sha256Hex("alice-pw")}, Commands: []string{"+@read", "+set"}, Keys: []string{"~user:*"}},
		{Name: "bob", Enabled: &off, PasswordHashes: []string{sha256Hex("bob-pw")}, Commands: []string{"+@all"}, Keys: []string{"allkeys"}},
		{Name: "carol", NoPass: true, Commands: []string{"+@all"}, Keys: []string{"~cache:*", "~c[0-9]"}},
		{Name: "dave", NoPass: true, Commands: []string{"+@all", "-@dangerous"}, Keys: []string{"allkeys"}},
	}
}

// setUserArgs is ACL SETUSER for u.
func setUserArgs(u config.User) []string {
	args := []string{"ACL", "SETUSER", u.Name, "off"}
	if u.IsEnabled() {
		args[3] = "on"
	}
	if u.NoPass {
		args = append(args, "nopass")
	}
	for _, h := range u.PasswordHashes {
		args = append(args, "#"+h)
	}
	args = append(args, u.Keys...)
	return append(args, u.Commands...)
}

func withUsers(users []config.User) func(*config.Config) {
	return func(c *config.Config) { c.Auth.Users = users }
}

func TestACLCategories(t *testing.T) {
	table := commandTable()
	covered := map[string]bool{}
	for cat, names := range aclCategories() {
		if !acl.IsCategory(cat) {
			t.Errorf("aclCategories: %q is no category", cat)
		}
		for _, name := range strings.Fields(names) {
			parent, _, _ := strings.Cut(name, "|")
			if table[parent] == nil {
				t.Errorf("aclCategories[%q]: %q is no command of dht's", cat, name)
			}
			covered[name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(table)) {
		if !covered[name] {
			t.Errorf("command %q is in no ACL category: add it to aclCategories", name)
		}
	}
}

// TestRedisDiffACLCat: ACL CAT puts dht's commands in Redis 7.0's categories.
func TestRedisDiffACLCat(t *testing.T) {
	p := newDiffPair(t)
	r, d := p.both(t, []string{"ACL", "CAT"})
	if r != d {
		t.Fatalf("ACL CAT:\nredis-server: %q\ndht:          %q", r, d)
	}
	// The names Redis knows: every command is fast or slow.
	redisKnows := map[string]bool{}
	for _, cat := range []string{"fast", "slow"} {
		for _, n := range aclCatNames(t, p.redis, cat) {
			redisKnows[n] = true
		}
	}
	s, err := New(Options{Config: mustLocal(t), Self: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dhtHas := func(name string) bool { _, ok := s.acl.ID(name); return ok }
	for _, cat := range acl.Categories() {
		var want, got []string
		for _, n := range aclCatNames(t, p.redis, cat) {
			if dhtHas(n) {
				want = append(want, n)
			}
		}
		for _, n := range aclCatNames(t, p.dht, cat) {
			if redisKnows[n] {
				got = append(got, n)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("ACL CAT %s, of the commands both have:\nredis-server: %q\ndht:          %q", cat, want, got)
		}
	}
}

func mustLocal(t *testing.T) config.Config {
	t.Helper()
	cfg, err := config.Local(1, freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// aclCatNames is ACL CAT cat's list.
func aclCatNames(t *testing.T, c *respConn, cat string) []string {
	t.Helper()
	reply, err := c.do("ACL", "CAT", cat)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	lines := strings.Split(reply, "\r\n")
	for i := 2; i < len(lines); i += 2 {
		names = append(names, lines[i])
	}
	return names
}

// TestRedisDiffACL: the same users on redis-server and dht answer the same, byte
// for byte: AUTH as each, NOPERM for commands and keys, WRONGPASS for a disabled
// user, and ACL WHOAMI, USERS, LIST, GETUSER and CAT.
func TestRedisDiffACL(t *testing.T) {
	users := aclTestUsers()
	redisAddr := startRedis(t)
	dhtAddr := startNode(t, withUsers(users))
	setup, err := dialRESP(redisAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	for _, u := range users {
		if r, err := setup.do(setUserArgs(u)...); err != nil || r != "+OK\r\n" {
			t.Fatalf("%q: %q, %v", setUserArgs(u), r, err)
		}
	}
	for _, tc := range []struct{ name, script string }{
		{"alice", `AUTH alice alice-pw
ACL WHOAMI
GET user:1
SET user:1 v
GET user:1
EXISTS user:{1} user:{1}2
MGET user:1 other
GET other
SET other v
DEL user:1
PING
INFO
CONFIG GET maxmemory
CONFIG SET maxmemory 1
CLUSTER INFO
CLUSTER KEYSLOT x
COMMAND COUNT
ACL USERS
AUTH alice wrong
AUTH bob bob-pw
AUTH nobody x
HELLO 2 AUTH alice wrong
GET user:1
AUTH default anything
ACL WHOAMI
DEL user:1`},
		{"carol", `AUTH carol whatever
ACL WHOAMI
SET cache:1 v
COPY cache:1 cache:2
COPY cache:1 other
SET c7 v
SET c77 v
RENAME cache:2 c8
DEL cache:1
DEL cache:2
DEL c8`},
		{"dave", `AUTH dave x
SET k v
GET k
INFO
CONFIG GET maxmemory
ACL LIST
ACL USERS
ACL GETUSER dave
ACL CAT
DEL k`},
		{"default", `ACL WHOAMI
ACL USERS
ACL LIST
ACL GETUSER alice
ACL GETUSER bob
ACL GETUSER carol
ACL GETUSER default
ACL GETUSER nobody
ACL CAT
ACL CAT nosuch
ACL CAT read write
ACL FOO
ACL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &diffPair{}
			var err error
			if p.redis, err = dialRESP(redisAddr); err != nil {
				t.Fatal(err)
			}
			defer p.redis.Close()
			if p.dht, err = dialRESP(dhtAddr); err != nil {
				t.Fatal(err)
			}
			defer p.dht.Close()
			for i, args := range script(t, tc.script) {
				if r, d := p.both(t, args); r != d {
					t.Errorf("command %d, %q:\nredis-server: %.400q\ndht:          %.400q", i+1, args, r, d)
				}
			}
		})
	}
}

// TestACLWithPassword: with auth.password the default user needs it, as before;
// the other users authenticate with theirs, and a restricted one is refused what it
// may not do, pipelined or not, while the default user is not.
func TestACLWithPassword(t *testing.T) {
	addr := startNode(t, func(c *config.Config) {
		c.Auth.Password = "pw"
		c.Auth.Users = aclTestUsers()
	})
	ctx := context.Background()
	// One connection: a pool may take another for the pipeline.
	c := rawClient(t, addr).Conn()
	defer c.Close()
	wantErr(t, c.Get(ctx, "user:1").Err(), errNoAuth)
	wantErr(t, c.Do(ctx, "auth", "default", "x").Err(), errWrongPass)
	if err := c.Do(ctx, "auth", "alice", "alice-pw").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "user:1").Err(); err != redis.Nil {
		t.Fatalf("GET as alice: %v", err)
	}
	pipe := c.Pipeline()
	set := pipe.Set(ctx, "user:1", "v", 0)
	get := pipe.Get(ctx, "user:1")
	denied := pipe.Set(ctx, "other", "v", 0)
	del := pipe.Del(ctx, "user:1")
	_, _ = pipe.Exec(ctx)
	if set.Err() != nil || get.Val() != "v" {
		t.Fatalf("SET %v, GET %q %v", set.Err(), get.Val(), get.Err())
	}
	wantErr(t, denied.Err(), errNoPermKey)
	wantErr(t, del.Err(), "NOPERM this user has no permissions to run the 'del' command")

	d := rawClient(t, addr)
	if err := d.Do(ctx, "auth", "pw").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := d.Del(ctx, "user:1").Result(); err != nil || n != 1 {
		t.Fatalf("DEL as default = %d, %v", n, err)
	}
	if who, err := d.Do(ctx, "acl", "whoami").Text(); err != nil || who != "default" {
		t.Fatalf("ACL WHOAMI = %q, %v", who, err)
	}
	info, err := d.Info(ctx, "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"acl_access_denied_cmd:1\r\n", "acl_access_denied_key:1\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO stats has no %q:\n%s", want, info)
		}
	}
	h := redis.NewClient(&redis.Options{Addr: addr, Username: "alice", Password: "alice-pw", Protocol: 2})
	defer h.Close()
	if err := h.Set(ctx, "user:2", "v", 0).Err(); err != nil {
		t.Fatalf("go-redis as alice (HELLO AUTH): %v", err)
	}
	wantErr(t, h.Get(ctx, "x").Err(), errNoPermKey)
}

func TestACLConfigErrorsNameTheirField(t *testing.T) {
	cfg := mustLocal(t)
	cfg.Auth.Users = []config.User{{Name: "x", NoPass: true, Commands: []string{"+get", "-flushal"}}}
	_, err := New(Options{Config: cfg, Self: "n1"})
	want := `field auth.users[0].commands[1]: rule "-flushal": unknown command "flushal"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
}

// BenchmarkExecACL measures a GET through exec as the default user (no check), as
// a user with every permission but key patterns, and as a restricted user with
// key patterns: the price of the check on the hot path.
func BenchmarkExecACL(b *testing.B) {
	cfg := oneNodeConfig(b)
	cfg.Auth.Users = []config.User{
		{Name: "reader", NoPass: true, Commands: []string{"+@read"}, Keys: []string{"allkeys"}},
		{Name: "app", NoPass: true, Commands: []string{"+@read", "+@write", "-@dangerous"}, Keys: []string{"~session:*", "~user:*"}},
	}
	s := newServer(b, cfg)
	args := [][]byte{[]byte("GET"), []byte("user:1000")}
	raw := []byte("*2\r\n$3\r\nGET\r\n$9\r\nuser:1000\r\n")
	for _, user := range []string{"default", "reader", "app"} {
		b.Run(user, func(b *testing.B) {
			cl := &client{s: s, authed: true}
			cl.login(s.users[user])
			w := session{c: cl, db: s.store}
			if s.exec(&w, args, raw, false); string(w.out) != "$-1\r\n" {
				b.Fatalf("GET answered %q, want a null (the key is absent)", w.out)
			}
			for b.Loop() {
				s.exec(&w, args, raw, false)
				w.out = w.out[:0]
			}
		})
	}
}
