package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/cluster"
	"github.com/dhtkv/dht/internal/peer"
	"github.com/dhtkv/dht/internal/resp"
)

// probeTimeout bounds one probe: a peer that does not answer within it has failed
// that probe.
func (s *Server) probeTimeout() time.Duration {
	return max(s.cfg.Timeouts.Probe.Duration, s.cfg.Timeouts.PeerDial.Duration)
}

// probeLoop probes one peer every probe interval with DHT.PING <name> <digest>, which
// answers the peer's config digest, and feeds the outcome to the membership.
func (s *Server) probeLoop(p *peerLink) {
	req := redcon.AppendArray(nil, 3)
	req = redcon.AppendBulkString(req, "DHT.PING")
	req = redcon.AppendBulkString(req, s.self.Name)
	req = redcon.AppendBulkString(req, s.digest)
	t := time.NewTicker(s.cfg.Timeouts.Probe.Duration)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(s.ctx, s.probeTimeout())
		reply, err := p.probe.Do(ctx, req)
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		if wrong := errors.Is(err, errWrongSecret); p.wrongSecret.Swap(wrong) != wrong && wrong {
			s.log.Error("peer refused this node's cluster secret; it is not admitted", "peer", p.member.Name, "addr", p.member.Addr, "err", err)
		}
		if problem := tlsProblem(err); *p.tlsProblem.Swap(&problem) != problem && problem != "" {
			s.log.Error("no TLS connection to the peer; it is not admitted", "peer", p.member.Name, "addr", p.member.Addr, "problem", problem, "err", err)
		}
		pr := cluster.Probe{Err: err}
		var groups string
		if err == nil {
			pr.Digest, groups, pr.Err = parseProbeReply(reply)
		}
		if pr.Err == nil && s.repl != nil && pr.Digest == s.digest {
			s.heardGroups(p.member.Name, groups)
		}
		if tr, changed := s.members.Observe(p.member.Name, pr); changed {
			s.logTransition(p.member, tr)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// parseProbeReply reads a DHT.PING reply: the peer's config digest and, in a
// replicated cluster, the status of the groups it is a member of (see groupStatus).
func parseProbeReply(reply []byte) (digest, groups string, err error) {
	_, r := redcon.ReadNextRESP(reply)
	switch r.Type {
	case redcon.Bulk, redcon.String:
		return r.String(), "", nil
	case redcon.Array:
		var a []redcon.RESP
		r.ForEach(func(e redcon.RESP) bool { a = append(a, e); return true })
		if len(a) == 2 && a[0].Type == redcon.Bulk && a[1].Type == redcon.Bulk {
			return a[0].String(), a[1].String(), nil
		}
	case redcon.Error:
		return "", "", fmt.Errorf("probe answered with error: %s", r.String())
	}
	return "", "", fmt.Errorf("%w: probe answered with %q", resp.ErrProtocol, reply)
}

func (s *Server) logTransition(m *cluster.Member, tr cluster.Transition) {
	s.metrics.peerUp.WithLabelValues(m.Name).Set(boolGauge(tr.To == cluster.Up))
	attrs := []any{"peer", m.Name, "addr", m.Addr, "from", tr.From.String(), "to", tr.To.String()}
	if tr.Detail != "" {
		attrs = append(attrs, "detail", tr.Detail)
	}
	switch tr.To {
	case cluster.Up:
		s.log.Info("peer up", attrs...)
	case cluster.Mismatch:
		s.log.Error("peer runs a different config; it will not be used", attrs...)
	default:
		s.log.Warn("peer down; its slots answer CLUSTERDOWN", attrs...)
	}
	if tr.BarrierPassed {
		s.log.Info("startup barrier passed: every node is up; serving data commands",
			"after", time.Since(s.started).Round(time.Millisecond).String())
	}
}

// barrierLog says, every two seconds until the startup barrier passes, which nodes the
// node still waits for.
func (s *Server) barrierLog() {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for !s.members.BarrierPassed() {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if s.members.BarrierPassed() {
			return
		}
		if waiting := s.waitingFor(); waiting != "" {
			s.log.Info("startup barrier: waiting for nodes", "waiting", waiting)
		}
	}
}

// waitingFor lists the peers that are not up, and says of those that refuse this
// node's cluster secret, or with which TLS fails, why: "n2,n3 (n3: wrong cluster
// secret)".
func (s *Server) waitingFor() string {
	names := s.members.NotUp()
	out := strings.Join(names, ",")
	var why []string
	for _, n := range names {
		p := s.peers[n]
		switch {
		case p == nil:
		case p.wrongSecret.Load():
			why = append(why, n+": "+errWrongSecret.Error())
		case *p.tlsProblem.Load() != "":
			why = append(why, n+": "+*p.tlsProblem.Load())
		}
	}
	if len(why) > 0 {
		out += " (" + strings.Join(why, "; ") + ")"
	}
	return out
}

// tlsProblem says what a failed request to a peer tells of TLS between the two
// nodes, or returns "" when it tells nothing: the peer's certificate does not check
// out, the peer refused the handshake (this node's certificate), or it does not
// speak TLS.
func tlsProblem(err error) string {
	var (
		verify *tls.CertificateVerificationError
		header tls.RecordHeaderError
		op     *net.OpError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &verify):
		return "TLS: its certificate: " + verify.Err.Error()
	case errors.As(err, &header):
		return "TLS: it does not speak TLS"
	case errors.As(err, &op) && op.Op == "remote error":
		return "TLS: it refused the handshake: " + op.Err.Error()
	}
	return ""
}

// errClusterDown is the text of -CLUSTERDOWN replies, with the reason appended.
const errClusterDown = "CLUSTERDOWN The cluster is down"

// unavailable returns the reason a data command cannot run now for an owner, or "".
func (s *Server) unavailable(owner *cluster.Member) string {
	if !s.members.BarrierPassed() {
		return fmt.Sprintf("%s: startup barrier: waiting for nodes %s", errClusterDown, s.waitingFor())
	}
	if owner.Name == s.self.Name {
		return ""
	}
	switch st := s.members.State(owner.Name); st {
	case cluster.Up:
		return ""
	default:
		return fmt.Sprintf("%s: node %s (%s) owning slot range %s is %s", errClusterDown, owner.Name, owner.Addr, owner.Ranges[0].String(), st)
	}
}

// forward relays a command to the peer that owns its slot and writes the peer's reply
// back as it came. extra lengthens the wait for commands that block (DHT.BARRIER).
func (s *Server) forward(conn *session, owner *cluster.Member, raw []byte, extra time.Duration) {
	s.tryForward(conn, owner, raw, extra, false)
}

// tryForward is forward that, when mayRetry is set and the request could not be sent
// at all (the peer is unreachable), writes nothing and returns false: the caller may
// route the command again, to a new leader.
func (s *Server) tryForward(conn *session, owner *cluster.Member, raw []byte, extra time.Duration, mayRetry bool) bool {
	p := s.peers[owner.Name]
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeouts.PeerRequest.Duration+extra)
	defer cancel()
	s.metrics.forwarded.Inc()
	pool := p.data
	if conn.txn {
		pool = p.txn
	}
	reply, err := pool.Do(ctx, raw)
	if err != nil {
		s.metrics.forwardErrors.Inc()
		if mayRetry && peer.NotSent(err) {
			return false
		}
		why := "did not answer"
		if errors.Is(err, context.DeadlineExceeded) {
			why = fmt.Sprintf("did not answer within %s", s.cfg.Timeouts.PeerRequest.Duration+extra)
		}
		conn.WriteError(fmt.Sprintf("%s: node %s (%s) %s: %v", errClusterDown, owner.Name, owner.Addr, why, err))
		return true
	}
	conn.WriteRaw(reply)
	return true
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
