// Package acl holds access control lists as Redis 7 has them: users with password
// hashes, the commands they may run (by category, by command, by subcommand) and the
// keys they may touch (glob patterns). It knows nothing of a server: the server hands
// it a Catalog of its commands and asks a compiled User about one command at a time.
//
// A user's commands compile to a bitset over the catalog's commands, so that the
// question a server asks on every command is one bit test.
package acl

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Categories returns Redis 7.0's command categories, in the order ACL CAT lists them.
func Categories() []string {
	return []string{
		"keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
		"hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
		"dangerous", "connection", "transaction", "scripting",
	}
}

// IsCategory reports whether name (without the @) is a command category.
func IsCategory(name string) bool { return slices.Contains(Categories(), name) }

// DefaultUser is the name of the user a connection starts as.
const DefaultUser = "default"

// Catalog numbers a server's commands for the users' bitsets and knows their
// categories. A subcommand is named "container|sub" ("config|get"); allowing or
// denying a container allows or denies its subcommands too.
type Catalog struct {
	names    []string         // by ID
	ids      map[string]int   // by name
	children map[int][]int    // a container's subcommands
	byCat    map[string][]int // a category's commands, by ID
}

// NewCatalog builds a catalog from each command's (lower case) name and categories
// (without the @). Every category must be one of Categories.
func NewCatalog(commands map[string][]string) (*Catalog, error) {
	c := &Catalog{ids: map[string]int{}, children: map[int][]int{}, byCat: map[string][]int{}}
	for name := range commands {
		c.names = append(c.names, name)
	}
	slices.Sort(c.names)
	for id, name := range c.names {
		c.ids[name] = id
	}
	for id, name := range c.names {
		for _, cat := range commands[name] {
			if !IsCategory(cat) {
				return nil, fmt.Errorf("acl: command %q: unknown category %q", name, cat)
			}
			c.byCat[cat] = append(c.byCat[cat], id)
		}
		if parent, _, ok := strings.Cut(name, "|"); ok {
			pid, ok := c.ids[parent]
			if !ok {
				return nil, fmt.Errorf("acl: subcommand %q of no command", name)
			}
			c.children[pid] = append(c.children[pid], id)
		}
	}
	return c, nil
}

// ID returns the number of a command or subcommand ("config|get"), named in lower
// case.
func (c *Catalog) ID(name string) (int, bool) {
	id, ok := c.ids[name]
	return id, ok
}

// Name returns the name of the command numbered id.
func (c *Catalog) Name(id int) string { return c.names[id] }

// InCategory returns the names of the commands in category cat, sorted.
func (c *Catalog) InCategory(cat string) []string {
	var names []string
	for _, id := range c.byCat[cat] {
		names = append(names, c.names[id])
	}
	return names
}

// Perms is a set of commands, one bit per catalog ID.
type Perms []uint64

func (p Perms) set(id int, on bool) {
	if on {
		p[id/64] |= 1 << (id % 64)
	} else {
		p[id/64] &^= 1 << (id % 64)
	}
}

// Has reports whether the set holds command id.
func (p Perms) Has(id int) bool { return p[id/64]&(1<<(id%64)) != 0 }

// Compile applies command rules in order to an empty set: "+@category" and
// "-@category", "+command" and "-command", "+command|sub" and "-command|sub",
// "allcommands" (as "+@all") and "nocommands" (as "-@all"). A rule that is not one
// of these, or names a category or command the catalog lacks, is an error naming
// the rule's index.
func (c *Catalog) Compile(rules []string) (Perms, error) {
	p := make(Perms, (len(c.names)+63)/64)
	for i, r := range rules {
		if err := c.apply(p, r); err != nil {
			return nil, &RuleError{Index: i, Rule: r, Problem: err.Error()}
		}
	}
	return p, nil
}

// RuleError is a rule that does not compile.
type RuleError struct {
	// Index is the rule's position in its list.
	Index int
	// Rule is the rule as written.
	Rule string
	// Problem says what is wrong with it.
	Problem string
}

func (e *RuleError) Error() string { return fmt.Sprintf("rule %q: %s", e.Rule, e.Problem) }

func (c *Catalog) apply(p Perms, rule string) error {
	switch strings.ToLower(rule) {
	case "allcommands":
		rule = "+@all"
	case "nocommands":
		rule = "-@all"
	}
	if len(rule) < 2 || rule[0] != '+' && rule[0] != '-' {
		return errors.New(`must be "+" or "-" and a command, or "@" and a category`)
	}
	on, name := rule[0] == '+', strings.ToLower(rule[1:])
	if cat, ok := strings.CutPrefix(name, "@"); ok {
		switch {
		case cat == "all":
			for id := range c.names {
				p.set(id, on)
			}
		case IsCategory(cat):
			for _, id := range c.byCat[cat] {
				p.set(id, on)
			}
		default:
			return fmt.Errorf("unknown category %q", cat)
		}
		return nil
	}
	id, ok := c.ids[name]
	if !ok {
		return fmt.Errorf("unknown command %q", name)
	}
	p.set(id, on)
	for _, sub := range c.children[id] {
		p.set(sub, on)
	}
	return nil
}

// Spec is a user as configured.
type Spec struct {
	// Name is the user's name.
	Name string
	// Enabled users may authenticate.
	Enabled bool
	// NoPass users take any password.
	NoPass bool
	// PasswordHashes are the SHA-256 digests of the user's passwords, hex.
	PasswordHashes []string
	// Commands are the command rules (see Catalog.Compile).
	Commands []string
	// Keys are key patterns ("~user:*") or "allkeys" (as "~*").
	Keys []string
}

