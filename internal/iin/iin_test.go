package iin

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// Test vectors from docs kz.md §1.4: synthetic IINs checked by script, and
// public BINs of bank units. None of the IINs belongs to a known person.
var (
	validIINs = []string{
		"900101300017", // 1990-01-01, male
		"010515600010", // 2001-05-15, female
		"851231400011", // 1985-12-31, female
		"240301500018", // 2024-03-01, male
		"900101300811", // pass 1 gives 10, pass 2 gives 1
	}
	validBINs = []string{
		"240140000011", // Jan 2024, resident, head unit
		"150741000014", // Jul 2015, resident, branch
		"990140000017",
		"940140000385",
		"950341000052",
		"961141000023",
		"070941024691",
	}
)

// unissued is an 11-digit prefix for which both passes give 10.
const unissued = "90010130080"

func TestControlDigit(t *testing.T) {
	tests := []struct {
		first11 string
		want    int
		wantOK  bool
	}{
		{"90010130001", 7, true},
		{"01051560001", 0, true},
		{"85123140001", 1, true},
		{"24030150001", 8, true},
		{"90010130081", 1, true}, // second pass
		{"24014000001", 1, true},
		{"07094102469", 1, true},
		{unissued, 0, false},
		{"", 0, false},
		{"9001013000", 0, false},   // 10 digits
		{"900101300017", 0, false}, // 12 digits
		{"9001013000a", 0, false},
		{"9001013000\u0661", 0, false}, // Arabic-Indic one: 11 runes, 12 bytes
	}
	for _, tt := range tests {
		got, ok := ControlDigit(tt.first11)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ControlDigit(%q) = %d, %v; want %d, %v", tt.first11, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseValid(t *testing.T) {
	for _, s := range validIINs {
		for _, in := range []string{s, " " + s, s + " ", "\t" + s + "\n"} {
			got, err := Parse(in)
			if err != nil {
				t.Errorf("Parse(%q) error: %v", in, err)
				continue
			}
			if got.String() != s {
				t.Errorf("Parse(%q) = %q; want %q", in, got, s)
			}
		}
	}
}

func TestParseBINValid(t *testing.T) {
	for _, s := range validBINs {
		got, err := ParseBIN(" " + s + " ")
		if err != nil {
			t.Errorf("ParseBIN(%q) error: %v", s, err)
			continue
		}
		if got.String() != s {
			t.Errorf("ParseBIN(%q) = %q; want %q", s, got, s)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name, in, code string
	}{
		{"empty", "", "iin.empty"},
		{"only spaces", "   ", "iin.empty"},
		{"short", "12345", "iin.length"},
		{"13 digits", "9001013000170", "iin.length"},
		{"11 digits", "90010130001", "iin.length"},
		{"letters", "90010130001A", "iin.not_digits"},
		{"all letters", "abcdefghijkl", "iin.not_digits"},
		{"full-width digits", "９００１０１３０００１７", "iin.not_digits"},
		{"Arabic-Indic digits", "٩٠٠١٠١٣٠٠٠١٧", "iin.not_digits"},
		{"space inside, 13 chars", "900101 300017", "iin.length"},
		{"space instead of digit", "900101 00017", "iin.not_digits"},
		{"dash inside", "900101-30001", "iin.not_digits"},
		{"sign", "+90010130001", "iin.not_digits"},
		{"wrong control digit", "900101300018", "iin.checksum"},
		{"valid BIN is checked as IIN too", "240140000012", "iin.checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, nil; want error %s", tt.in, got, tt.code)
			}
			if got != "" {
				t.Errorf("Parse(%q) returned %q with the error; want \"\"", tt.in, got)
			}
			checkCode(t, err, tt.code)
		})
	}
}

func TestParseBINInvalid(t *testing.T) {
	tests := []struct {
		name, in, code string
	}{
		{"empty", "", "bin.empty"},
		{"short", "12345", "bin.length"},
		{"13 digits", "2401400000110", "bin.length"},
		{"letters", "24014000001X", "bin.not_digits"},
		{"full-width digits", "２４０１４０００００１１", "bin.not_digits"},
		{"an IIN", "900101300017", "bin.kind"},
		{"kind 7", "240170000011", "bin.kind"},
		{"wrong control digit", "240140000012", "bin.checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBIN(tt.in)
			if err == nil {
				t.Fatalf("ParseBIN(%q) = %q, nil; want error %s", tt.in, got, tt.code)
			}
			checkCode(t, err, tt.code)
		})
	}
}

func checkCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Code != code {
		t.Errorf("error code = %q; want %q (message %q)", e.Code, code, e.Error())
	}
	if e.Error() == "" {
		t.Errorf("error %q has an empty message", e.Code)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false; want true", err)
	}
	if !errors.Is(err, &Error{Code: code}) {
		t.Errorf("errors.Is(%v, &Error{Code: %q}) = false; want true", err, code)
	}
	if errors.Is(err, &Error{Code: "other"}) {
		t.Errorf("errors.Is(%v, &Error{Code: \"other\"}) = true; want false", err)
	}
}

// An IIN must not be rejected for its date or century digit: since 2013 such
// numbers are formed on purpose.
func TestParseAcceptsNonDateDigits(t *testing.T) {
	for _, prefix := range []string{
		"99023130001", // 31 February
		"90130130001", // month 13
		"90010100001", // century digit 0
		"90010170001", // century digit 7
		"90010190001", // century digit 9
		"90014030001", // 5th digit 4, as in a BIN
	} {
		c, ok := ControlDigit(prefix)
		if !ok {
			t.Fatalf("test prefix %s is never issued; pick another", prefix)
		}
		s := prefix + strconv.Itoa(c)
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q) error %v; want success", s, err)
		}
	}
}

func TestUnissuedPrefix(t *testing.T) {
	if d, ok := ControlDigit(unissued); ok {
		t.Fatalf("ControlDigit(%q) = %d, true; want ok=false", unissued, d)
	}
	for d := range 10 {
		s := unissued + strconv.Itoa(d)
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded; want iin.checksum", s)
		} else {
			checkCode(t, err, "iin.checksum")
		}
	}
}

// pass1 is the first pass of the control digit: Σ dᵢ·i mod 11.
func pass1(first11 string) int {
	sum := 0
	for i := range Length - 1 {
		sum += int(first11[i]-'0') * (i + 1)
	}
	return sum % 11
}

// A single mistyped digit is caught, except where the algorithm itself cannot
// catch it. The test states those exceptions exactly, so any other accepted
// change is a bug:
//
//   - digit 12 (the control digit): always caught;
//   - digits 1-10: caught when pass 1 decides both the original and the
//     changed number; when pass 2 decides either of them, the other pass can
//     happen to give the same control digit;
//   - digit 11: its pass-1 weight is 11 ≡ 0 (mod 11), so a change is never
//     caught when pass 1 decides, and always caught when pass 2 decides.
func TestSingleDigitChange(t *testing.T) {
	for _, s := range append(append([]string{}, validIINs...), validBINs...) {
		usesPass2 := pass1(s[:Length-1]) == 10
		for pos := range Length {
			for d := byte('0'); d <= '9'; d++ {
				if s[pos] == d {
					continue
				}
				b := []byte(s)
				b[pos] = d
				changed := string(b)
				_, err := Parse(changed)
				var wantOK bool
				switch {
				case pos == Length-1:
					wantOK = false
				case pos == Length-2:
					wantOK = !usesPass2
				case !usesPass2 && pass1(changed[:Length-1]) != 10:
					wantOK = false
				default:
					continue // pass 2 may or may not give the same digit
				}
				if gotOK := err == nil; gotOK != wantOK {
					t.Errorf("Parse(%q) (digit %d of %s changed): ok = %v; want %v", changed, pos+1, s, gotOK, wantOK)
				}
			}
		}
	}
}

// For any 11-digit prefix, either exactly one control digit makes a valid
// number and ControlDigit returns it, or none does and ControlDigit says so.
func TestControlDigitProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	unissuedSeen := 0
	for range 10000 {
		b := make([]byte, Length-1)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		prefix := string(b)
		var valid []int
		for d := range 10 {
			if _, err := Parse(prefix + strconv.Itoa(d)); err == nil {
				valid = append(valid, d)
			}
		}
		c, ok := ControlDigit(prefix)
		switch {
		case len(valid) == 1 && ok && c == valid[0]:
		case len(valid) == 0 && !ok:
			unissuedSeen++
		default:
			t.Fatalf("prefix %s: valid control digits %v, ControlDigit = %d, %v", prefix, valid, c, ok)
		}
	}
	// About 1 prefix in 121 is never issued; make sure the case was exercised.
	if unissuedSeen == 0 {
		t.Errorf("no never-issued prefix among 10,000 random ones; the test does not cover that case")
	}
}

