package identity

import (
	"strings"
	"testing"
)

// FuzzCheckPassword: the stored-hash parser takes any string without
// panicking, and only a real hash of the password matches.
func FuzzCheckPassword(f *testing.F) {
	f.Add(hashPassword("correct horse"), "correct horse")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "x")
	f.Add("$argon2id$v=19$m=0,t=0,p=0$$", "")
	f.Add("$$$$$", "pw")
	f.Fuzz(func(t *testing.T, stored, password string) {
		if strings.Contains(stored, "m=") && len(stored) > 200 {
			t.Skip() // bounded cost: the parser allows up to 256 MiB per hash
		}
		if checkPassword(stored, password) && !strings.HasPrefix(stored, "$argon2id$v=19$") {
			t.Errorf("%q matched %q", stored, password)
		}
	})
}

// FuzzWellFormed: token and session shapes are recognised exactly.
func FuzzWellFormed(f *testing.F) {
	f.Add(Prefix + strings.Repeat("A", 43))
	f.Add(sessionPrefix + strings.Repeat("_", 43))
	f.Add("oq_" + strings.Repeat("=", 43))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if wellFormed(s) && (len(s) != tokenLen || !strings.HasPrefix(s, Prefix)) {
			t.Errorf("wellFormed(%q)", s)
		}
		if wellFormedSession(s) && (len(s) != len(sessionPrefix)+43 || !strings.HasPrefix(s, sessionPrefix)) {
			t.Errorf("wellFormedSession(%q)", s)
		}
	})
}
