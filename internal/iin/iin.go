package iin

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Length is the number of digits of an IIN or a BIN.
const Length = 12

// ErrInvalid matches every error returned by this package's parsers and
// constructors: errors.Is(err, ErrInvalid) reports whether err is an [*Error].
var ErrInvalid = errors.New("invalid identification number")

// Error is the error returned by [Parse], [ParseBIN], [New] and [NewBIN].
//
// Code is a stable machine code that callers may switch on and show to clients:
//
//	iin.empty       nothing left after trimming white space
//	iin.length      not 12 characters
//	iin.not_digits  12 characters, but not all ASCII digits 0-9
//	iin.checksum    the control digit is wrong, or the prefix is never issued
//	iin.range       New was given a value out of range (year, sex, serial)
//
// BIN errors use the same codes with the prefix "bin." instead of "iin.", plus
// "bin.kind" (the 5th digit is not 4, 5 or 6).
//
// The message never contains the number itself, so the error is safe to log.
type Error struct {
	Code string // stable machine code, e.g. "iin.checksum"
	msg  string
}

// Error returns a plain-English description of the problem.
func (e *Error) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return "invalid identification number (" + e.Code + ")"
}

// Is makes every *Error match [ErrInvalid], and another *Error with the same
// Code, so errors.Is(err, &iin.Error{Code: "iin.checksum"}) works too.
func (e *Error) Is(target error) bool {
	if target == ErrInvalid {
		return true
	}
	var t *Error
	if errors.As(target, &t) && t != nil {
		return t.Code == e.Code
	}
	return false
}

// IIN is the individual identification number (ЖСН/ИИН) of a person: always
// 12 ASCII digits with a valid control digit once returned by [Parse] or [New].
type IIN string

// Sex is the sex encoded in the 7th digit of an IIN formed before 2013. It is a
// hint, not a fact about the person; see the package documentation.
type Sex int

// The values of Sex.
const (
	SexUnknown Sex = iota // digit 7 is 0 or 7-9, or the number is malformed
	SexMale               // digit 7 is 1, 3 or 5
	SexFemale             // digit 7 is 2, 4 or 6
)

// String returns "unknown", "male" or "female".
func (s Sex) String() string {
	switch s {
	case SexMale:
		return "male"
	case SexFemale:
		return "female"
	default:
		return "unknown"
	}
}

// Parse validates s as an IIN. It trims surrounding white space and does no
// other normalisation. It checks the length, that every character is an ASCII
// digit, and the control digit; it never looks at the date or sex digits.
// The error is an [*Error] with a code beginning with "iin.".
func Parse(s string) (IIN, error) {
	v, err := validate(s, "iin", "IIN")
	return IIN(v), err
}

// String returns the 12 digits.
func (n IIN) String() string { return string(n) }

// BirthDate returns the birth date encoded in digits 1-7, at midnight UTC, as a
// best-effort hint. ok is false when n is not 12 ASCII digits, when digit 7 is 0
// or 7-9, or when the digits do not form a real date. Since 2013 the date digits
// need not match the real birth date: never decide anything on them.
func (n IIN) BirthDate() (t time.Time, ok bool) {
	if !allDigits(string(n), Length) {
		return time.Time{}, false
	}
	century := 0
	switch n[6] {
	case '1', '2':
		century = 1800
	case '3', '4':
		century = 1900
	case '5', '6':
		century = 2000
	default:
		return time.Time{}, false
	}
	year := century + num(string(n[0:2]))
	month := num(string(n[2:4]))
	day := num(string(n[4:6]))
	if month < 1 || month > 12 || day < 1 || day > 31 {
		return time.Time{}, false
	}
	t = time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day { // 31 April, 29 February in a common year, …
		return time.Time{}, false
	}
	return t, true
}

// Sex returns the sex encoded in digit 7 as a hint: odd digits 1, 3, 5 are
// male, even digits 2, 4, 6 female, anything else (or a malformed n) unknown.
// Since 2013 it need not match the person: never decide anything on it.
func (n IIN) Sex() Sex {
	if !allDigits(string(n), Length) {
		return SexUnknown
	}
	switch n[6] {
	case '1', '3', '5':
		return SexMale
	case '2', '4', '6':
		return SexFemale
	default:
		return SexUnknown
	}
}

