package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// The argon2id parameters: OWASP's first recommended set (19 MiB, 2 passes,
// one lane), about 30 ms per hash on two cores. They are kept in every stored string,
// so stronger ones can come without invalidating existing passwords.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// The bounds of a password. The upper one keeps hashing a bounded cost.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// hashPassword returns the PHC string of password:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func hashPassword(password string) string {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// dummyHash is compared against when no account matches, so that a sign-in
// for an unknown account costs what one for a known account costs.
// It is made on first use: hashing costs tens of milliseconds.
var dummyHash = sync.OnceValue(func() string { return hashPassword("no account has this password") })

// checkPassword reports whether password matches the PHC string stored. A
// string it cannot read matches nothing.
func checkPassword(stored, password string) bool {
	parts := strings.Split(stored, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 256*1024 || t == 0 || t > 10 || p == 0 || p > 16 {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// hashSecret is how a system's client secret is kept: it is 32 random bytes,
// so a fast hash cannot be reversed by guessing.
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "sha256$" + hex.EncodeToString(h[:])
}

func checkSecret(stored, secret string) bool {
	return subtle.ConstantTimeCompare([]byte(stored), []byte(hashSecret(secret))) == 1
}
