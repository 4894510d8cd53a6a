package catalogue

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/exchange/xroad"
)

func TestSignVerifyAndAccess(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	cl, _ := xroad.ParseSubsystem("KZ/GOV/1/a")
	svc, _ := xroad.ParseService("KZ/GOV/2/b/person")
	c := &Catalogue{Instance: "KZ", Services: []Service{{ID: svc}}, Access: []Access{{Client: cl, Service: svc, Method: "GET", Path: "/persons/**"}}}
	env, err := Sign(c, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(env, ca)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, rest string
		want         bool
	}{{"GET", "/persons/1", true}, {"GET", "/persons", true}, {"POST", "/persons/1", false}, {"GET", "/other", false}} {
		if got.Allowed(cl, svc, tc.method, tc.rest) != tc.want {
			t.Errorf("Allowed(%s %s) != %v", tc.method, tc.rest, tc.want)
		}
	}
	env.Payload[10] ^= 1
	if _, err := Verify(env, ca); err != ErrSignature {
		t.Fatalf("tampered catalogue: %v", err)
	}
}