// New builds the IIN that the pre-2013 scheme gives a person born on birth
// (its year, month and day in birth's location) of the given sex with the
// given 4-digit serial number: YYMMDD, the century and sex digit, the serial
// and the control digit.
//
// It fails with code "iin.range" when the year is outside 1800-2099, sex is
// [SexUnknown] or not a known value, or serial is outside 0-9999; and with code
// "iin.checksum" when that prefix has no control digit (it is never issued):
// the caller then tries the next serial.
func New(birth time.Time, sex Sex, serial int) (IIN, error) {
	year := birth.Year()
	if year < 1800 || year > 2099 {
		return "", &Error{Code: "iin.range", msg: "IIN birth year must be between 1800 and 2099, got " + strconv.Itoa(year)}
	}
	if sex != SexMale && sex != SexFemale {
		return "", &Error{Code: "iin.range", msg: "IIN sex must be male or female"}
	}
	if serial < 0 || serial > 9999 {
		return "", &Error{Code: "iin.range", msg: "IIN serial must be between 0 and 9999, got " + strconv.Itoa(serial)}
	}
	digit := 1 + 2*((year-1800)/100) // 1, 3 or 5 for male
	if sex == SexFemale {
		digit++
	}
	var b strings.Builder
	b.Grow(Length)
	pad(&b, year%100, 2)
	pad(&b, int(birth.Month()), 2)
	pad(&b, birth.Day(), 2)
	b.WriteByte(byte('0' + digit))
	pad(&b, serial, 4)
	c, ok := ControlDigit(b.String())
	if !ok {
		return "", &Error{Code: "iin.checksum", msg: "IIN prefix has no control digit and is never issued; try the next serial"}
	}
	b.WriteByte(byte('0' + c))
	return IIN(b.String()), nil
}

// ControlDigit computes the control digit (the 12th digit) of an IIN or a BIN
// from its first 11 digits. ok is false when first11 is not exactly 11 ASCII
// digits, or when both passes of the algorithm give 10, which means no number
// with that prefix is ever issued.
func ControlDigit(first11 string) (digit int, ok bool) {
	if !allDigits(first11, Length-1) {
		return 0, false
	}
	sum := 0
	for i := range Length - 1 {
		sum += int(first11[i]-'0') * (i + 1) // weights 1..11
	}
	if c := sum % 11; c != 10 {
		return c, true
	}
	sum = 0
	for i := range Length - 1 {
		sum += int(first11[i]-'0') * ((i+2)%11 + 1) // weights 3..11, 1, 2
	}
	if c := sum % 11; c != 10 {
		return c, true
	}
	return 0, false
}

// validate is Parse for both kinds of number: kind is "iin" or "bin" (the code
// prefix), name is "IIN" or "BIN" (for messages). It returns the trimmed input.
func validate(s, kind, name string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", &Error{Code: kind + ".empty", msg: name + " is empty"}
	}
	if n := utf8.RuneCountInString(s); n != Length {
		return "", &Error{Code: kind + ".length", msg: name + " must have 12 digits, got " + strconv.Itoa(n) + " characters"}
	}
	if !allDigits(s, Length) {
		return "", &Error{Code: kind + ".not_digits", msg: name + " must contain only the digits 0-9"}
	}
	if kind == "bin" && (s[4] < '4' || s[4] > '6') {
		return "", &Error{Code: "bin.kind", msg: "BIN 5th digit must be 4, 5 or 6 (the type of entity); a 5th digit of 0-3 suggests an IIN"}
	}
	c, ok := ControlDigit(s[:Length-1])
	if !ok {
		return "", &Error{Code: kind + ".checksum", msg: name + " is not valid: its first 11 digits are never issued"}
	}
	if int(s[Length-1]-'0') != c {
		return "", &Error{Code: kind + ".checksum", msg: name + " is not valid: the control digit is wrong (check for a mistyped digit)"}
	}
	return s, nil
}

// allDigits reports whether s is exactly n ASCII digits.
func allDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// num converts a short string of ASCII digits, already checked, to an int.
func num(s string) int {
	v := 0
	for i := range len(s) {
		v = v*10 + int(s[i]-'0')
	}
	return v
}

// pad writes v in decimal with leading zeros to width digits; v is in range.
func pad(b *strings.Builder, v, width int) {
	s := strconv.Itoa(v)
	for range width - len(s) {
		b.WriteByte('0')
	}
	b.WriteString(s)
}
