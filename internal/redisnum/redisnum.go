// Package redisnum reads and writes numbers the way Redis does, so that replies
// match it byte for byte: 64-bit integers as Redis's string2ll reads them, and the
// x87 80-bit long doubles of INCRBYFLOAT (read as strtold reads them, added with a
// 64-bit significand and printed as "%.17Lf" with the trailing zeros cut).
package redisnum

import (
	"bytes"
	"math"
	"math/big"
)

// maxIntLen is Redis's LONG_STR_SIZE: an integer is shorter than this.
const maxIntLen = 21

// ParseInt parses b as Redis parses an integer argument or value: an optional '-'
// and decimal digits without leading zeros (or a lone "0"), in the int64 range, and
// nothing else: no '+', no spaces, no "-0".
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= maxIntLen {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' || v > math.MaxUint64/10 {
			return 0, false
		}
		d := uint64(c - '0')
		v *= 10
		if v > math.MaxUint64-d {
			return 0, false
		}
		v += d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return int64(-v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// The x87 long double: a 64-bit significand and, in big.Float's terms (a mantissa in
// [0.5, 1)), exponents up to ldMaxExp for finite values and down to ldMinExp for
// normal ones; below those the values are subnormal, down to 2^ldTinyExp.
const (
	ldPrec    = 64
	ldMaxExp  = 16384
	ldMinExp  = -16381
	ldTinyExp = -16445
	// maxFloatLen is Redis's MAX_LONG_DOUBLE_CHARS: a float is shorter than this.
	maxFloatLen = 5 * 1024
	// maxDecExp bounds the decimal exponents worth computing: past it a value
	// overflows or underflows a long double whatever its digits.
	maxDecExp = 5000
)

// ParseLongDouble parses b as Redis reads a float (strtold over the whole string):
// an optional sign, then decimal digits with an optional point and exponent,
// hexadecimal ones ("0x1.8p3"), or "inf"/"infinity" in any case; not NaN, no
// spaces, shorter than 5120 bytes, and neither overflowing the long double range nor
// underflowing to zero. The value is rounded to a long double's 64-bit significand.
func ParseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) >= maxFloatLen {
		return nil, false
	}
	s, neg := b, false
	if s[0] == '+' || s[0] == '-' {
		s, neg = s[1:], s[0] == '-'
	}
	if bytes.EqualFold(s, []byte("inf")) || bytes.EqualFold(s, []byte("infinity")) {
		return new(big.Float).SetInf(neg), true
	}
	var (
		x  *big.Float
		ok bool
	)
	if len(s) > 2 && s[0] == '0' && s[1]|0x20 == 'x' {
		x, ok = parseHex(s[2:])
	} else {
		x, ok = parseDec(s)
	}
	if !ok || !inRange(x) {
		return nil, false
	}
	if neg {
		x.Neg(x)
	}
	return x, true
}

// digits splits s into the digits before and after a point and what follows them,
// where isDigit tells the digits; ok is false when there is no digit at all.
func digits(s []byte, isDigit func(byte) bool) (intPart, frac, rest []byte, ok bool) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart, rest = s[:i], s[i:]
	if len(rest) > 0 && rest[0] == '.' {
		j := 1
		for j < len(rest) && isDigit(rest[j]) {
			j++
		}
		frac, rest = rest[1:j], rest[j:]
	}
	return intPart, frac, rest, len(intPart)+len(frac) > 0
}

// exponent parses what follows a mantissa: nothing, or the marker (e or p, in any
// case), an optional sign and decimal digits. Exponents too large to matter are cut
// to ±maxFloatExp.
func exponent(s []byte, marker byte) (int, bool) {
	if len(s) == 0 {
		return 0, true
	}
	if s[0]|0x20 != marker || len(s) < 2 {
		return 0, false
	}
	s = s[1:]
	neg := s[0] == '-'
	if s[0] == '+' || s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, false
	}
	e := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		e = min(e*10+int(c-'0'), maxFloatExp)
	}
	if neg {
		e = -e
	}
	return e, true
}