func TestBirthDateAndSex(t *testing.T) {
	tests := []struct {
		in     IIN
		date   string // "" when BirthDate must report false
		sex    Sex
		sexStr string
	}{
		{"900101300017", "1990-01-01", SexMale, "male"},
		{"010515600010", "2001-05-15", SexFemale, "female"},
		{"851231400011", "1985-12-31", SexFemale, "female"},
		{"240301500018", "2024-03-01", SexMale, "male"},
		{"991231100000", "1899-12-31", SexMale, "male"},
		{"000229600000", "2000-02-29", SexFemale, "female"}, // leap year
		{"000101200000", "1800-01-01", SexFemale, "female"},
		{"010229500000", "", SexMale, "male"},       // 29 Feb 2001 does not exist
		{"990431300000", "", SexMale, "male"},       // 31 April
		{"991301300000", "", SexMale, "male"},       // month 13
		{"990100300000", "", SexMale, "male"},       // day 0
		{"900101000000", "", SexUnknown, "unknown"}, // digit 7 is 0
		{"900101700000", "", SexUnknown, "unknown"},
		{"900101900000", "", SexUnknown, "unknown"},
		{"", "", SexUnknown, "unknown"},
		{"9001013", "", SexUnknown, "unknown"},
		{"90010130001x", "", SexUnknown, "unknown"},
	}
	for _, tt := range tests {
		got, ok := tt.in.BirthDate()
		if tt.date == "" {
			if ok {
				t.Errorf("IIN(%q).BirthDate() = %v, true; want false", tt.in, got)
			}
		} else {
			want, _ := time.Parse(time.DateOnly, tt.date)
			if !ok || !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("IIN(%q).BirthDate() = %v, %v; want %v, true", tt.in, got, ok, want)
			}
		}
		if s := tt.in.Sex(); s != tt.sex || s.String() != tt.sexStr {
			t.Errorf("IIN(%q).Sex() = %v; want %v", tt.in, s, tt.sexStr)
		}
	}
}

func TestNewRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	start := time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC)
	days := int(time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC).Sub(start).Hours() / 24)
	built, skipped := 0, 0
	for range 5000 {
		birth := start.AddDate(0, 0, r.IntN(days+1))
		sex := SexMale + Sex(r.IntN(2))
		serial := r.IntN(10000)
		n, err := New(birth, sex, serial)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != "iin.checksum" {
				t.Fatalf("New(%v, %v, %d) error %v; want nil or iin.checksum", birth, sex, serial, err)
			}
			if n != "" {
				t.Fatalf("New returned %q with an error", n)
			}
			century := 1 + 2*((birth.Year()-1800)/100) + int(sex) - 1
			prefix := birth.Format("060102") + strconv.Itoa(century) + pad4(serial)
			if d, ok := ControlDigit(prefix); ok {
				t.Fatalf("New(%v, %v, %d) said never issued, but ControlDigit(%s) = %d", birth, sex, serial, prefix, d)
			}
			skipped++
			continue
		}
		built++
		if p, err := Parse(string(n)); err != nil || p != n {
			t.Fatalf("Parse(New(%v, %v, %d) = %q) = %q, %v", birth, sex, serial, n, p, err)
		}
		if got, ok := n.BirthDate(); !ok || !got.Equal(birth) {
			t.Errorf("New(%v, %v, %d) = %q; BirthDate() = %v, %v", birth, sex, serial, n, got, ok)
		}
		if got := n.Sex(); got != sex {
			t.Errorf("New(%v, %v, %d) = %q; Sex() = %v", birth, sex, serial, n, got)
		}
		if got := n.String()[7:11]; got != pad4(serial) {
			t.Errorf("New(%v, %v, %d) = %q; serial digits %s", birth, sex, serial, n, got)
		}
	}
	if built == 0 || skipped == 0 {
		t.Errorf("built %d, skipped %d; want both > 0", built, skipped)
	}
}

