package acl

// Match reports whether key matches the glob pattern as Redis matches key patterns:
// "*" is any run of bytes (slashes included), "?" any one byte, "[abc]", "[a-z]" and
// "[^abc]" a byte of (or not of) a set, and "\" makes the next byte literal.
func Match(pattern string, key []byte) bool {
	p, k := 0, 0
	// Where to resume after the last "*": its pattern position, and the key
	// position it has swallowed up to.
	star, mark := -1, 0
	for k < len(key) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				star, mark = p, k
				p++
				continue
			case '?':
				p++
				k++
				continue
			case '[':
				if next, ok := matchClass(pattern, p, key[k]); ok {
					p = next
					k++
					continue
				}
			case '\\':
				if p+1 < len(pattern) && pattern[p+1] == key[k] {
					p += 2
					k++
					continue
				}
				if p+1 == len(pattern) && c == key[k] {
					p++
					k++
					continue
				}
			default:
				if c == key[k] {
					p++
					k++
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		mark++
		p, k = star+1, mark
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches b against the class that starts at pattern[p] ("["); it
// returns the position after the class and whether b is in it. A class without its
// "]" runs to the end of the pattern, as in Redis.
func matchClass(pattern string, p int, b byte) (next int, ok bool) {
	p++
	negate := p < len(pattern) && pattern[p] == '^'
	if negate {
		p++
	}
	in := false
	for p < len(pattern) && pattern[p] != ']' {
		switch {
		case pattern[p] == '\\' && p+1 < len(pattern):
			in = in || pattern[p+1] == b
			p += 2
		case p+2 < len(pattern) && pattern[p+1] == '-' && pattern[p+2] != ']':
			lo, hi := pattern[p], pattern[p+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			in = in || lo <= b && b <= hi
			p += 3
		default:
			in = in || pattern[p] == b
			p++
		}
	}
	if p < len(pattern) {
		p++ // the "]"
	}
	return p, in != negate
}