// maxFloatExp is where exponent stops counting: far past any long double, and small
// enough that adding a string's worth of digits to it cannot overflow.
const maxFloatExp = 1 << 24

func isDec(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDec(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }

// parseDec parses unsigned decimal digits with an optional point and exponent,
// rounding to a long double's significand.
func parseDec(s []byte) (*big.Float, bool) {
	intPart, frac, rest, ok := digits(s, isDec)
	if !ok {
		return nil, false
	}
	exp, ok := exponent(rest, 'e')
	if !ok {
		return nil, false
	}
	mant := append(append([]byte(nil), intPart...), frac...)
	mant = bytes.TrimLeft(mant, "0")
	x := new(big.Float).SetPrec(ldPrec)
	if len(mant) == 0 {
		return x, true
	}
	exp -= len(frac)
	// The value is mant × 10^exp, between 10^(len(mant)+exp-1) and 10^(len(mant)+exp).
	if mag := len(mant) + exp; mag > maxDecExp || mag < -maxDecExp {
		return nil, false // overflows, or underflows to zero: strtold's ERANGE
	}
	var m big.Int
	m.SetString(string(mant), 10)
	var p big.Int
	p.Exp(big.NewInt(10), big.NewInt(int64(max(exp, -exp))), nil)
	if exp >= 0 {
		return x.SetInt(m.Mul(&m, &p)), true
	}
	return x.Quo(new(big.Float).SetInt(&m), new(big.Float).SetInt(&p)), true
}

// parseHex parses unsigned hexadecimal digits with an optional point and binary
// exponent, rounding to a long double's significand.
func parseHex(s []byte) (*big.Float, bool) {
	intPart, frac, rest, ok := digits(s, isHex)
	if !ok {
		return nil, false
	}
	exp, ok := exponent(rest, 'p')
	if !ok {
		return nil, false
	}
	var m big.Int
	m.SetString(string(intPart)+string(frac), 16)
	x := new(big.Float).SetPrec(ldPrec).SetInt(&m)
	if m.Sign() == 0 {
		return x, true
	}
	return x.SetMantExp(x, exp-4*len(frac)), true
}

// inRange reports whether x, rounded to a long double's significand, is a value a
// long double holds: not too large, and, unless it is zero as written, not so small
// that it rounds to zero.
func inRange(x *big.Float) bool {
	if x.Sign() == 0 {
		return true
	}
	var m big.Float
	e := x.MantExp(&m)
	switch {
	case e > ldMaxExp:
		return false
	case e < ldTinyExp:
		// Below half the smallest subnormal, or at it: rounds to zero (ties to even).
		return false
	case e == ldTinyExp:
		return m.Abs(&m).Cmp(big.NewFloat(0.5)) > 0
	}
	return true
}

// AddLongDouble returns a+b rounded to a long double's significand, as x87
// arithmetic adds, or false when the sum is infinite or not a number.
func AddLongDouble(a, b *big.Float) (*big.Float, bool) {
	if a.IsInf() || b.IsInf() {
		return nil, false
	}
	z := new(big.Float).SetPrec(ldPrec).Add(a, b)
	if z.Sign() != 0 && z.MantExp(nil) > ldMaxExp {
		return nil, false
	}
	return z, true
}

// AppendLongDouble appends x as Redis prints a long double for people
// (LD_STR_HUMAN): printf's "%.17Lf", less trailing zeros and a trailing point, and
// "0" for a negative zero.
func AppendLongDouble(dst []byte, x *big.Float) []byte {
	start := len(dst)
	dst = x.Append(dst, 'f', 17)
	if bytes.IndexByte(dst[start:], '.') >= 0 {
		dst = bytes.TrimRight(dst, "0")
		dst = bytes.TrimSuffix(dst, []byte("."))
	}
	if string(dst[start:]) == "-0" {
		dst = append(dst[:start], '0')
	}
	return dst
}
