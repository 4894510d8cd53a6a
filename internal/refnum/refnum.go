// Package refnum makes the short reference numbers people read out and type:
// application and document numbers. A number is a one-letter prefix and 11
// random digits plus a Luhn check digit, so a mistyped digit or a swap of two
// neighbours is caught before any lookup.
//
// May import: the standard library only.
package refnum

import (
	"crypto/rand"
	"math/big"
	"strings"
)

// New returns a fresh number with prefix, e.g. "A-4829-1372-8812".
func New(prefix byte) string {
	n, err := rand.Int(rand.Reader, big.NewInt(1e11))
	if err != nil {
		panic("refnum: crypto/rand failed: " + err.Error())
	}
	digits := []byte(leftPad(n.String(), 11))
	digits = append(digits, luhn(digits))
	s := string(digits)
	return string(prefix) + "-" + s[0:4] + "-" + s[4:8] + "-" + s[8:12]
}

// Valid reports whether s is a well-formed number with a correct check digit.
// Dashes and spaces are ignored, and the prefix letter is case-insensitive.
func Valid(s string) bool {
	s = strings.NewReplacer("-", "", " ", "").Replace(s)
	if len(s) != 13 {
		return false
	}
	c := s[0] | 0x20
	if c < 'a' || c > 'z' {
		return false
	}
	digits := []byte(s[1:])
	for _, d := range digits {
		if d < '0' || d > '9' {
			return false
		}
	}
	return luhn(digits[:11]) == digits[11]
}

func leftPad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat("0", n-len(s)) + s
}

// luhn returns the check digit for digits.
func luhn(digits []byte) byte {
	sum := 0
	double := true
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}
