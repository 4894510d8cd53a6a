package document

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
)

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestSignVerify(t *testing.T) {
	pub, priv := newKey(t)
	jws, err := sign([]byte(`{"fields":{"a":1}}`), thumbprint(pub), priv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parse(jws)
	if err != nil {
		t.Fatalf("parse(own JWS): %v", err)
	}
	if err := p.verify(pub); err != nil {
		t.Fatalf("verify(own JWS): %v", err)
	}
	otherPub, _ := newKey(t)
	if err := p.verify(otherPub); err != ErrBadSignature {
		t.Errorf("verify with another key = %v; want ErrBadSignature", err)
	}
}

func TestTamperedPayloadFails(t *testing.T) {
	pub, priv := newKey(t)
	jws, _ := sign([]byte(`{"fields":{"address":"Astana"}}`), thumbprint(pub), priv)
	parts := strings.Split(jws, ".")
	forged := b64.EncodeToString([]byte(`{"fields":{"address":"Almaty"}}`))
	p, err := parse(parts[0] + "." + forged + "." + parts[2])
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if err := p.verify(pub); err != ErrBadSignature {
		t.Errorf("verify(tampered) = %v; want ErrBadSignature", err)
	}
}

func TestParseRefusesOtherAlgorithms(t *testing.T) {
	pub, priv := newKey(t)
	jws, _ := sign([]byte(`{}`), thumbprint(pub), priv)
	parts := strings.Split(jws, ".")
	for _, h := range []string{
		`{"alg":"none","kid":"k","typ":"ortaq-document+jws"}`,
		`{"alg":"HS256","kid":"k","typ":"ortaq-document+jws"}`,
		`{"alg":"EdDSA","kid":"","typ":"ortaq-document+jws"}`,
		`{"alg":"EdDSA","kid":"k","typ":"JWT"}`,
		`{"alg":"EdDSA","kid":"k","typ":"ortaq-document+jws","crit":["x"]}`,
	} {
		if _, err := parse(b64.EncodeToString([]byte(h)) + "." + parts[1] + "." + parts[2]); err != ErrMalformed {
			t.Errorf("parse with header %s = %v; want ErrMalformed", h, err)
		}
	}
	for _, bad := range []string{"", "a.b", "a.b.c.d", "!!.!!.!!", parts[0] + "." + parts[1] + ".", strings.Repeat("a", maxJWS+1)} {
		if _, err := parse(bad); err != ErrMalformed {
			t.Errorf("parse(%.40q) = %v; want ErrMalformed", bad, err)
		}
	}
}

// TestThumbprintRFC7638 checks the key id against the RFC 8037 appendix A.3
// example: the thumbprint of its Ed25519 public key.
func TestThumbprintRFC7638(t *testing.T) {
	x, err := b64.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := thumbprint(ed25519.PublicKey(x)), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("thumbprint = %s; want %s", got, want)
	}
}

func FuzzParse(f *testing.F) {
	pub, priv := newKey(f)
	jws, _ := sign([]byte(`{"jti":"x"}`), thumbprint(pub), priv)
	f.Add(jws)
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parse(s)
		if err != nil {
			return
		}
		// Whatever parses must be ours in shape, and verifying must not panic.
		if p.header.Alg != "EdDSA" || len(p.sig) != ed25519.SignatureSize {
			t.Fatalf("parse accepted header %+v, sig %d bytes", p.header, len(p.sig))
		}
		_ = p.verify(pub)
		var v any
		_ = json.Unmarshal(p.payload, &v)
	})
}
