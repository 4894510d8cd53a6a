package esign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"embed"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the esign capability's part of the database.
func Schema() pg.Schema { return pg.NewSchema("esign", migrations) }

// Signature formats.
const (
	FormatRaw = "raw"
	FormatCMS = "cms"
)

// Algorithms of raw signatures (JOSE names).
const (
	RS256 = "RS256" // RSA PKCS#1 v1.5 with SHA-256
	ES256 = "ES256" // ECDSA P-256 with SHA-256, ASN.1 DER signature
	EdDSA = "EdDSA" // Ed25519
)

// Limits.
const (
	// MaxChain bounds the certificates a signature may carry.
	MaxChain = 10
	// MaxSignatureBytes bounds Value (a CMS with its certificates).
	MaxSignatureBytes = 256 << 10
)

// CacheTTL is how long a node keeps the trust store in memory. A change on
// this node drops it at once; a change on another node is seen within
// CacheTTL.
const CacheTTL = time.Minute

// Signature is what a signer sends.
type Signature struct {
	// Format: "raw" (a bare signature over the data with the key of
	// Chain[0]) or "cms" (a detached CMS/PKCS#7 SignedData, as NCALayer's
	// createCMSSignatureFromBase64 with attach=false produces; Chain may be
	// empty then, certificates come from the CMS).
	Format string `json:"format"`
	// Algorithm, for raw: "RS256" (RSA PKCS#1 v1.5 SHA-256), "ES256" (ECDSA
	// P-256 SHA-256, ASN.1 DER signature), "EdDSA" (Ed25519).
	Algorithm string   `json:"algorithm,omitempty"`
	Value     []byte   `json:"value"`           // base64 in JSON
	Chain     [][]byte `json:"chain,omitempty"` // DER certificates, signer first (base64 in JSON)
}

// Signer is who signed, as the verified certificate says.
type Signer struct {
	IIN      string    `json:"iin"`                // from SERIALNUMBER=IIN...
	BIN      string    `json:"bin,omitempty"`      // OU=BIN... or organizationIdentifier
	Name     string    `json:"name"`               // CN
	Serial   string    `json:"certificate_serial"` // hex
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
	// Roles are the names of the KZ role OIDs found in the certificate's
	// extended key usage (see RoleOIDs).
	Roles []string `json:"roles,omitempty"`
}

// RoleOIDs names NCA RK's role OIDs, found in the extended key usage.
var RoleOIDs = map[string]string{
	"1.2.398.3.3.4.1.1":   "individual",
	"1.2.398.3.3.4.1.1.1": "individual_information_system",
	"1.2.398.3.3.4.1.2":   "legal_entity",
	"1.2.398.3.3.4.1.2.1": "ceo",
	"1.2.398.3.3.4.1.2.2": "signing_right",
	"1.2.398.3.3.4.1.2.3": "financial_signing_right",
	"1.2.398.3.3.4.1.2.4": "hr",
	"1.2.398.3.3.4.1.2.5": "employee",
}

// roleOID returns the OID of a role name.
func roleOID(name string) (asn1.ObjectIdentifier, bool) {
	for s, n := range RoleOIDs {
		if n == name {
			return parseOID(s), true
		}
	}
	return nil, false
}

func parseOID(s string) asn1.ObjectIdentifier {
	var oid asn1.ObjectIdentifier
	for _, p := range strings.Split(s, ".") {
		n, _ := strconv.Atoi(p)
		oid = append(oid, n)
	}
	return oid
}

// gostArc is Kazakhstan's arc of GOST algorithms (1.2.398.3.10).
var gostArc = asn1.ObjectIdentifier{1, 2, 398, 3, 10}

func isGOST(oid asn1.ObjectIdentifier) bool {
	return len(oid) >= len(gostArc) && oid[:len(gostArc)].Equal(gostArc)
}

// reject builds the public error for code at path, keeping cause for logs.
func reject(code apierr.Code, path string, cause error) *apierr.Error {
	e := apierr.Wrap(code, cause)
	e.Fields = []apierr.FieldError{{Path: path, Code: code}}
	return e
}

func rejectf(code apierr.Code, path, format string, args ...any) *apierr.Error {
	return reject(code, path, fmt.Errorf(format, args...))
}

// Verifier checks signatures against the platform's trust roots. It is safe
// for concurrent use.
type Verifier struct {
	pool  *pgxpool.Pool
	clock clock.Clock
	// now measures the cache's age: the process's own time, not the
	// platform clock, which tests stop.
	now func() time.Time

	mu     sync.Mutex
	cached *trust
	gen    uint64 // changes on every local edit
}