// User is a compiled Spec.
type User struct {
	name     string
	enabled  bool
	noPass   bool
	hashes   [][sha256.Size]byte
	perms    Perms
	allCmds  bool
	allKeys  bool
	patterns []string
	rules    []string
}

// NewUser compiles spec against the catalog. Its errors are *RuleError for a
// command rule, and plain errors for the rest.
func NewUser(cat *Catalog, spec Spec) (*User, error) {
	u := &User{name: spec.Name, enabled: spec.Enabled, noPass: spec.NoPass, rules: spec.Commands}
	for _, h := range spec.PasswordHashes {
		sum, err := ParseHash(h)
		if err != nil {
			return nil, err
		}
		u.hashes = append(u.hashes, sum)
	}
	var err error
	if u.perms, err = cat.Compile(spec.Commands); err != nil {
		return nil, err
	}
	u.allCmds = true
	for id := range cat.names {
		u.allCmds = u.allCmds && u.perms.Has(id)
	}
	for _, k := range spec.Keys {
		pat, err := ParseKeyRule(k)
		if err != nil {
			return nil, err
		}
		if pat == "*" {
			u.allKeys = true
		}
		u.patterns = append(u.patterns, pat)
	}
	return u, nil
}

// ParseHash reads a password's SHA-256 digest: 64 hex digits, as Redis's
// "#<hash>" rule gives it (the # is optional).
func ParseHash(h string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	b, err := hex.DecodeString(strings.TrimPrefix(h, "#"))
	if err != nil || len(b) != sha256.Size {
		return sum, fmt.Errorf("password hash %q: must be a SHA-256 digest, 64 hex digits", h)
	}
	copy(sum[:], b)
	return sum, nil
}

// ParseKeyRule reads a key rule: "~pattern", or "allkeys" (the pattern "*").
func ParseKeyRule(rule string) (string, error) {
	if strings.EqualFold(rule, "allkeys") {
		return "*", nil
	}
	pat, ok := strings.CutPrefix(rule, "~")
	if !ok || pat == "" {
		return "", fmt.Errorf(`key rule %q: must be "~" and a glob pattern, or "allkeys"`, rule)
	}
	return pat, nil
}

// Name is the user's name.
func (u *User) Name() string { return u.name }

// Unrestricted reports whether the user may run every command on every key.
func (u *User) Unrestricted() bool { return u.allCmds && u.allKeys }

// CheckPassword reports whether the user is enabled and pass is one of its
// passwords (any, for a nopass user), comparing digests in constant time.
func (u *User) CheckPassword(pass []byte) bool {
	got := sha256.Sum256(pass)
	ok := u.noPass
	for _, h := range u.hashes {
		ok = subtle.ConstantTimeCompare(got[:], h[:]) == 1 || ok
	}
	return ok && u.enabled
}

// CanRun reports whether the user may run the command numbered id.
func (u *User) CanRun(id int) bool { return u.perms.Has(id) }

// CanAccess reports whether the user may touch key.
func (u *User) CanAccess(key []byte) bool {
	if u.allKeys {
		return true
	}
	for _, p := range u.patterns {
		if Match(p, key) {
			return true
		}
	}
	return false
}

// flags are ACL GETUSER's flags.
func (u *User) flags() []string {
	f := []string{"off"}
	if u.enabled {
		f[0] = "on"
	}
	if u.noPass {
		f = append(f, "nopass")
	}
	return f
}

// keys is ACL GETUSER's keys.
func (u *User) keys() string {
	if u.allKeys {
		return "~*"
	}
	var b strings.Builder
	for i, p := range u.patterns {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("~" + p)
	}
	return b.String()
}

// commands describes the user's command rules as Redis does: from "+@all" or
// "-@all", then the rules as configured.
func (u *User) commands() string {
	if u.allCmds {
		return "+@all"
	}
	rules := u.rules
	start := "-@all"
	if len(rules) > 0 {
		switch strings.ToLower(rules[0]) {
		case "+@all", "allcommands":
			start, rules = "+@all", rules[1:]
		case "-@all", "nocommands":
			rules = rules[1:]
		}
	}
	return strings.Join(append([]string{start}, rules...), " ")
}

// channels is ACL GETUSER's channels: dht has no Pub/Sub; the default user shows
// Redis's default, every channel, the others none.
func (u *User) channels() string {
	if u.name == DefaultUser {
		return "&*"
	}
	return ""
}

// Describe is the user as ACL LIST shows it: "user alice on #<hash> ~user:*
// resetchannels -@all +@read".
func (u *User) Describe() string {
	parts := []string{"user", u.name}
	parts = append(parts, u.flags()...)
	for _, h := range u.hashes {
		parts = append(parts, "#"+hex.EncodeToString(h[:]))
	}
	if k := u.keys(); k != "" {
		parts = append(parts, k)
	}
	ch := u.channels()
	if ch == "" {
		ch = "resetchannels"
	}
	return strings.Join(append(parts, ch, u.commands()), " ")
}

// Details are ACL GETUSER's fields of a user.
type Details struct {
	Flags, Passwords         []string
	Commands, Keys, Channels string
}

// Details returns what ACL GETUSER shows of the user.
func (u *User) Details() Details {
	d := Details{Flags: u.flags(), Passwords: []string{}, Commands: u.commands(), Keys: u.keys(), Channels: u.channels()}
	for _, h := range u.hashes {
		d.Passwords = append(d.Passwords, hex.EncodeToString(h[:]))
	}
	return d
}
