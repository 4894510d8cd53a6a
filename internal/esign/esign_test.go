package esign_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/esign"
	"github.com/ortaq/ortaq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, audit.Schema(), esign.Schema()) }

const (
	personIIN = "900101300017"
	orgBIN    = "240140000011"
)

var statement = []byte(`{"application":"0190-0001","statement":"I apply for a certificate of registered address."}`)

// fixture is a demo CA with an intermediate and a few keys, made once:
// RSA keys take a while.
type fixture struct {
	root, inter, other    *esign.DemoCA
	ecdsa, rsa, ed        *esign.Key
	viaInter, viaInterRSA *esign.Key
}

var (
	fixOnce sync.Once
	fix     fixture
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func keys(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		fix.root = must(esign.NewDemoCA())
		fix.inter = must(fix.root.NewIntermediate("Ortaq DEMO intermediate CA"))
		fix.other = must(esign.NewDemoCA())
		fix.ecdsa = must(fix.root.Issue(personIIN, esign.IssueOptions{Name: "ТЕСТОВ ТЕСТ"}))
		fix.rsa = must(fix.root.Issue(personIIN, esign.IssueOptions{KeyType: esign.KeyRSA}))
		fix.ed = must(fix.root.Issue(personIIN, esign.IssueOptions{KeyType: esign.KeyEd25519}))
		fix.viaInter = must(fix.inter.Issue(personIIN, esign.IssueOptions{BIN: orgBIN, Roles: []string{"legal_entity", "ceo"}}))
		fix.viaInterRSA = must(fix.inter.Issue(personIIN, esign.IssueOptions{KeyType: esign.KeyRSA}))
	})
	return &fix
}

// verifier is a Verifier on a fresh database that trusts the demo root.
func verifier(t *testing.T) *esign.Verifier {
	t.Helper()
	f := keys(t)
	v := esign.NewVerifier(pgtest.New(t).Pool, clock.Real{})
	if _, err := v.AddRoot(context.Background(), f.root.Cert.Raw, "test"); err != nil {
		t.Fatal(err)
	}
	return v
}

