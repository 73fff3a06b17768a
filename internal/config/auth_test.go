package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveSecrets(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name           string
		auth           Auth
		env            map[string]string
		password, peer string
	}{
		{name: "none"},
		{name: "in the config", auth: Auth{Password: "pw"}, password: "pw", peer: "pw"},
		{name: "a file", auth: Auth{PasswordFile: pwFile}, password: "from-file", peer: "from-file"},
		{name: "the environment wins", auth: Auth{PasswordFile: pwFile}, env: map[string]string{EnvPassword: "env"}, password: "env", peer: "env"},
		{name: "a cluster secret", auth: Auth{Password: "pw", ClusterSecret: "cs"}, password: "pw", peer: "cs"},
		{name: "a cluster secret file", auth: Auth{ClusterSecretFile: pwFile}, peer: "from-file"},
		{name: "a cluster secret from the environment", env: map[string]string{EnvClusterSecret: "cs"}, peer: "cs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Auth: tc.auth}
			if err := c.ResolveSecrets(env(tc.env)); err != nil {
				t.Fatal(err)
			}
			if c.Auth.Password != tc.password || c.PeerSecret() != tc.peer {
				t.Fatalf("password %q, peer secret %q; want %q, %q", c.Auth.Password, c.PeerSecret(), tc.password, tc.peer)
			}
			if c.Auth.PasswordFile != "" || c.Auth.ClusterSecretFile != "" {
				t.Fatalf("file fields left set: %+v", c.Auth)
			}
		})
	}
	c := Config{Auth: Auth{PasswordFile: filepath.Join(dir, "missing")}}
	if err := c.ResolveSecrets(env(nil)); err == nil || !strings.Contains(err.Error(), "field auth.password_file") {
		t.Fatalf("missing file: err = %v, want it to name auth.password_file", err)
	}
}

func TestParseAuth(t *testing.T) {
	c, err := Parse([]byte(threeNodes + `, "auth": {"password": "pw", "cluster_secret_file": "/run/secret"}, "protected_mode": false, "admin": {"pprof": true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Password != "pw" || c.Auth.ClusterSecretFile != "/run/secret" || c.Protected() || !c.Admin.PProf {
		t.Fatalf("parsed %+v, protected %v, admin %+v", c.Auth, c.Protected(), c.Admin)
	}
	if !Default().Protected() {
		t.Fatal("protected mode is off by default; want on")
	}
	_, err = Parse([]byte(threeNodes + `, "auth": {"password": "pw", "password_file": "/run/pw"}}`))
	if err == nil || !strings.Contains(err.Error(), "field auth.password_file") {
		t.Fatalf("password and password_file: err = %v", err)
	}
}

func TestDigestIgnoresSecrets(t *testing.T) {
	c, err := Parse([]byte(threeNodes + `}`))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Digest()
	c.Auth = Auth{Password: "pw", ClusterSecret: "cs"}
	if c.Digest() != d {
		t.Fatal("the digest, which travels in clear, depends on the secrets")
	}
}

func TestParseUsers(t *testing.T) {
	const h = "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"
	c, err := Parse([]byte(threeNodes + `, "auth": {"users": [
		{"name": "app", "password_hashes": ["` + h + `", "#` + h + `"], "commands": ["+@read", "-@dangerous", "+set"], "keys": ["~user:*"]},
		{"name": "ops", "enabled": false, "commands": ["allcommands"], "keys": ["allkeys"]},
		{"name": "guest", "nopass": true, "commands": ["+ping"]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if u := c.Auth.Users; len(u) != 3 || !u[0].IsEnabled() || u[1].IsEnabled() || !u[2].NoPass || u[0].Keys[0] != "~user:*" {
		t.Fatalf("parsed %+v", c.Auth.Users)
	}
	_, err = Parse([]byte(threeNodes + `, "auth": {"users": [
		{"name": "default", "nopass": true},
		{"name": "a b", "nopass": true},
		{"name": "x", "password_hashes": ["abc"], "commands": ["get", "+@reed"], "keys": ["user:*"]},
		{"name": "x", "nopass": true, "password_hashes": ["` + h + `"]},
		{"name": "y"},
		{"name": ""}]}}`))
	for _, want := range []string{
		"field auth.users[0].name: \"default\" is the user of auth.password",
		"field auth.users[1].name: \"a b\": must be printable ASCII without spaces",
		"field auth.users[2].password_hashes[0]: password hash \"abc\": must be a SHA-256 digest",
		"field auth.users[2].commands[0]: \"get\": must be \"+\" or \"-\"",
		"field auth.users[2].commands[1]: \"+@reed\": unknown category",
		"field auth.users[2].keys[0]: key rule \"user:*\"",
		"field auth.users[3].name: \"x\" is also auth.users[2].name",
		"field auth.users[3].nopass: password_hashes are set too",
		"field auth.users[4].password_hashes: the user could never authenticate",
		"field auth.users[5].name: must not be empty",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}
}

func TestParseTLS(t *testing.T) {
	c, err := Parse([]byte(threeNodes + `, "tls": {"cert_file": "n.crt", "key_file": "n.key", "ca_file": "ca.crt", "client_auth": "require"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.Enabled() || c.TLS.ClientAuth != "require" {
		t.Fatalf("parsed %+v", c.TLS)
	}
	for _, tc := range []struct{ tls, want string }{
		{`{"cert_file": "n.crt"}`, "field tls.key_file: is required"},
		{`{"cert_file": "n.crt", "key_file": "n.key"}`, "field tls.ca_file: is required"},
		{`{"cert_file": "n.crt", "key_file": "n.key", "ca_file": "ca", "client_auth": "always"}`, `field tls.client_auth: "always": must be`},
		{`{"ca_file": "ca.crt"}`, "field tls.ca_file: needs tls.cert_file"},
	} {
		_, err := Parse([]byte(threeNodes + `, "tls": ` + tc.tls + `}`))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tls %s: err = %v, want %q", tc.tls, err, tc.want)
		}
	}
}
