package server

import (
	"bytes"
	"errors"
	"fmt"
)

// Limits are the bounds the scanner enforces on client input.
type Limits struct {
	MaxBulkLen    int
	MaxArgs       int
	MaxInlineLen  int
	MaxRequestLen int
}

// errLimit is a protocol violation found by the scanner; its text is sent to the client
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

// scanner follows the RESP request stream, without buffering it, and
// reports the first byte that breaks a limit: a bulk longer than MaxBulkLen, more than
// MaxArgs arguments, an inline command longer than MaxInlineLen, or a command longer
// than MaxRequestLen. It sees the bytes before the RESP parser does, so a client
// cannot make the node hold more than the limits allow, and it counts the commands
// that end, so that the parser runs only when one is complete.
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
	// ends counts the commands whose last byte has been passed: when it has not moved,
	// no new command is complete.
	ends uint64
}

// scan consumes p and returns how many bytes are within limits; err is non-nil when
// p[n] starts a violation. Well-formed headers and bulk bodies are passed whole; only
// what the fast paths do not recognise goes through the state machine byte by byte,
// which finds every violation and the byte where it starts.
func (s *scanner) scan(p []byte) (int, error) {
	for i := 0; i < len(p); {
		if s.state == stStart {
			c := p[i]
			i++
			s.cmdBytes = 1
			// As the RESP parser does: '*' starts a multibulk, a bare LF is an empty
			// line, and anything else (even CR) starts an inline line.
			if c == '*' {
				s.state, s.num, s.digits, s.neg, s.cr = stArrayLen, 0, 0, false, false
				// The common case: the whole header in p and within limits.
				if n, j, ok := parseHeader(p, i); ok && n > 0 && n <= int64(s.lim.MaxArgs) && int64(j-i) < int64(s.lim.MaxRequestLen) {
					s.args, s.state, s.cmdBytes = n, stBulkHdr, int64(j-i+1)
					i = j
				}
			} else if c != '\n' {
				s.state, s.inline = stInline, 1
			} else {
				s.ends++
			}
			continue
		}
		// Every byte from here on counts toward the command: p[i:end] may still pass.
		end := len(p)
		if room := int64(s.lim.MaxRequestLen) - s.cmdBytes; room < int64(end-i) {
			if room <= 0 {
				return i, &errLimit{fmt.Sprintf("request longer than %d bytes", s.lim.MaxRequestLen)}
			}
			end = i + int(room)
		}
		j, err := s.step(p[:end], i)
		s.cmdBytes += int64(j - i)
		if err != nil {
			return j, err
		}
		i = j
	}
	return len(p), nil
}

// step consumes bytes of a command from p[i:] in the current state (not stStart), up
// to the end of p or the state's end, and returns the index of the first byte it did
// not consume; err is non-nil when p[j] starts a violation.
func (s *scanner) step(p []byte, i int) (j int, err error) {
	switch s.state {
	case stInline:
		line := p[i:]
		n := bytes.IndexByte(line, '\n')
		if n < 0 {
			n = len(line)
		}
		if over := s.inline + n - s.lim.MaxInlineLen; over > 0 {
			return i + n - over, &errLimit{"too big inline request"}
		}
		s.inline += n
		if n == len(line) {
			return len(p), nil
		}
		s.state = stStart
		s.ends++
		return i + n + 1, nil
	case stArrayLen, stBulkLen:
		for j = i; j < len(p); j++ {
			done, err := s.number(p[j])
			if err != nil {
				if s.state == stArrayLen {
					return j, &errLimit{"invalid multibulk length"}
				}
				return j, &errLimit{"invalid bulk length"}
			}
			if done {
				if err := s.header(); err != nil {
					return j, err
				}
				return j + 1, nil
			}
		}
		return j, nil
	case stBulkHdr:
		if j, ok := s.bulks(p, i); ok {
			return j, nil
		}
		c := p[i]
		if c != '$' {
			if c == '\r' || c == '\n' {
				c = ' ' // as Redis does: an error line must not break the reply
			}
			return i, &errLimit{fmt.Sprintf("expected '$', got '%c'", c)}
		}
		s.state, s.num, s.digits, s.neg, s.cr = stBulkLen, 0, 0, false, false
		return i + 1, nil
	default: // stBulkBody: skip the rest of the body in one step.
		n := min(s.skip, int64(len(p)-i))
		s.skip -= n
		if s.skip == 0 {
			s.endBulk()
		}
		return i + int(n), nil
	}
}

// bulks is the fast path of stBulkHdr: it passes whole bulks of p from p[i] on whose
// headers are well-formed and within limits, and reports whether it passed any. It
// leaves any other input to the byte-at-a-time path.
func (s *scanner) bulks(p []byte, i int) (j int, ok bool) {
	for i < len(p) && p[i] == '$' {
		n, k, hok := parseHeader(p, i+1)
		if !hok || n > int64(s.lim.MaxBulkLen) {
			break
		}
		ok = true
		i = k
		s.skip, s.state = n+2, stBulkBody
		// The body, or as much of it as p holds.
		m := min(s.skip, int64(len(p)-i))
		s.skip -= m
		i += int(m)
		if s.skip > 0 {
			break
		}
		s.endBulk()
		if s.state == stStart {
			break
		}
	}
	return i, ok
}

// parseHeader parses the digits and CRLF of a complete, non-negative "<digits>\r\n" header
// starting at p[i], and returns the number and the index just past the LF; ok is false
// when p does not hold such a header of at most 18 digits.
func parseHeader(p []byte, i int) (n int64, j int, ok bool) {
	for j = i; j < len(p) && j-i < 19; j++ {
		d := p[j] - '0'
		if d > 9 {
			break
		}
		n = n*10 + int64(d)
	}
	if j == i || j-i > 18 || j+1 >= len(p) || p[j] != '\r' || p[j+1] != '\n' {
		return 0, 0, false
	}
	return n, j + 2, true
}

// header acts on a complete multibulk or bulk length.
func (s *scanner) header() error {
	if s.state == stArrayLen {
		if s.neg || s.num > int64(s.lim.MaxArgs) {
			return &errLimit{"invalid multibulk length"}
		}
		s.args = s.num
		s.state = stBulkHdr
		if s.args == 0 {
			s.state = stStart
			s.ends++
		}
		return nil
	}
	if s.neg || s.num > int64(s.lim.MaxBulkLen) {
		return &errLimit{"invalid bulk length"}
	}
	s.skip, s.state = s.num+2, stBulkBody
	return nil
}

// endBulk moves past a complete bulk: to the next one, or to the next command.
func (s *scanner) endBulk() {
	s.args--
	s.state = stBulkHdr
	if s.args == 0 {
		s.state = stStart
		s.ends++
	}
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
