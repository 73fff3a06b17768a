package server

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/cluster"
	"github.com/dhtkv/dht/internal/resp"
)

// Nodes talk to each other on the port clients use, so a node has to tell its peers'
// connections from its clients'. A connection becomes a peer's by a challenge and
// response over the cluster secret (config.Config.PeerSecret):
//
//	DHT.AUTHPEER <node>          -> a fresh random nonce (16 bytes, hex), kept by the connection
//	DHT.AUTHPEER <node> <proof>  -> +OK, the connection is <node>'s; or an error, and the nonce is gone
//
// where proof = hex(HMAC-SHA256(secret, "dht-authpeer\n" + node + "\n" + this node + "\n" + nonce)).
// The secret never travels; HMAC-SHA256 under it cannot be computed without it; a
// nonce serves one attempt on the connection that asked for it, so a proof seen on
// the wire is worth nothing on any other connection or at any later time; and the
// proof names both ends, so a proof made for one node does not open another. Only
// such a connection may send the commands between nodes (DHT.PING, DHT.RAFT,
// DHT.KEYCOUNT), and it may send every other command too, without AUTH: it forwards
// clients' requests. With no secret at all (no password, no cluster secret) the HMAC
// key is empty: peers need no secret, as a node without a password needs none.

// errWrongSecret is what a node answers, and what its peer reports, when a proof does
// not match: the two run with different cluster secrets.
var errWrongSecret = errors.New("wrong cluster secret")

// errCodeWrongSecret is the error code of a refused proof.
const errCodeWrongSecret = "WRONGSECRET"

// peerProof computes the proof that node from knows secret, for node to, on nonce.
func peerProof(secret []byte, from, to, nonce string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("dht-authpeer\n" + from + "\n" + to + "\n" + nonce))
	sum := m.Sum(nil)
	return []byte(hex.EncodeToString(sum))
}

// cmdAuthPeer is DHT.AUTHPEER <node> [<proof>]: without a proof it answers a nonce,
// with one it checks it against the nonce it gave. It runs off the event loop: in
// protected mode it may resolve the peer's host (see protected.go).
func cmdAuthPeer(s *Server, conn *session, args [][]byte) {
	cl := conn.c
	if len(args) > 3 {
		conn.WriteError("ERR wrong number of arguments for 'dht.authpeer' command")
		return
	}
	name := string(args[1])
	m, ok := s.slots.Member(name)
	if !ok || m.Name == s.self.Name {
		conn.WriteError(fmt.Sprintf("ERR DHT.AUTHPEER: %q is not a peer of this node", truncate(args[1], 64)))
		return
	}
	if len(args) == 2 {
		var b [16]byte
		_, _ = rand.Read(b[:])
		cl.nonce, cl.nonceFor = hex.EncodeToString(b[:]), name
		conn.WriteBulkString(cl.nonce)
		return
	}
	nonce, nonceFor := cl.nonce, cl.nonceFor
	cl.nonce, cl.nonceFor = "", ""
	if nonce == "" || nonceFor != name {
		conn.WriteError("ERR DHT.AUTHPEER: ask for a nonce first (DHT.AUTHPEER <node>)")
		return
	}
	if !hmac.Equal(args[2], peerProof(s.peerSecret, name, s.self.Name, nonce)) {
		s.metrics.authFailures.Inc()
		if s.refusals.due(name, time.Now()) {
			s.log.Error("refused a peer connection: wrong cluster secret", "peer", name, "addr", cl.remote.String())
		}
		conn.WriteError(fmt.Sprintf("%s DHT.AUTHPEER %s: %v", errCodeWrongSecret, name, errWrongSecret))
		return
	}
	if cl.denied && len(s.peerSecret) == 0 {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeouts.PeerDial.Duration)
		host, _, _ := net.SplitHostPort(m.Addr)
		ok := fromPeerHost(ctx, host, cl.remote)
		cancel()
		if !ok {
			s.metrics.authFailures.Inc()
			s.log.Warn("protected mode: refused a peer connection from an address that is not its host's", "peer", name, "addr", cl.remote.String(), "host", host)
			conn.WriteError(errDenied)
			conn.Close()
			return
		}
	}
	cl.peer, cl.authed = name, true
	cl.isPeer.Store(true)
	conn.WriteString("OK")
}

// refusalLogEvery is how often a node logs, at most, that it refused one peer: a peer
// with another secret retries every probe interval.
const refusalLogEvery = 10 * time.Second

// refusalLog remembers when a node last logged refusing each peer.
type refusalLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether a refusal of peer at now is to be logged, and if so notes it.
func (r *refusalLog) due(peer string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.last[peer]) < refusalLogEvery {
		return false
	}
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	r.last[peer] = now
	return true
}

// authPeer authenticates a new connection to peer to as this node's (see
// cmdAuthPeer). ctx bounds it, or else the peer request timeout.
func (s *Server) authPeer(ctx context.Context, nc net.Conn, to *cluster.Member) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(s.cfg.Timeouts.PeerRequest.Duration)
	}
	if err := nc.SetDeadline(deadline); err != nil {
		return fmt.Errorf("authenticating: %w", err)
	}
	r := bufio.NewReaderSize(nc, 256)
	ask := func(args ...string) (redcon.RESP, error) {
		req := redcon.AppendArray(nil, len(args))
		for _, a := range args {
			req = redcon.AppendBulkString(req, a)
		}
		if _, err := nc.Write(req); err != nil {
			return redcon.RESP{}, err
		}
		reply, err := resp.ReadReply(r, nil)
		if err != nil {
			return redcon.RESP{}, err
		}
		_, v := redcon.ReadNextRESP(reply)
		if v.Type == redcon.Error {
			if strings.HasPrefix(v.String(), errCodeWrongSecret) {
				return v, errWrongSecret
			}
			return v, fmt.Errorf("peer answered: %s", v.String())
		}
		return v, nil
	}
	nonce, err := ask("DHT.AUTHPEER", s.self.Name)
	if err != nil {
		return fmt.Errorf("authenticating: %w", err)
	}
	if _, err := ask("DHT.AUTHPEER", s.self.Name, string(peerProof(s.peerSecret, s.self.Name, to.Name, nonce.String()))); err != nil {
		return fmt.Errorf("authenticating: %w", err)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("authenticating: %w", err)
	}
	return nil
}
