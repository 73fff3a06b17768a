package server

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Limits are the bounds the guard enforces on client input.
type Limits struct {
	MaxBulkLen    int
	MaxArgs       int
	MaxInlineLen  int
	MaxRequestLen int
}

// errLimit is a protocol violation found by the guard; its text is sent to the client
// as a RESP error before the connection is closed.
type errLimit struct{ msg string }

func (e *errLimit) Error() string { return "ERR Protocol error: " + e.msg }

const maxHeaderLen = 32 // "*<count>\r\n" or "$<len>\r\n"

type scanState uint8

const (
	stStart scanState = iota
	stInline
	stArrayLen
	stBulkHdr
	stBulkLen
	stBulkBody
)

// scanner follows the RESP request stream byte by byte, without buffering it, and
// reports the first byte that breaks a limit: a bulk longer than MaxBulkLen, more than
// MaxArgs arguments, an inline command longer than MaxInlineLen, or a command longer
// than MaxRequestLen. It sees the bytes before the RESP parser buffers them, so a
// client cannot make the node hold more than the limits allow.
type scanner struct {
	lim      Limits
	state    scanState
	num      int64 // the number being parsed
	digits   int
	neg      bool
	cr       bool  // the number's CR has been seen
	args     int64 // bulks still expected in this command
	skip     int64 // body bytes (with CRLF) still to pass
	inline   int   // bytes of the current inline line
	cmdBytes int64 // bytes of the current command
}

// scan consumes p and returns how many bytes are within limits; err is non-nil when
// p[n] starts a violation.
func (s *scanner) scan(p []byte) (int, error) {
	for i := 0; i < len(p); i++ {
		if s.state != stStart {
			s.cmdBytes++
			if s.cmdBytes > int64(s.lim.MaxRequestLen) {
				return i, &errLimit{fmt.Sprintf("request longer than %d bytes", s.lim.MaxRequestLen)}
			}
		}
		c := p[i]
		switch s.state {
		case stStart:
			s.cmdBytes = 1
			// As the RESP parser does: '*' starts a multibulk, a bare LF is an empty
			// line, and anything else (even CR) starts an inline line.
			if c == '*' {
				s.state, s.num, s.digits, s.neg, s.cr = stArrayLen, 0, 0, false, false
			} else if c != '\n' {
				s.state, s.inline = stInline, 1
			}
		case stInline:
			if c == '\n' {
				s.state = stStart
				continue
			}
			s.inline++
			if s.inline > s.lim.MaxInlineLen {
				return i, &errLimit{"too big inline request"}
			}
		case stArrayLen, stBulkLen:
			done, err := s.number(c)
			if err != nil {
				if s.state == stArrayLen {
					return i, &errLimit{"invalid multibulk length"}
				}
				return i, &errLimit{"invalid bulk length"}
			}
			if !done {
				continue
			}
			if s.state == stArrayLen {
				if s.neg || s.num > int64(s.lim.MaxArgs) {
					return i, &errLimit{"invalid multibulk length"}
				}
				s.args = s.num
				s.state = stBulkHdr
				if s.args == 0 {
					s.state = stStart
				}
				continue
			}
			if s.neg || s.num > int64(s.lim.MaxBulkLen) {
				return i, &errLimit{"invalid bulk length"}
			}
			s.skip, s.state = s.num+2, stBulkBody
		case stBulkHdr:
			if c != '$' {
				if c == '\r' || c == '\n' {
					c = ' ' // as Redis does: an error line must not break the reply
				}
				return i, &errLimit{fmt.Sprintf("expected '$', got '%c'", c)}
			}
			s.state, s.num, s.digits, s.neg, s.cr = stBulkLen, 0, 0, false, false
		case stBulkBody:
			// Skip the rest of the body in one step.
			n := min(s.skip, int64(len(p)-i))
			if s.cmdBytes+n-1 > int64(s.lim.MaxRequestLen) {
				// Byte i is the request's cmdBytes-th; pass those within the limit.
				return i + int(int64(s.lim.MaxRequestLen)-s.cmdBytes+1), &errLimit{fmt.Sprintf("request longer than %d bytes", s.lim.MaxRequestLen)}
			}
			s.cmdBytes += n - 1
			s.skip -= n
			i += int(n) - 1
			if s.skip == 0 {
				s.args--
				s.state = stBulkHdr
				if s.args == 0 {
					s.state = stStart
				}
			}
		}
	}
	return len(p), nil
}

// number feeds one byte of a "[-]<digits>\r\n" header.
func (s *scanner) number(c byte) (done bool, err error) {
	switch {
	case s.cr:
		if c != '\n' {
			return false, errors.New("CR without LF")
		}
		return true, nil
	case c == '-' && s.digits == 0 && !s.neg:
		s.neg = true
	case c >= '0' && c <= '9':
		s.digits++
		if s.digits > 18 {
			return false, errors.New("too long")
		}
		s.num = s.num*10 + int64(c-'0')
	case c == '\r':
		if s.digits == 0 {
			return false, errors.New("empty")
		}
		s.cr = true
	default:
		return false, errors.New("not a number")
	}
	return false, nil
}

// guardConn wraps a client connection: reads pass through the scanner, writes get a
// deadline so that a client that stops reading cannot hold the node's buffers.
type guardConn struct {
	net.Conn
	sc            scanner
	writeTimeout  time.Duration
	writeDeadline time.Time
	// now reads the clock for write deadlines; nil means time.Now.
	now       func() time.Time
	draining  func() bool
	violation error
}

// Read passes bytes through the scanner. At a violation it returns the valid prefix
// first; the next Read (made only after the RESP server has answered and flushed every
// command of that prefix) sends the client the error and fails, closing the connection.
func (g *guardConn) Read(p []byte) (int, error) {
	if g.violation != nil {
		_ = g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = g.Conn.Write([]byte("-" + g.violation.Error() + "\r\n"))
		return 0, g.violation
	}
	if g.draining() {
		return 0, errDraining
	}
	n, err := g.Conn.Read(p)
	if n > 0 {
		ok, verr := g.sc.scan(p[:n])
		if verr != nil {
			g.violation = verr
			if ok == 0 {
				return g.Read(p)
			}
			return ok, nil
		}
	}
	if err != nil && g.draining() {
		return n, errDraining
	}
	return n, err
}

// Write sends p. The write deadline is moved forward only when half of it has passed,
// which bounds a stuck client to between writeTimeout/2 and writeTimeout without
// rearming a timer on every reply.
func (g *guardConn) Write(p []byte) (int, error) {
	if g.writeTimeout > 0 {
		now := time.Now
		if g.now != nil {
			now = g.now
		}
		if t := now(); t.After(g.writeDeadline.Add(-g.writeTimeout / 2)) {
			g.writeDeadline = t.Add(g.writeTimeout)
			_ = g.Conn.SetWriteDeadline(g.writeDeadline)
		}
	}
	return g.Conn.Write(p)
}

var errDraining = errors.New("server shutting down")

// guardListener wraps every accepted connection in a guardConn.
type guardListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}