// NewVerifier returns a verifier whose trust store is on pool; clk is the
// default time of verification and stamps edits.
func NewVerifier(pool *pgxpool.Pool, clk clock.Clock) *Verifier {
	return &Verifier{pool: pool, clock: clk, now: time.Now}
}

// trust is a snapshot of the trust store.
type trust struct {
	roots   []*x509.Certificate
	revoked map[revKey]time.Time // when each was revoked
	expires time.Time
}

type revKey struct{ issuer, serial string }

func serialHex(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// Verify checks sig over data as of at (the zero time means now on the
// verifier's clock): the signature, the signer's certificate (valid at at,
// for signing, not revoked, with an IIN) and its chain to an active trust
// root. Every failure is an *apierr.Error with one of the signature.* codes
// and the field at fault under /signature.
func (v *Verifier) Verify(ctx context.Context, data []byte, sig Signature, at time.Time) (Signer, error) {
	if at.IsZero() {
		at = v.clock.Now()
	}
	t, err := v.trust(ctx)
	if err != nil {
		return Signer{}, err
	}
	return verify(data, sig, at, t)
}

// verify is Verify against a snapshot of the trust store.
func verify(data []byte, sig Signature, at time.Time, t *trust) (Signer, error) {
	var leaf *x509.Certificate
	var extra []*x509.Certificate
	switch sig.Format {
	case FormatRaw:
		certs, err := parseChain(sig.Chain)
		if err != nil {
			return Signer{}, err
		}
		if len(certs) == 0 {
			return Signer{}, rejectf(apierr.SignatureMalformed, "/signature/chain", "a raw signature needs the signer's certificate")
		}
		leaf, extra = certs[0], certs[1:]
		if err := checkCertAlgorithms(leaf, "/signature/chain/0"); err != nil {
			return Signer{}, err
		}
		if err := verifyRaw(leaf, sig.Algorithm, data, sig.Value); err != nil {
			return Signer{}, err
		}
	case FormatCMS:
		certs, err := parseChain(sig.Chain)
		if err != nil {
			return Signer{}, err
		}
		if len(sig.Value) == 0 {
			return Signer{}, rejectf(apierr.SignatureMalformed, "/signature/value", "empty")
		}
		if len(sig.Value) > MaxSignatureBytes {
			return Signer{}, rejectf(apierr.SignatureMalformed, "/signature/value", "longer than %d bytes", MaxSignatureBytes)
		}
		sd, err := parseSignedData(sig.Value)
		if err != nil {
			return Signer{}, err
		}
		leaf, extra, err = sd.verify(data, certs)
		if err != nil {
			return Signer{}, err
		}
	case "":
		return Signer{}, rejectf(apierr.SignatureMalformed, "/signature/format", "missing")
	default:
		return Signer{}, rejectf(apierr.SignatureMalformed, "/signature/format", "%q is neither raw nor cms", sig.Format)
	}
	return checkCertificate(leaf, extra, at, t)
}

// parseChain parses DER certificates.
func parseChain(chain [][]byte) ([]*x509.Certificate, error) {
	if len(chain) > MaxChain {
		return nil, rejectf(apierr.SignatureMalformed, "/signature/chain", "more than %d certificates", MaxChain)
	}
	out := make([]*x509.Certificate, 0, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			path := "/signature/chain/" + strconv.Itoa(i)
			if oid, ok := certAlgorithmOID(der); ok && isGOST(oid) {
				return nil, reject(apierr.SignatureAlgorithmUnsupported, path, fmt.Errorf("GOST certificate %s: %w", oid, err))
			}
			return nil, reject(apierr.SignatureMalformed, path, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// certAlgorithmOID digs out a certificate's public key algorithm when Go's
// parser refuses it.
func certAlgorithmOID(der []byte) (asn1.ObjectIdentifier, bool) {
	var cert struct {
		TBS struct {
			Version   int `asn1:"optional,explicit,default:0,tag:0"`
			Serial    asn1.RawValue
			SigAlg    pkix.AlgorithmIdentifier
			Issuer    asn1.RawValue
			Validity  asn1.RawValue
			Subject   asn1.RawValue
			PublicKey struct {
				Algorithm pkix.AlgorithmIdentifier
				Key       asn1.BitString
			}
		}
		SigAlg pkix.AlgorithmIdentifier
	}
	if _, err := asn1.Unmarshal(der, &cert); err != nil {
		return nil, false
	}
	if isGOST(cert.TBS.PublicKey.Algorithm.Algorithm) {
		return cert.TBS.PublicKey.Algorithm.Algorithm, true
	}
	return cert.SigAlg.Algorithm, true
}

// checkCertAlgorithms refuses a signer's certificate whose key Go cannot use.
func checkCertAlgorithms(c *x509.Certificate, path string) error {
	switch c.PublicKey.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return nil
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err == nil && isGOST(spki.Algorithm.Algorithm) {
		return rejectf(apierr.SignatureAlgorithmUnsupported, path,
			"GOST key %s: needs KalkanCrypt or NCANode", spki.Algorithm.Algorithm)
	}
	return rejectf(apierr.SignatureAlgorithmUnsupported, path, "public key algorithm %v", c.PublicKeyAlgorithm)
}

// verifyRaw checks a bare signature over data.
func verifyRaw(leaf *x509.Certificate, alg string, data, value []byte) error {
	const path = "/signature/value"
	if len(value) == 0 {
		return rejectf(apierr.SignatureMalformed, path, "empty")
	}
	digest := sha256.Sum256(data)
	switch alg {
	case RS256:
		pub, ok := leaf.PublicKey.(*rsa.PublicKey)
		if !ok {
			return rejectf(apierr.SignatureInvalid, "/signature/algorithm", "RS256 with a %T key", leaf.PublicKey)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], value); err != nil {
			return reject(apierr.SignatureInvalid, path, err)
		}
	case ES256:
		pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
		if !ok {
			return rejectf(apierr.SignatureInvalid, "/signature/algorithm", "ES256 with a %T key", leaf.PublicKey)
		}
		if pub.Curve.Params().Name != "P-256" {
			return rejectf(apierr.SignatureAlgorithmUnsupported, "/signature/algorithm", "ES256 with curve %s", pub.Curve.Params().Name)
		}
		if !ecdsa.VerifyASN1(pub, digest[:], value) {
			return rejectf(apierr.SignatureInvalid, path, "ECDSA signature does not verify")
		}
	case EdDSA:
		pub, ok := leaf.PublicKey.(ed25519.PublicKey)
		if !ok {
			return rejectf(apierr.SignatureInvalid, "/signature/algorithm", "EdDSA with a %T key", leaf.PublicKey)
		}
		if !ed25519.Verify(pub, data, value) {
			return rejectf(apierr.SignatureInvalid, path, "Ed25519 signature does not verify")
		}
	case "":
		return rejectf(apierr.SignatureMalformed, "/signature/algorithm", "missing")
	default:
		return rejectf(apierr.SignatureAlgorithmUnsupported, "/signature/algorithm", "algorithm %q", alg)
	}
	return nil
}

// checkCertificate checks the signer's certificate at at: validity, chain to
// a trust root, revocation, key usage and subject.
func checkCertificate(leaf *x509.Certificate, extra []*x509.Certificate, at time.Time, t *trust) (Signer, error) {
	const path = "/signature/chain/0"
	if at.Before(leaf.NotBefore) || at.After(leaf.NotAfter) {
		return Signer{}, rejectf(apierr.SignatureCertExpired, path,
			"valid %s to %s, checked at %s", leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	roots := x509.NewCertPool()
	for _, r := range t.roots {
		roots.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, c := range extra {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: at,
		// NCA RK puts role OIDs into the extended key usage; the signing
		// purpose is checked below through the key usage.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return Signer{}, reject(apierr.SignatureCertExpired, "/signature/chain", err)
		}
		return Signer{}, reject(apierr.SignatureCertUntrusted, path, err)
	}
	// A certificate revoked after at still counted at at: a signature made
	// before the revocation stays valid.
	for _, c := range chains[0] {
		if when, ok := t.revoked[revKey{c.Issuer.String(), serialHex(c)}]; ok && !at.Before(when) {
			p := path
			if c != leaf {
				p = "/signature/chain"
			}
			return Signer{}, rejectf(apierr.SignatureCertRevoked, p, "certificate %s of %s revoked", serialHex(c), c.Issuer)
		}
	}
	if leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return Signer{}, rejectf(apierr.SignatureKeyUsage, path, "key usage %b", leaf.KeyUsage)
	}
	return subject(leaf)
}

var (
	oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidOrgID        = asn1.ObjectIdentifier{2, 5, 4, 97}
)

// subject reads the signer from a verified certificate.
func subject(c *x509.Certificate) (Signer, error) {
	s := Signer{
		Name: c.Subject.CommonName, Serial: serialHex(c),
		Issuer: c.Issuer.String(), NotAfter: c.NotAfter.UTC(),
	}
	for _, a := range c.Subject.Names {
		str, _ := a.Value.(string)
		switch {
		case a.Type.Equal(oidSerialNumber):
			if n, ok := strings.CutPrefix(str, "IIN"); ok && s.IIN == "" {
				if parsed, err := iin.Parse(n); err == nil {
					s.IIN = parsed.String()
				}
			}
		case a.Type.Equal(oidOrgID):
			if b := parseBIN(strings.TrimPrefix(str, "BIN")); b != "" && s.BIN == "" {
				s.BIN = b
			}
		}
	}
	for _, ou := range c.Subject.OrganizationalUnit {
		if n, ok := strings.CutPrefix(ou, "BIN"); ok && s.BIN == "" {
			s.BIN = parseBIN(n)
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		if name, ok := RoleOIDs[oid.String()]; ok {
			s.Roles = append(s.Roles, name)
		}
	}
	if s.IIN == "" {
		return Signer{}, rejectf(apierr.SignatureNoSubjectIIN, "/signature/chain/0", "subject %s has no SERIALNUMBER=IIN<12 digits> with a valid check digit", c.Subject)
	}
	return s, nil
}

func parseBIN(s string) string {
	if b, err := iin.ParseBIN(s); err == nil {
		return b.String()
	}
	return ""
}

// trust returns the trust store, from the cache when fresh.
func (v *Verifier) trust(ctx context.Context) (*trust, error) {
	now := v.now()
	v.mu.Lock()
	cached, gen := v.cached, v.gen
	v.mu.Unlock()
	if cached != nil && now.Before(cached.expires) {
		return cached, nil
	}
	t := &trust{revoked: map[revKey]time.Time{}, expires: now.Add(CacheTTL)}
	roots, err := v.Roots(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range roots {
		if !r.Active {
			continue
		}
		c, err := x509.ParseCertificate(r.DER)
		if err != nil {
			return nil, fmt.Errorf("trust root %d: %w", r.ID, err)
		}
		t.roots = append(t.roots, c)
	}
	rows, err := v.pool.Query(ctx, `SELECT issuer, serial, revoked_at FROM esign_revoked`)
	if err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k revKey
		var when time.Time
		if err := rows.Scan(&k.issuer, &k.serial, &when); err != nil {
			return nil, fmt.Errorf("read revocations: %w", err)
		}
		t.revoked[k] = when
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	v.mu.Lock()
	if v.gen == gen {
		v.cached = t
	}
	v.mu.Unlock()
	return t, nil
}

// forget drops the cached trust store after a local edit.
func (v *Verifier) forget() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++
	v.cached = nil
}

// equalDER reports whether two certificates are the same.
func equalDER(a, b *x509.Certificate) bool { return bytes.Equal(a.Raw, b.Raw) }

// ParseSignature decodes a Signature from its JSON strictly (unknown fields
// refused). Bad JSON or base64 is a signature.malformed error naming the
// field (/signature/value, /signature/chain/1, ...).
func ParseSignature(b []byte) (Signature, error) {
	var w struct {
		Format    string   `json:"format"`
		Algorithm string   `json:"algorithm"`
		Value     string   `json:"value"`
		Chain     []string `json:"chain"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		path := "/signature"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			path += "/" + strings.ReplaceAll(te.Field, ".", "/")
		}
		return Signature{}, reject(apierr.SignatureMalformed, path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Signature{}, rejectf(apierr.SignatureMalformed, "/signature", "more than one JSON value")
	}
	if len(w.Chain) > MaxChain {
		return Signature{}, rejectf(apierr.SignatureMalformed, "/signature/chain", "more than %d certificates", MaxChain)
	}
	sig := Signature{Format: w.Format, Algorithm: w.Algorithm}
	var err error
	if sig.Value, err = base64.StdEncoding.DecodeString(w.Value); err != nil {
		return Signature{}, reject(apierr.SignatureMalformed, "/signature/value", err)
	}
	for i, c := range w.Chain {
		der, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return Signature{}, reject(apierr.SignatureMalformed, "/signature/chain/"+strconv.Itoa(i), err)
		}
		sig.Chain = append(sig.Chain, der)
	}
	return sig, nil
}
