// Package tlsconf builds the TLS configurations of a node and of its clients from
// PEM files, and makes a throwaway certificate authority for clusters on loopback.
package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Client certificate checking on a node, as the config's tls.client_auth names it.
const (
	// ClientAuthNone asks clients for no certificate.
	ClientAuthNone = "none"
	// ClientAuthRequest verifies a certificate a client gives, against the CA.
	ClientAuthRequest = "request"
	// ClientAuthRequire refuses a client without a certificate the CA signed.
	ClientAuthRequire = "require"
)

// Files name PEM files: a certificate, its private key and the certificate of the
// authority that signs the other side's.
type Files struct {
	Cert, Key, CA string
}

// Server is the configuration of a node's listener: its certificate, and, unless
// clientAuth is ClientAuthNone (or empty), the CA that client certificates must
// chain to.
func Server(f Files, clientAuth string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch clientAuth {
	case "", ClientAuthNone:
		return c, nil
	case ClientAuthRequest:
		c.ClientAuth = tls.VerifyClientCertIfGiven
	case ClientAuthRequire:
		c.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("tls: client auth %q: must be %q, %q or %q", clientAuth, ClientAuthNone, ClientAuthRequest, ClientAuthRequire)
	}
	if c.ClientCAs, err = loadPool(f.CA); err != nil {
		return nil, err
	}
	return c, nil
}

// Client is the configuration of a connection to a node: the CA its certificate
// must chain to (none: the system's), and a certificate of its own if f names one.
// The node's name is taken from the address dialled.
func Client(f Files) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pool, err := loadPool(f.CA)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if f.Cert != "" || f.Key != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// ForAddr returns c for a connection to addr (host:port): it checks that the
// certificate names host.
func ForAddr(c *tls.Config, addr string) *tls.Config {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	c = c.Clone()
	c.ServerName = host
	return c
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls: CA: no certificate in %s", file)
	}
	return pool, nil
}

// GenerateLocal makes a new certificate authority in dir and a certificate it signs
// for localhost, 127.0.0.1 and ::1, good for servers and clients alike, valid for a
// year: what a cluster on loopback and its clients need. The key files are readable
// by their owner only.
func GenerateLocal(dir string) (Files, error) {
	f := Files{Cert: filepath.Join(dir, "node.crt"), Key: filepath.Join(dir, "node.key"), CA: filepath.Join(dir, "ca.crt")}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, fmt.Errorf("tls: %w", err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "dht local CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return Files{}, fmt.Errorf("tls: %w", err)
	}
	nodeKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, fmt.Errorf("tls: %w", err)
	}
	node := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	nodeDER, err := x509.CreateCertificate(rand.Reader, node, ca, &nodeKey.PublicKey, caKey)
	if err != nil {
		return Files{}, fmt.Errorf("tls: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(nodeKey)
	if err != nil {
		return Files{}, fmt.Errorf("tls: %w", err)
	}
	return f, errors.Join(
		writePEM(f.CA, "CERTIFICATE", caDER, 0o644),
		writePEM(f.Cert, "CERTIFICATE", nodeDER, 0o644),
		writePEM(f.Key, "PRIVATE KEY", keyDER, 0o600),
	)
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), mode); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}
