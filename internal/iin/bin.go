package iin

import (
	"strconv"
	"strings"
	"time"
)

// BIN is the business identification number (БСН/БИН) of a legal entity, a
// branch or representative office, or an individual entrepreneur in joint
// entrepreneurship: always 12 ASCII digits, a 5th digit of 4, 5 or 6 and a
// valid control digit once returned by [ParseBIN] or [NewBIN].
//
// Layout: YYMM of registration, the type of entity (4 resident legal entity,
// 5 non-resident legal entity, 6 individual entrepreneur in joint
// entrepreneurship), an attribute (0 head unit, 1 branch, 2 representative
// office, 3 peasant or farm enterprise in joint entrepreneurship), a 5-digit
// serial and the control digit.
type BIN string

// ParseBIN validates s as a BIN. It trims surrounding white space and does no
// other normalisation. It checks the length, that every character is an ASCII
// digit, the type digit (5th, must be 4, 5 or 6) and the control digit. It
// does not check the month or the attribute digit. The error is an [*Error]
// with a code beginning with "bin.".
func ParseBIN(s string) (BIN, error) {
	v, err := validate(s, "bin", "BIN")
	return BIN(v), err
}

// String returns the 12 digits.
func (b BIN) String() string { return string(b) }

// NewBIN builds a BIN registered in the year and month of registered (in its
// location), of the given kind ('4', '5' or '6'), attribute ('0' to '3') and
// 5-digit serial.
//
// It fails with code "bin.range" when the year is outside 1900-2099 or serial
// is outside 0-99999, with "bin.kind" when kind is not '4', '5' or '6', with
// "bin.range" when attribute is not '0' to '3', and with "bin.checksum" when
// the prefix has no control digit: the caller then tries the next serial.
func NewBIN(registered time.Time, kind byte, attribute byte, serial int) (BIN, error) {
	year := registered.Year()
	if year < 1900 || year > 2099 {
		return "", &Error{Code: "bin.range", msg: "BIN registration year must be between 1900 and 2099, got " + strconv.Itoa(year)}
	}
	if kind < '4' || kind > '6' {
		return "", &Error{Code: "bin.kind", msg: "BIN kind must be '4', '5' or '6'"}
	}
	if attribute < '0' || attribute > '3' {
		return "", &Error{Code: "bin.range", msg: "BIN attribute must be '0', '1', '2' or '3'"}
	}
	if serial < 0 || serial > 99999 {
		return "", &Error{Code: "bin.range", msg: "BIN serial must be between 0 and 99999, got " + strconv.Itoa(serial)}
	}
	var b strings.Builder
	b.Grow(Length)
	pad(&b, year%100, 2)
	pad(&b, int(registered.Month()), 2)
	b.WriteByte(kind)
	b.WriteByte(attribute)
	pad(&b, serial, 5)
	c, ok := ControlDigit(b.String())
	if !ok {
		return "", &Error{Code: "bin.checksum", msg: "BIN prefix has no control digit and is never issued; try the next serial"}
	}
	b.WriteByte(byte('0' + c))
	return BIN(b.String()), nil
}
