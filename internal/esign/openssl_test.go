package esign_test

import (
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/esign"
)

// TestVerifyOpenSSLCMS checks CMS made by another implementation:
//
//	openssl cms -sign -binary -in data -signer cert.pem -inkey key.pem -outform DER -md sha256
//
// with keys of `ortaq esign issue` under the demo CA in testdata/openssl
// (certificates valid 2026-11-23 to 2027-11-23). OpenSSL adds attributes
// (signing time, S/MIME capabilities) that NCALayer does not.
func TestVerifyOpenSSLCMS(t *testing.T) {
	t.Parallel()
	chain, err := esign.LoadCertificates("testdata/openssl/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/openssl/data")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		file string
		code apierr.Code
	}{
		{"ecdsa.cms", ""},
		{"rsa.cms", ""},
		{"rsa-sha1.cms", apierr.SignatureAlgorithmUnsupported},
	} {
		value, err := os.ReadFile("testdata/openssl/" + tt.file)
		if err != nil {
			t.Fatal(err)
		}
		s, err := esign.VerifyWithRoots(data, esign.Signature{Format: esign.FormatCMS, Value: value}, at, []*x509.Certificate{root})
		switch {
		case tt.code == "" && (err != nil || s.IIN != personIIN):
			t.Errorf("%s: %+v %v", tt.file, s, err)
		case tt.code != "" && !hasCode(err, tt.code):
			t.Errorf("%s: %v; want %s", tt.file, err, tt.code)
		}
		if _, err := esign.VerifyWithRoots([]byte("other"), esign.Signature{Format: esign.FormatCMS, Value: value}, at, []*x509.Certificate{root}); err == nil {
			t.Errorf("%s over other data: verified", tt.file)
		}
	}
}
