package iin

import (
	"errors"
	"strings"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, s := range validIINs {
		f.Add(s)
	}
	for _, s := range validBINs {
		f.Add(s)
	}
	for _, s := range []string{
		"", " ", "12345", "9001013000170", "900101300018", unissued + "0",
		"９００１０１３０００１７", "٩٠٠١٠١٣٠٠٠١٧", "900101 300017", " 900101300017\n",
		"90010130001A", "240170000011", "\xff\xfe00101300017",
	} {
		f.Add(s)
	}
}

// checkParsed checks the invariants of a successful parse of in into got.
func checkParsed(t *testing.T, in, got string) {
	t.Helper()
	if !allDigits(got, Length) {
		t.Fatalf("parse(%q) = %q: not 12 ASCII digits", in, got)
	}
	c, ok := ControlDigit(got[:Length-1])
	if !ok || int(got[Length-1]-'0') != c {
		t.Fatalf("parse(%q) = %q: ControlDigit(first 11) = %d, %v", in, got, c, ok)
	}
	if got != strings.TrimSpace(in) {
		t.Fatalf("parse(%q) = %q: not the trimmed input", in, got)
	}
}

// checkFailed checks that err is an *Error with a code of the given prefix
// ("iin." or "bin.") and that the input really is invalid: a trimmed input of
// 12 ASCII digits with a valid control digit may only fail as a BIN, and only
// for its type digit.
func checkFailed(t *testing.T, in string, err error, prefix string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !strings.HasPrefix(e.Code, prefix) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("parse(%q) error %v (%T): want an *Error with code %s*", in, err, err, prefix)
	}
	if s := strings.TrimSpace(in); allDigits(s, Length) && e.Code != "bin.kind" {
		if c, ok := ControlDigit(s[:Length-1]); ok && int(s[Length-1]-'0') == c {
			t.Fatalf("parse(%q) error %v; want success", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		// Never panics, whatever the input and whatever Parse returned.
		n.BirthDate()
		_ = n.Sex().String()
		IIN(s).BirthDate()
		_ = IIN(s).Sex().String()
		if err != nil {
			checkFailed(t, s, err, "iin.")
			return
		}
		checkParsed(t, s, n.String())
		if again, err := Parse(n.String()); err != nil || again != n {
			t.Fatalf("Parse(%q) = %q, %v; want round trip to %q", n.String(), again, err, n)
		}
		if d, ok := n.BirthDate(); ok && d.Format("060102") != n.String()[:6] {
			t.Fatalf("IIN(%q).BirthDate() = %v: disagrees with digits 1-6", n, d)
		}
	})
}

func FuzzParseBIN(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBIN(s)
		if err != nil {
			checkFailed(t, s, err, "bin.")
			return
		}
		checkParsed(t, s, b.String())
		if b[4] < '4' || b[4] > '6' {
			t.Fatalf("ParseBIN(%q) = %q: 5th digit not 4-6", s, b)
		}
		if again, err := ParseBIN(b.String()); err != nil || again != b {
			t.Fatalf("ParseBIN(%q) = %q, %v; want round trip to %q", b.String(), again, err, b)
		}
	})
}
