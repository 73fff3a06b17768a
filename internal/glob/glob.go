// Package glob matches byte strings against glob-style patterns the way Redis's
// KEYS, SCAN MATCH and ACL key patterns do (Redis's stringmatchlen, case-sensitive).
//
// A pattern is made of:
//
//   - any run of bytes, of any length
//     ?       any one byte
//     [abc]   one byte of the set; [^abc] one byte not in it; a-z inside a set is a
//     range (its ends in either order), \x a literal x
//     \x      the byte x itself
//
// Redis's edge cases are kept: a set missing its "]" runs to the end of the
// pattern, "[a-]" is the range from a to "]", a "\" ending the pattern is a literal
// backslash, and the empty string matches only the empty pattern (Redis's KEYS and
// SCAN treat the pattern "*" as "every key" before matching, which Match does not).
package glob

// Match reports whether s matches pattern.
//
// It runs in O(len(pattern)·len(s)) time at worst: every element but "*" takes
// exactly one byte of s, so on a mismatch it is enough to let the last "*" seen take
// one byte more and try again from there.
func Match(pattern, s []byte) bool {
	if len(s) == 0 {
		return len(pattern) == 0
	}
	p, i := 0, 0
	star, mark := -1, 0 // the last "*" (its index) and the byte of s it started at
	for i < len(s) {
		if p < len(pattern) {
			if pattern[p] == '*' {
				for p+1 < len(pattern) && pattern[p+1] == '*' {
					p++
				}
				star, mark = p, i
				p++
				continue
			}
			if next, ok := matchOne(pattern, p, s[i]); ok {
				p, i = next, i+1
				continue
			}
		}
		if star < 0 {
			return false
		}
		mark++
		p, i = star+1, mark
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchOne matches b against the element of pattern that starts at p (not a "*"),
// and returns the index of the next element and whether b matched.
func matchOne(pattern []byte, p int, b byte) (next int, ok bool) {
	switch pattern[p] {
	case '?':
		return p + 1, true
	case '[':
		return matchSet(pattern, p+1, b)
	case '\\':
		if p+1 < len(pattern) {
			return p + 2, pattern[p+1] == b
		}
	}
	return p + 1, pattern[p] == b
}

// matchSet matches b against the set whose body starts at pattern[q] (just after
// its "["), and returns the index after the set and whether b is in it.
func matchSet(pattern []byte, q int, b byte) (next int, ok bool) {
	not := q < len(pattern) && pattern[q] == '^'
	if not {
		q++
	}
	in := false
	for ; q < len(pattern) && pattern[q] != ']'; q++ {
		switch {
		case pattern[q] == '\\' && q+1 < len(pattern):
			q++
			in = in || pattern[q] == b
		case q+2 < len(pattern) && pattern[q+1] == '-':
			lo, hi := pattern[q], pattern[q+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			in = in || lo <= b && b <= hi
			q += 2
		default:
			in = in || pattern[q] == b
		}
	}
	// q is at the "]", or at the end of a pattern whose set has none.
	return min(q+1, len(pattern)), in != not
}
