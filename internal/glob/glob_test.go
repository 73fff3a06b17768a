package glob

import (
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", false}, // KEYS and SCAN treat "*" as every key before matching
		{"**", "", false},
		{"*", "abc", true},
		{"*", "a/b", true},
		{"user:*", "user:1", true},
		{"user:*", "user:", true}, // trailing stars match nothing at the end
		{"user:*", "use", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*b*c", "abcbc", true},
		{"*a", "bbbba", true},
		{"*a*a*a", "aaa", true},
		{"*a*a*a", "aa", false},
		{"?", "a", true},
		{"?", "", false},
		{"??", "a", false},
		{"h?llo", "hello", true},
		{"h[ae]llo", "hello", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hbllo", true},
		{"h[a-b]llo", "hcllo", false},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{`a\`, `a\`, true},            // a backslash ending the pattern is itself
		{`[\]]`, "]", true},           // an escaped "]" in a set
		{`[\`, `\`, true},             // a set "[\" without its "]"
		{"[]", "a", false},            // the empty set
		{"[]a]", "a]", false},         // "[]" then "a]"
		{"[a-]", "]", true},           // a range from a to "]"
		{"[a-]", "-", false},          // not a and "-"
		{"[a-]b", "^", true},          // "^" is between "]" and "a"; the set runs on to take b
		{"[a-]b", "b", true},          // ... and the set has no "]" of its own
		{"[a-]b", "^b", false},        // ... so it takes one byte
		{"[abc", "b", true},           // a set without its "]" runs to the end
		{"[abc", "bc", false},         // ... and takes one byte
		{"[^", "x", true},             // the empty negated set without "]"
		{"[", "x", false},             // the empty set without "]"
		{"*[0-9]", "key7", true},      //
		{"*[0-9]", "key", false},      //
		{"k*", "k", true},             //
		{"x*\x00", "xa\x00", true},    // binary patterns and keys
		{"[\x00-\x02]", "\x01", true}, //
		{"a**?", "ab", true},          //
		{"a*?", "a", false},           //
	} {
		if got := Match([]byte(tc.pattern), []byte(tc.s)); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
		if got := reference([]byte(tc.pattern), []byte(tc.s)); got != tc.want {
			t.Errorf("reference(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// reference matches as Redis's recursive matcher is described: at a "*", it tries
// the rest of the pattern against every non-empty suffix of s. It is exponential,
// so it serves only to check Match on short inputs.
func reference(pattern, s []byte) bool {
	p := 0
	for p < len(pattern) && len(s) > 0 {
		if pattern[p] == '*' {
			for p+1 < len(pattern) && pattern[p+1] == '*' {
				p++
			}
			if p == len(pattern)-1 {
				return true
			}
			for j := range s {
				if reference(pattern[p+1:], s[j:]) {
					return true
				}
			}
			return false
		}
		next, ok := matchOne(pattern, p, s[0])
		if !ok {
			return false
		}
		p, s = next, s[1:]
		if len(s) == 0 {
			for p < len(pattern) && pattern[p] == '*' {
				p++
			}
		}
	}
	return p == len(pattern) && len(s) == 0
}

// FuzzMatch checks Match against the reference matcher.
func FuzzMatch(f *testing.F) {
	for _, seed := range [][2]string{{"a*b?c", "axxbyc"}, {"[^a-c]*", "d"}, {`\[*]`, "[x]"}, {"*a*", "bab"}, {"[a-", "-"}} {
		f.Add([]byte(seed[0]), []byte(seed[1]))
	}
	f.Fuzz(func(t *testing.T, pattern, s []byte) {
		if len(pattern) > 12 || len(s) > 16 {
			return
		}
		if got, want := Match(pattern, s), reference(pattern, s); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", pattern, s, got, want)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	pattern, key := []byte("user:*:session[0-9]"), []byte("user:123456:session7")
	for b.Loop() {
		Match(pattern, key)
	}
}
