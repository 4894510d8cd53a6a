package consent_test

import (
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/consent"
)

// FuzzParseReceipt: the receipt parser never panics, and accepts only the
// one header shape (alg EdDSA, our typ, a kid).
func FuzzParseReceipt(f *testing.F) {
	f.Add("eyJhbGciOiJFZERTQSIsImtpZCI6ImsiLCJ0eXAiOiJvcnRhcS1jb25zZW50LXJlY2VpcHQrandzIn0.e30." + strings.Repeat("A", 86))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("...")
	f.Fuzz(func(t *testing.T, jws string) {
		if consent.ParseReceipt(jws) && (strings.Count(jws, ".") != 2 || len(jws) > 64<<10) {
			t.Fatalf("accepted %q", jws)
		}
	})
}

// FuzzParseObject: reading the ledger's audit objects back never panics,
// and what the ledger writes reads back.
func FuzzParseObject(f *testing.F) {
	f.Add("consent:6f1c1b8e-2f7a-4b53-9a43-0b1f6f0f4a11 items:population.last_name,population.first_name via:registry for:x")
	f.Add("denied:consent.missing items:a.b via:exchange")
	f.Add("registry:population/880101300123 for application:1")
	f.Add("")
	f.Fuzz(func(t *testing.T, object string) {
		u, ok := consent.ParseObject(object)
		if !ok && (u.ConsentID != "" || u.Denied != "") {
			t.Fatalf("not ours, yet %+v", u)
		}
	})
}
