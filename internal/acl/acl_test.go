package acl

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
)

func testCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := NewCatalog(map[string][]string{
		"get":        {"read", "string", "fast"},
		"set":        {"write", "string", "slow"},
		"del":        {"keyspace", "write", "slow"},
		"ping":       {"fast", "connection"},
		"config":     {"slow"},
		"config|get": {"admin", "slow", "dangerous"},
		"config|set": {"admin", "slow", "dangerous"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hash(pw string) string {
	s := sha256.Sum256([]byte(pw))
	return hex.EncodeToString(s[:])
}

func TestCompile(t *testing.T) {
	c := testCatalog(t)
	for _, tc := range []struct {
		rules []string
		want  []string
	}{
		{nil, nil},
		{[]string{"+@all"}, []string{"config", "config|get", "config|set", "del", "get", "ping", "set"}},
		{[]string{"allcommands", "-@dangerous"}, []string{"config", "del", "get", "ping", "set"}},
		{[]string{"+@read", "+ping"}, []string{"get", "ping"}},
		{[]string{"+@string", "-SET"}, []string{"get"}},
		{[]string{"+config", "-config|set"}, []string{"config", "config|get"}},
		{[]string{"+config|get"}, []string{"config|get"}},
		{[]string{"+@all", "nocommands", "+del"}, []string{"del"}},
	} {
		p, err := c.Compile(tc.rules)
		if err != nil {
			t.Fatalf("%q: %v", tc.rules, err)
		}
		var got []string
		for id, name := range c.names {
			if p.Has(id) {
				got = append(got, name)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q allows %q, want %q", tc.rules, got, tc.want)
		}
	}
	for _, bad := range []string{"get", "+", "+@nosuch", "-flushall", "+config|nosuch", "*get"} {
		_, err := c.Compile([]string{"+@read", bad})
		var re *RuleError
		if !errors.As(err, &re) || re.Index != 1 || re.Rule != bad {
			t.Errorf("rule %q: err %v, want a RuleError at index 1", bad, err)
		}
	}
}

func TestNewCatalogRejectsUnknownCategories(t *testing.T) {
	if _, err := NewCatalog(map[string][]string{"get": {"reed"}}); err == nil {
		t.Error("a command in category reed was accepted")
	}
	if _, err := NewCatalog(map[string][]string{"config|get": {"admin"}}); err == nil {
		t.Error("a subcommand of no command was accepted")
	}
}

func TestUser(t *testing.T) {
	c := testCatalog(t)
	u, err := NewUser(c, Spec{Name: "alice", Enabled: true, PasswordHashes: []string{hash("a"), "#" + hash("b")},
		Commands: []string{"+@read", "+set"}, Keys: []string{"~user:*", "~cache:?"}})
	if err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]bool{"a": true, "b": true, "c": false, "": false} {
		if got := u.CheckPassword([]byte(pw)); got != want {
			t.Errorf("CheckPassword(%q) = %v", pw, got)
		}
	}
	get, _ := c.ID("get")
	del, _ := c.ID("del")
	if !u.CanRun(get) || u.CanRun(del) || u.Unrestricted() {
		t.Errorf("CanRun(get) %v, CanRun(del) %v, Unrestricted %v", u.CanRun(get), u.CanRun(del), u.Unrestricted())
	}
	for key, want := range map[string]bool{"user:1": true, "user:": true, "cache:x": true, "cache:xy": false, "other": false} {
		if got := u.CanAccess([]byte(key)); got != want {
			t.Errorf("CanAccess(%q) = %v", key, got)
		}
	}
	if got, want := u.Describe(), "user alice on #"+hash("a")+" #"+hash("b")+" ~user:* ~cache:? resetchannels -@all +@read +set"; got != want {
		t.Errorf("Describe:\n got %s\nwant %s", got, want)
	}

	off, err := NewUser(c, Spec{Name: "bob", PasswordHashes: []string{hash("a")}, Commands: []string{"+@all"}, Keys: []string{"allkeys"}})
	if err != nil {
		t.Fatal(err)
	}
	if off.CheckPassword([]byte("a")) || !off.Unrestricted() {
		t.Errorf("disabled user: CheckPassword %v, Unrestricted %v", off.CheckPassword([]byte("a")), off.Unrestricted())
	}
	if got, want := off.Describe(), "user bob off #"+hash("a")+" ~* resetchannels +@all"; got != want {
		t.Errorf("Describe:\n got %s\nwant %s", got, want)
	}

	def, err := NewUser(c, Spec{Name: DefaultUser, Enabled: true, NoPass: true, Commands: []string{"+@all"}, Keys: []string{"allkeys"}})
	if err != nil {
		t.Fatal(err)
	}
	if !def.CheckPassword([]byte("anything")) {
		t.Error("a nopass user refused a password")
	}
	if got, want := def.Describe(), "user default on nopass ~* &* +@all"; got != want {
		t.Errorf("Describe:\n got %s\nwant %s", got, want)
	}

	for _, bad := range []Spec{
		{Name: "x", PasswordHashes: []string{"abc"}},
		{Name: "x", Keys: []string{"user:*"}},
		{Name: "x", Keys: []string{"~"}},
		{Name: "x", Commands: []string{"+@nosuch"}},
	} {
		if _, err := NewUser(c, bad); err == nil {
			t.Errorf("%+v was accepted", bad)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, key string
		want         bool
	}{
		{"*", "", true},
		{"*", "a/b", true},
		{"user:*", "user:1", true},
		{"user:*", "use", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"?", "a", true},
		{"?", "", false},
		{"h[ae]llo", "hello", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hbllo", true},
		{"h[a-b]llo", "hcllo", false},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{"*[0-9]", "key7", true},
		{"*[0-9]", "key", false},
		{"k*", "k", true},
		{"*a", "bbbba", true},
	} {
		if got := Match(tc.pattern, []byte(tc.key)); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.key, got, tc.want)
		}
	}
}
