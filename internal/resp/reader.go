// Package resp reads RESP2 replies off a stream, as raw bytes, so that a node can relay
// a peer's reply to its own client without decoding it.
package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrProtocol reports a malformed reply.
var ErrProtocol = errors.New("resp: protocol error")

// MaxReplyLen bounds one reply's total size.
const MaxReplyLen = 1 << 30

// ReadReply appends one complete RESP2 reply from r to dst and returns it.
func ReadReply(r *bufio.Reader, dst []byte) ([]byte, error) {
	return readReply(r, dst, 0)
}

func readReply(r *bufio.Reader, dst []byte, depth int) ([]byte, error) {
	if depth > 64 {
		return nil, fmt.Errorf("%w: nesting deeper than 64", ErrProtocol)
	}
	start := len(dst)
	dst, err := readLine(r, dst)
	if err != nil {
		return nil, err
	}
	line := dst[start:]
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: bad line %q", ErrProtocol, line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', '-', ':':
		return dst, nil
	case '$':
		n, err := strconv.Atoi(string(body))
		if err != nil || n < -1 || n > MaxReplyLen {
			return nil, fmt.Errorf("%w: bad bulk length %q", ErrProtocol, body)
		}
		if n < 0 {
			return dst, nil
		}
		// Grow as the bytes arrive, not by the announced length at once.
		for left := n + 2; left > 0; {
			k := min(left, bulkChunk)
			dst = grow(dst, k)
			if _, err := io.ReadFull(r, dst[len(dst)-k:]); err != nil {
				return nil, fmt.Errorf("resp: read: %w", err)
			}
			left -= k
		}
		if dst[len(dst)-2] != '\r' || dst[len(dst)-1] != '\n' {
			return nil, fmt.Errorf("%w: bulk not terminated by CRLF", ErrProtocol)
		}
		return dst, nil
	case '*':
		n, err := strconv.Atoi(string(body))
		if err != nil || n < -1 || n > MaxReplyLen {
			return nil, fmt.Errorf("%w: bad array length %q", ErrProtocol, body)
		}
		for i := 0; i < n; i++ {
			if dst, err = readReply(r, dst, depth+1); err != nil {
				return nil, err
			}
			if len(dst)-start > MaxReplyLen {
				return nil, fmt.Errorf("%w: reply longer than %d bytes", ErrProtocol, MaxReplyLen)
			}
		}
		return dst, nil
	default:
		return nil, fmt.Errorf("%w: unexpected type byte %q", ErrProtocol, line[0])
	}
}

// bulkChunk is how much a bulk may grow the reply ahead of the bytes read.
const bulkChunk = 64 << 10

// readLine appends one line, up to and including '\n', to dst, however long the line
// is compared with r's buffer.
func readLine(r *bufio.Reader, dst []byte) ([]byte, error) {
	start := len(dst)
	for {
		frag, err := r.ReadSlice('\n')
		dst = append(dst, frag...)
		switch {
		case err == nil:
			return dst, nil
		case err != bufio.ErrBufferFull:
			return nil, fmt.Errorf("resp: read: %w", err)
		case len(dst)-start > MaxReplyLen:
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, MaxReplyLen)
		}
	}
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*len(b)+n)
	copy(nb, b)
	return nb
}
