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
