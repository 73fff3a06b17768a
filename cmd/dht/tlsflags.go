package main

import (
	"crypto/tls"

	"github.com/spf13/pflag"

	"github.com/dhtkv/dht/internal/config"
	"github.com/dhtkv/dht/internal/tlsconf"
)

// tlsFlags are the TLS flags of dht local and dht bench.
type tlsFlags struct {
	on            bool
	ca, cert, key string
}

func (t *tlsFlags) register(f *pflag.FlagSet, usage string) {
	f.BoolVar(&t.on, "tls", false, usage)
	f.StringVar(&t.ca, "tls-ca", "", "CA certificate (PEM) that the nodes' certificates chain to; implies --tls")
	f.StringVar(&t.cert, "tls-cert", "", "certificate (PEM): a client's for dht bench, the nodes' for dht local; implies --tls")
	f.StringVar(&t.key, "tls-key", "", "private key (PEM) of --tls-cert")
}

// files are the files the flags name.
func (t *tlsFlags) files() tlsconf.Files { return tlsconf.Files{CA: t.ca, Cert: t.cert, Key: t.key} }

// enabled reports whether any flag asks for TLS.
func (t *tlsFlags) enabled() bool { return t.on || t.ca != "" || t.cert != "" || t.key != "" }

// client is the TLS configuration of a client of a cluster whose config has the tls
// section c: the flags' files, else the section's; nil when neither asks for TLS.
func (t *tlsFlags) client(c config.TLS) (*tls.Config, error) {
	var f tlsconf.Files
	if c.Enabled() {
		f = c.ClientFiles()
	}
	if !t.enabled() && !c.Enabled() {
		return nil, nil
	}
	if t.ca != "" {
		f.CA = t.ca
	}
	if t.cert != "" || t.key != "" {
		f.Cert, f.Key = t.cert, t.key
	}
	return tlsconf.Client(f)
}
