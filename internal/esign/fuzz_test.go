package esign

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
)

// fuzzKey is a demo root and key for seeds; made once per fuzz target.
func fuzzSeeds(f *testing.F) (*x509.Certificate, []Signature) {
	ca, err := NewDemoCA()
	if err != nil {
		f.Fatal(err)
	}
	var sigs []Signature
	for _, kt := range []string{KeyECDSA, KeyEd25519} {
		k, err := ca.Issue("900101300017", IssueOptions{KeyType: kt})
		if err != nil {
			f.Fatal(err)
		}
		for _, format := range []string{FormatRaw, FormatCMS} {
			if kt == KeyEd25519 && format == FormatCMS {
				continue
			}
			s, err := k.Sign([]byte("data"), format)
			if err != nil {
				f.Fatal(err)
			}
			sigs = append(sigs, s)
		}
	}
	return ca.Cert, sigs
}

// checkPublic fails unless err is nil or a signature.* error naming a field
// under /signature.
func checkPublic(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *apierr.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v: not an *apierr.Error", err)
	}
	if e.Status() != 422 || len(e.Fields) != 1 || len(e.Fields[0].Path) < len("/signature") || e.Fields[0].Path[:len("/signature")] != "/signature" {
		t.Fatalf("%v: fields %+v", err, e.Fields)
	}
}

// FuzzCMS feeds arbitrary bytes to the CMS parser and verifier: it must
// never panic, and every refusal is a public signature.* error.
func FuzzCMS(f *testing.F) {
	root, sigs := fuzzSeeds(f)
	for _, s := range sigs {
		if s.Format == FormatCMS {
			f.Add(s.Value)
			f.Add(s.Value[:len(s.Value)/2])
		}
	}
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80}) // BER, indefinite lengths
	f.Add([]byte{})
	at := time.Now()
	f.Fuzz(func(t *testing.T, der []byte) {
		if c, err := parseSignedData(der); err == nil {
			_, _, err := c.verify([]byte("data"), nil)
			checkPublic(t, err)
		} else {
			checkPublic(t, err)
		}
		_, err := verifyWithRoot([]byte("data"), Signature{Format: FormatCMS, Value: der}, at, root)
		checkPublic(t, err)
	})
}

// FuzzSignatureJSON decodes arbitrary JSON as a Signature and verifies it:
// no panic, and every refusal is a public signature.* error.
func FuzzSignatureJSON(f *testing.F) {
	root, sigs := fuzzSeeds(f)
	for _, s := range sigs {
		b, err := jsonMarshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"raw","algorithm":"ES256","value":"!!","chain":["AAAA"]}`))
	f.Add([]byte(`{"format":"cms","value":"MAA="}`))
	f.Add([]byte(`{"format":"raw","algorithm":"1.2.398.3.10.1.1.2.3.1","value":"AA==","chain":[]}`))
	f.Add([]byte(`null`))
	at := time.Now()
	f.Fuzz(func(t *testing.T, b []byte) {
		sig, err := ParseSignature(b)
		if err != nil {
			checkPublic(t, err)
			return
		}
		_, err = verifyWithRoot([]byte("data"), sig, at, root)
		checkPublic(t, err)
	})
}

// verifyWithRoot is Verify trusting root alone.
func verifyWithRoot(data []byte, sig Signature, at time.Time, root *x509.Certificate) (Signer, error) {
	return verify(data, sig, at, &trust{roots: []*x509.Certificate{root}, revoked: map[revKey]time.Time{}})
}