func pad4(v int) string {
	s := strconv.Itoa(v)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

func TestNewVectors(t *testing.T) {
	tests := []struct {
		birth  string
		sex    Sex
		serial int
		want   IIN
	}{
		{"1990-01-01", SexMale, 1, "900101300017"},
		{"2001-05-15", SexFemale, 1, "010515600010"},
		{"1985-12-31", SexFemale, 1, "851231400011"},
		{"2024-03-01", SexMale, 1, "240301500018"},
		{"1990-01-01", SexMale, 81, "900101300811"},
	}
	for _, tt := range tests {
		birth, _ := time.Parse(time.DateOnly, tt.birth)
		got, err := New(birth, tt.sex, tt.serial)
		if err != nil || got != tt.want {
			t.Errorf("New(%s, %v, %d) = %q, %v; want %q", tt.birth, tt.sex, tt.serial, got, err, tt.want)
		}
	}
	// The location of birth is respected: 1 January in Almaty is still 1 January.
	almaty := time.FixedZone("UTC+5", 5*3600)
	if got, err := New(time.Date(1990, 1, 1, 0, 0, 0, 0, almaty), SexMale, 1); err != nil || got != "900101300017" {
		t.Errorf("New(1990-01-01 UTC+5) = %q, %v; want 900101300017", got, err)
	}
}

func TestNewErrors(t *testing.T) {
	d := func(y int) time.Time { return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name   string
		birth  time.Time
		sex    Sex
		serial int
		code   string
	}{
		{"year 1799", d(1799), SexMale, 1, "iin.range"},
		{"year 2100", d(2100), SexFemale, 1, "iin.range"},
		{"sex unknown", d(1990), SexUnknown, 1, "iin.range"},
		{"sex 7", d(1990), Sex(7), 1, "iin.range"},
		{"serial -1", d(1990), SexMale, -1, "iin.range"},
		{"serial 10000", d(1990), SexMale, 10000, "iin.range"},
		{"never issued", d(1990), SexMale, 80, "iin.checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(tt.birth, tt.sex, tt.serial)
			if err == nil {
				t.Fatalf("New(%v, %v, %d) = %q, nil; want error %s", tt.birth, tt.sex, tt.serial, got, tt.code)
			}
			checkCode(t, err, tt.code)
		})
	}
}

func TestNewBIN(t *testing.T) {
	tests := []struct {
		reg       string
		kind, att byte
		serial    int
		want      BIN
	}{
		{"2024-01-15", '4', '0', 1, "240140000011"},
		{"2015-07-01", '4', '1', 1, "150741000014"},
		{"1999-01-01", '4', '0', 1, "990140000017"},
		{"1994-01-01", '4', '0', 38, "940140000385"},
		{"2007-09-01", '4', '1', 2469, "070941024691"},
	}
	for _, tt := range tests {
		reg, _ := time.Parse(time.DateOnly, tt.reg)
		got, err := NewBIN(reg, tt.kind, tt.att, tt.serial)
		if err != nil || got != tt.want {
			t.Errorf("NewBIN(%s, %c, %c, %d) = %q, %v; want %q", tt.reg, tt.kind, tt.att, tt.serial, got, err, tt.want)
			continue
		}
		if p, err := ParseBIN(got.String()); err != nil || p != got {
			t.Errorf("ParseBIN(%q) = %q, %v; want round trip", got, p, err)
		}
	}

	reg := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	errTests := []struct {
		name      string
		reg       time.Time
		kind, att byte
		serial    int
		code      string
	}{
		{"year 1899", time.Date(1899, 1, 1, 0, 0, 0, 0, time.UTC), '4', '0', 1, "bin.range"},
		{"kind 3", reg, '3', '0', 1, "bin.kind"},
		{"kind 7", reg, '7', '0', 1, "bin.kind"},
		{"attribute 4", reg, '4', '4', 1, "bin.range"},
		{"serial -1", reg, '4', '0', -1, "bin.range"},
		{"serial 100000", reg, '4', '0', 100000, "bin.range"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewBIN(tt.reg, tt.kind, tt.att, tt.serial)
			if err == nil {
				t.Fatalf("NewBIN = %q, nil; want error %s", got, tt.code)
			}
			checkCode(t, err, tt.code)
		})
	}

	// Some BIN prefix is never issued; NewBIN must say so with bin.checksum.
	found := false
	for serial := 0; serial <= 99999 && !found; serial++ {
		b, err := NewBIN(reg, '4', '0', serial)
		if err != nil {
			checkCode(t, err, "bin.checksum")
			found = true
			continue
		}
		if _, err := ParseBIN(string(b)); err != nil {
			t.Fatalf("ParseBIN(NewBIN(serial %d) = %q) error %v", serial, b, err)
		}
	}
	if !found {
		t.Errorf("no never-issued BIN prefix for 2401 40; want at least one")
	}
}