func sign(t *testing.T, k *esign.Key, data []byte, format string) esign.Signature {
	t.Helper()
	sig, err := k.Sign(data, format)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	f := keys(t)
	v := verifier(t)
	tests := []struct {
		name   string
		key    *esign.Key
		format string
		bin    string
		roles  []string
	}{
		{"raw ES256", f.ecdsa, esign.FormatRaw, "", []string{"individual"}},
		{"raw RS256", f.rsa, esign.FormatRaw, "", []string{"individual"}},
		{"raw EdDSA", f.ed, esign.FormatRaw, "", []string{"individual"}},
		{"cms ECDSA", f.ecdsa, esign.FormatCMS, "", []string{"individual"}},
		{"cms RSA", f.rsa, esign.FormatCMS, "", []string{"individual"}},
		{"raw through an intermediate CA", f.viaInter, esign.FormatRaw, orgBIN, []string{"legal_entity", "ceo"}},
		{"cms through an intermediate CA", f.viaInter, esign.FormatCMS, orgBIN, []string{"legal_entity", "ceo"}},
		{"cms RSA through an intermediate CA", f.viaInterRSA, esign.FormatCMS, "", []string{"individual"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := sign(t, tt.key, statement, tt.format)
			got, err := v.Verify(context.Background(), statement, sig, time.Time{})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := esign.Signer{
				IIN: personIIN, BIN: tt.bin, Name: tt.key.Cert.Subject.CommonName,
				Serial: tt.key.Cert.SerialNumber.Text(16), Issuer: tt.key.Cert.Issuer.String(),
				NotAfter: tt.key.Cert.NotAfter.UTC(), Roles: tt.roles,
			}
			if !got.NotAfter.Equal(want.NotAfter) || got.IIN != want.IIN || got.BIN != want.BIN || got.Name != want.Name ||
				got.Serial != want.Serial || got.Issuer != want.Issuer || !slices.Equal(got.Roles, want.Roles) {
				t.Errorf("Signer = %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestVerifyCMSWithChainBeside: NCALayer's CMS may carry only the signer's
// certificate; the CA certificates may come in Chain.
func TestVerifyCMSWithChainBeside(t *testing.T) {
	t.Parallel()
	f := keys(t)
	v := verifier(t)
	only := &esign.Key{Cert: f.viaInter.Cert, Signer: f.viaInter.Signer, Chain: f.viaInter.Chain[:1]}
	sig := sign(t, only, statement, esign.FormatCMS)
	if _, err := v.Verify(context.Background(), statement, sig, time.Time{}); !hasCode(err, apierr.SignatureCertUntrusted) {
		t.Fatalf("CMS without its intermediate: %v; want untrusted", err)
	}
	sig.Chain = [][]byte{f.inter.Cert.Raw}
	if _, err := v.Verify(context.Background(), statement, sig, time.Time{}); err != nil {
		t.Fatalf("CMS with the intermediate in Chain: %v", err)
	}
}

func hasCode(err error, code apierr.Code) bool {
	var e *apierr.Error
	return errors.As(err, &e) && e.Code == code
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	f := keys(t)
	v := verifier(t)
	ctx := context.Background()
	now := time.Now()
	expired := must(f.root.Issue(personIIN, esign.IssueOptions{NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(-1, 0, 0)}))
	notYet := must(f.root.Issue(personIIN, esign.IssueOptions{NotBefore: now.Add(time.Hour), NotAfter: now.AddDate(1, 0, 0)}))
	untrusted := must(f.other.Issue(personIIN, esign.IssueOptions{}))
	revoked := must(f.root.Issue(personIIN, esign.IssueOptions{}))
	if _, err := v.Revoke(ctx, esign.Revocation{Issuer: revoked.Cert.Issuer.String(), Serial: revoked.Cert.SerialNumber.Text(16), Reason: "key compromise"}, "test"); err != nil {
		t.Fatal(err)
	}
	encipher := must(f.root.Issue(personIIN, esign.IssueOptions{KeyUsage: x509.KeyUsageKeyEncipherment}))
	noIIN := must(f.root.Issue("", esign.IssueOptions{NoIIN: true, Name: "NO IIN"}))

	raw := func(k *esign.Key) esign.Signature { return sign(t, k, statement, esign.FormatRaw) }
	cms := func(k *esign.Key) esign.Signature { return sign(t, k, statement, esign.FormatCMS) }
	wrongKey := raw(f.ecdsa)
	wrongKey.Chain = must(f.root.Issue(personIIN, esign.IssueOptions{})).Chain
	wrongKeyCMS := cms(f.ecdsa)
	wrongKeyCMS.Value = bytes.Clone(wrongKeyCMS.Value)
	wrongKeyCMS.Value[len(wrongKeyCMS.Value)-5] ^= 1 // inside the signature value, at the end
	gostCert := raw(f.ecdsa)
	gostCert.Chain = slices.Clone(gostCert.Chain)
	// id-ecPublicKey (1.2.840.10045.2.1) becomes 1.2.398.3.10.1.1, a
	// GOST key algorithm of the same length.
	gostCert.Chain[0] = bytes.Replace(gostCert.Chain[0],
		[]byte{0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01},
		[]byte{0x06, 0x07, 0x2a, 0x83, 0x0e, 0x03, 0x0a, 0x01, 0x01}, 1)
	gostCMSCert := cms(f.ecdsa)
	gostCMSCert.Value = bytes.Replace(gostCMSCert.Value,
		[]byte{0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01},
		[]byte{0x06, 0x07, 0x2a, 0x83, 0x0e, 0x03, 0x0a, 0x01, 0x01}, 1)
	gostDigest := cms(f.ecdsa)
	gostDigest.Value = esign.SetCMSDigestAlgorithm(gostDigest.Value, "1.2.398.3.10.1.3.2")
	sha1Digest := cms(f.ecdsa)
	sha1Digest.Value = esign.SetCMSDigestAlgorithm(sha1Digest.Value, "1.3.14.3.2.26")
	gostRaw := raw(f.ecdsa)
	gostRaw.Algorithm = "1.2.398.3.10.1.1.2.3.1"
	wrongAlg := raw(f.ecdsa)
	wrongAlg.Algorithm = esign.RS256

	tests := []struct {
		name string
		data []byte
		sig  esign.Signature
		code apierr.Code
		path string
	}{
		{"raw: another key's certificate", statement, wrongKey, apierr.SignatureInvalid, "/signature/value"},
		{"cms: damaged signature", statement, wrongKeyCMS, apierr.SignatureInvalid, "/signature/value"},
		{"raw: tampered data", append(bytes.Clone(statement), ' '), raw(f.ecdsa), apierr.SignatureInvalid, "/signature/value"},
		{"raw RSA: tampered data", []byte("other"), raw(f.rsa), apierr.SignatureInvalid, "/signature/value"},
		{"raw EdDSA: tampered data", []byte("other"), raw(f.ed), apierr.SignatureInvalid, "/signature/value"},
		{"cms: tampered data", []byte("other"), cms(f.ecdsa), apierr.SignatureInvalid, "/signature/value"},
		{"raw: algorithm of another key type", statement, wrongAlg, apierr.SignatureInvalid, "/signature/algorithm"},
		{"expired", statement, raw(expired), apierr.SignatureCertExpired, "/signature/chain/0"},
		{"not yet valid", statement, cms(notYet), apierr.SignatureCertExpired, "/signature/chain/0"},
		{"untrusted root", statement, raw(untrusted), apierr.SignatureCertUntrusted, "/signature/chain/0"},
		{"untrusted root, cms", statement, cms(untrusted), apierr.SignatureCertUntrusted, "/signature/chain/0"},
		{"revoked", statement, cms(revoked), apierr.SignatureCertRevoked, "/signature/chain/0"},
		{"key usage: key encipherment only", statement, raw(encipher), apierr.SignatureKeyUsage, "/signature/chain/0"},
		{"no IIN in the subject", statement, raw(noIIN), apierr.SignatureNoSubjectIIN, "/signature/chain/0"},
		{"GOST key in the certificate", statement, gostCert, apierr.SignatureAlgorithmUnsupported, "/signature/chain/0"},
		{"GOST key in the CMS's certificate", statement, gostCMSCert, apierr.SignatureAlgorithmUnsupported, "/signature/chain/0"},
		{"GOST digest in the CMS", statement, gostDigest, apierr.SignatureAlgorithmUnsupported, "/signature/value"},
		{"SHA-1 digest in the CMS", statement, sha1Digest, apierr.SignatureAlgorithmUnsupported, "/signature/value"},
		{"GOST raw algorithm", statement, gostRaw, apierr.SignatureAlgorithmUnsupported, "/signature/algorithm"},
		{"garbage certificate", statement, esign.Signature{Format: "raw", Algorithm: "ES256", Value: []byte{1}, Chain: [][]byte{[]byte("garbage")}}, apierr.SignatureMalformed, "/signature/chain/0"},
		{"garbage CMS", statement, esign.Signature{Format: "cms", Value: []byte("garbage")}, apierr.SignatureMalformed, "/signature/value"},
		{"empty CMS", statement, esign.Signature{Format: "cms"}, apierr.SignatureMalformed, "/signature/value"},
		{"raw without a chain", statement, esign.Signature{Format: "raw", Algorithm: "ES256", Value: []byte{1}}, apierr.SignatureMalformed, "/signature/chain"},
		{"raw without an algorithm", statement, esign.Signature{Format: "raw", Value: []byte{1}, Chain: f.ecdsa.Chain}, apierr.SignatureMalformed, "/signature/algorithm"},
		{"unknown format", statement, esign.Signature{Format: "xml", Value: []byte{1}}, apierr.SignatureMalformed, "/signature/format"},
		{"no format", statement, esign.Signature{Value: []byte{1}}, apierr.SignatureMalformed, "/signature/format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(ctx, tt.data, tt.sig, time.Time{})
			checkErr(t, err, tt.code, tt.path)
		})
	}
}

func checkErr(t *testing.T, err error, code apierr.Code, path string) {
	t.Helper()
	var e *apierr.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T); want *apierr.Error %s", err, err, code)
	}
	if e.Code != code || len(e.Fields) != 1 || e.Fields[0].Path != path || e.Fields[0].Code != code {
		t.Fatalf("error %s %+v (%v); want %s at %s", e.Code, e.Fields, err, code, path)
	}
	if e.Status() != 422 {
		t.Errorf("status %d; want 422", e.Status())
	}
}

// TestVerifyAtTime: the time of verification is the caller's.
func TestVerifyAtTime(t *testing.T) {
	t.Parallel()
	f := keys(t)
	v := verifier(t)
	sig := sign(t, f.ecdsa, statement, esign.FormatCMS)
	if _, err := v.Verify(context.Background(), statement, sig, f.ecdsa.Cert.NotAfter.Add(time.Second)); !hasCode(err, apierr.SignatureCertExpired) {
		t.Errorf("after NotAfter: %v; want expired", err)
	}
	if _, err := v.Verify(context.Background(), statement, sig, f.ecdsa.Cert.NotAfter.Add(-time.Second)); err != nil {
		t.Errorf("just before NotAfter: %v", err)
	}
}

// TestRevokedIntermediate: a revoked CA revokes what it issued.
func TestRevokedIntermediate(t *testing.T) {
	t.Parallel()
	f := keys(t)
	v := verifier(t)
	sig := sign(t, f.viaInter, statement, esign.FormatRaw)
	if _, err := v.Verify(context.Background(), statement, sig, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Revoke(context.Background(), esign.Revocation{Issuer: f.inter.Cert.Issuer.String(), Serial: strings.ToUpper(f.inter.Cert.SerialNumber.Text(16))}, "test"); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(context.Background(), statement, sig, time.Time{})
	checkErr(t, err, apierr.SignatureCertRevoked, "/signature/chain")
	// Signed before the revocation: still valid then.
	if _, err := v.Verify(context.Background(), statement, sig, time.Now().Add(-time.Minute)); err != nil {
		t.Errorf("at a time before the revocation: %v", err)
	}
}

// TestTrustCache: a change on this node is seen at once; one on another
// node within CacheTTL.
func TestTrustCache(t *testing.T) {
	t.Parallel()
	f := keys(t)
	db := pgtest.New(t)
	here := esign.NewVerifier(db.Pool, clock.Real{})
	there := esign.NewVerifier(db.Pool, clock.Real{})
	now := time.Now()
	esign.SetCacheTime(there, func() time.Time { return now })
	ctx := context.Background()
	sig := sign(t, f.ecdsa, statement, esign.FormatRaw)
	if _, err := there.Verify(ctx, statement, sig, time.Time{}); !hasCode(err, apierr.SignatureCertUntrusted) {
		t.Fatalf("before trusting: %v", err)
	}
	root, err := here.AddRoot(ctx, f.root.Cert.Raw, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := here.Verify(ctx, statement, sig, time.Time{}); err != nil {
		t.Fatalf("here, after trusting: %v", err)
	}
	if _, err := there.Verify(ctx, statement, sig, time.Time{}); !hasCode(err, apierr.SignatureCertUntrusted) {
		t.Fatalf("there, within the cache's minute: %v; want still untrusted", err)
	}
	now = now.Add(esign.CacheTTL + time.Second)
	if _, err := there.Verify(ctx, statement, sig, time.Time{}); err != nil {
		t.Fatalf("there, after the cache's minute: %v", err)
	}
	if err := here.RemoveRoot(ctx, root.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Verify(ctx, statement, sig, time.Time{}); !hasCode(err, apierr.SignatureCertUntrusted) {
		t.Fatalf("here, after removing the root: %v", err)
	}
	if err := here.RemoveRoot(ctx, root.ID, "test"); !errors.Is(err, esign.ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
	// Adding it again makes it active again.
	if again, err := here.AddRoot(ctx, f.root.Cert.Raw, "test"); err != nil || again.ID != root.ID {
		t.Fatalf("adding again: %+v %v", again, err)
	}
	if _, err := here.Verify(ctx, statement, sig, time.Time{}); err != nil {
		t.Fatalf("after adding again: %v", err)
	}
}

func TestParseSignature(t *testing.T) {
	t.Parallel()
	f := keys(t)
	sig := sign(t, f.ecdsa, statement, esign.FormatRaw)
	b := must(json.Marshal(sig))
	got, err := esign.ParseSignature(b)
	if err != nil || got.Format != sig.Format || got.Algorithm != sig.Algorithm || !bytes.Equal(got.Value, sig.Value) || len(got.Chain) != len(sig.Chain) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	tests := []struct{ in, path string }{
		{`{"format":"raw","value":"!!!"}`, "/signature/value"},
		{`{"format":"raw","value":"AAAA","chain":["AAAA","%%"]}`, "/signature/chain/1"},
		{`{"format":1}`, "/signature/format"},
		{`{"format":"raw","extra":1}`, "/signature"},
		{`{"format":"raw"} {}`, "/signature"},
		{`not json`, "/signature"},
	}
	for _, tt := range tests {
		_, err := esign.ParseSignature([]byte(tt.in))
		var e *apierr.Error
		if !errors.As(err, &e) || e.Code != apierr.SignatureMalformed || e.Fields[0].Path != tt.path {
			t.Errorf("ParseSignature(%s) = %v; want signature.malformed at %s", tt.in, err, tt.path)
		}
	}
}
