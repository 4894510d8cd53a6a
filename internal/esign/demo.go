package esign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/ortaq/ortaq/internal/iin"
)

// DemoCAName is the common name of demo CAs: their certificates must never be
// trusted in production.
const DemoCAName = "Ortaq DEMO CA — not for production"

// Key types of demo keys.
const (
	KeyECDSA   = "ecdsa"   // P-256
	KeyRSA     = "rsa"     // 2048 bits
	KeyEd25519 = "ed25519" // raw signatures only
)

// Files a demo CA or key is saved in.
const (
	CertFile = "cert.pem" // the certificate, then the chain up to the root
	KeyFile  = "key.pem"  // the private key, PKCS#8
)

// DemoCA is a certification authority for tests, demos and development: it
// issues certificates shaped like NCA RK's (SERIALNUMBER=IIN..., OU=BIN...,
// role OIDs in the extended key usage) so that signing works without
// NCALayer. Never trust a demo CA in production.
type DemoCA struct {
	Cert   *x509.Certificate
	Signer crypto.Signer
	// Chain is the CA's certificate and those above it, DER, the CA first;
	// a root's chain is its own certificate.
	Chain [][]byte
}

// Key is a signer's private key with its certificate.
type Key struct {
	Cert   *x509.Certificate
	Signer crypto.Signer
	Chain  [][]byte // DER, the signer's certificate first, then its CAs
}

// IssueOptions shape a demo certificate. The zero value issues an
// individual's ECDSA P-256 certificate valid from an hour ago for a year,
// for signing (digitalSignature and contentCommitment).
type IssueOptions struct {
	Name    string // CN; default "DEMO <IIN>"
	BIN     string // the organisation's BIN, put in OU=BIN...; adds legal_entity and employee roles unless Roles is set
	KeyType string // KeyECDSA (default), KeyRSA or KeyEd25519
	// NotBefore and NotAfter default to an hour ago and a year later.
	NotBefore, NotAfter time.Time
	// KeyUsage defaults to digitalSignature|contentCommitment.
	KeyUsage x509.KeyUsage
	// Roles are names of RoleOIDs; default individual (legal_entity and
	// employee with a BIN).
	Roles []string
	// NoIIN leaves SERIALNUMBER out, for tests of certificates without an IIN.
	NoIIN bool
}

// NewDemoCA makes a root CA: an ECDSA P-256 key and a self-signed
// certificate named DemoCAName, valid for ten years.
func NewDemoCA() (*DemoCA, error) {
	return newCA(nil, DemoCAName, time.Now().Add(-time.Hour), time.Now().AddDate(10, 0, 0))
}

// NewDemoCAValid is NewDemoCA valid from notBefore to notAfter, for tests
// whose clock is not the real one.
func NewDemoCAValid(notBefore, notAfter time.Time) (*DemoCA, error) {
	return newCA(nil, DemoCAName, notBefore, notAfter)
}

// NewIntermediate makes a CA certified by ca, valid as long as ca.
func (ca *DemoCA) NewIntermediate(name string) (*DemoCA, error) {
	return newCA(ca, name, ca.Cert.NotBefore, ca.Cert.NotAfter)
}

func newCA(parent *DemoCA, name string, notBefore, notAfter time.Time) (*DemoCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Ortaq DEMO"}, Country: []string{"KZ"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	issuer, signer := tmpl, crypto.Signer(key)
	var chain [][]byte
	if parent != nil {
		issuer, signer, chain = parent.Cert, parent.Signer, parent.Chain
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("make CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &DemoCA{Cert: cert, Signer: key, Chain: append([][]byte{der}, chain...)}, nil
}

// serial is a random positive 128-bit serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

// Issue makes a key and a certificate for the person with the IIN, certified
// by ca.
func (ca *DemoCA) Issue(personIIN string, o IssueOptions) (*Key, error) {
	if !o.NoIIN {
		if _, err := iin.Parse(personIIN); err != nil {
			return nil, fmt.Errorf("IIN %q: %w", personIIN, err)
		}
	}
	var key crypto.Signer
	var err error
	switch o.KeyType {
	case "", KeyECDSA:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyRSA:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case KeyEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("key type %q: use ecdsa, rsa or ed25519", o.KeyType)
	}
	if err != nil {
		return nil, err
	}
	subject := pkix.Name{CommonName: o.Name, Country: []string{"KZ"}}
	if subject.CommonName == "" {
		subject.CommonName = "DEMO " + personIIN
	}
	if !o.NoIIN {
		subject.SerialNumber = "IIN" + personIIN
	}
	roles := o.Roles
	if o.BIN != "" {
		if _, err := iin.ParseBIN(o.BIN); err != nil {
			return nil, fmt.Errorf("BIN %q: %w", o.BIN, err)
		}
		subject.OrganizationalUnit = []string{"BIN" + o.BIN}
		if roles == nil {
			roles = []string{"legal_entity", "employee"}
		}
	}
	if roles == nil {
		roles = []string{"individual"}
	}
	var eku []asn1.ObjectIdentifier
	for _, r := range roles {
		oid, ok := roleOID(r)
		if !ok {
			return nil, fmt.Errorf("role %q: not one of the KZ roles", r)
		}
		eku = append(eku, oid)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:       serial(),
		Subject:            subject,
		NotBefore:          cmpTime(o.NotBefore, now.Add(-time.Hour)),
		NotAfter:           cmpTime(o.NotAfter, now.AddDate(1, 0, 0)),
		KeyUsage:           o.KeyUsage,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		UnknownExtKeyUsage: eku,
	}
	if tmpl.KeyUsage == 0 {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Signer)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Key{Cert: cert, Signer: key, Chain: append([][]byte{der}, ca.Chain...)}, nil
}

func cmpTime(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

// Sign signs data as format (FormatRaw or FormatCMS) and returns the
// Signature a signer would send, with the key's chain. Raw signatures use
// ES256, RS256 or EdDSA after the key; CMS needs an ECDSA or RSA key.
func (k *Key) Sign(data []byte, format string) (Signature, error) {
	switch format {
	case FormatRaw:
		var alg string
		var value []byte
		var err error
		switch k.Signer.Public().(type) {
		case *ecdsa.PublicKey:
			alg = ES256
			sum := sha256.Sum256(data)
			value, err = k.Signer.Sign(rand.Reader, sum[:], crypto.SHA256)
		case *rsa.PublicKey:
			alg = RS256
			sum := sha256.Sum256(data)
			value, err = k.Signer.Sign(rand.Reader, sum[:], crypto.SHA256)
		case ed25519.PublicKey:
			alg = EdDSA
			value, err = k.Signer.Sign(rand.Reader, data, crypto.Hash(0))
		default:
			return Signature{}, fmt.Errorf("sign with a %T key", k.Signer.Public())
		}
		if err != nil {
			return Signature{}, fmt.Errorf("sign: %w", err)
		}
		return Signature{Format: FormatRaw, Algorithm: alg, Value: value, Chain: k.Chain}, nil
	case FormatCMS:
		value, err := signCMS(data, k.Signer, k.Cert, k.Chain, time.Now())
		if err != nil {
			return Signature{}, err
		}
		return Signature{Format: FormatCMS, Value: value}, nil
	}
	return Signature{}, fmt.Errorf("format %q: use raw or cms", format)
}

// Save writes the CA to dir (CertFile, KeyFile; the key readable by its
// owner only).
func (ca *DemoCA) Save(dir string) error { return save(dir, ca.Chain, ca.Signer) }

// Save writes the key to dir (CertFile, KeyFile; the key readable by its
// owner only).
func (k *Key) Save(dir string) error { return save(dir, k.Chain, k.Signer) }

func save(dir string, chain [][]byte, key crypto.Signer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var certs []byte
	for _, der := range chain {
		certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, CertFile), certs, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600)
}

// LoadDemoCA reads a CA saved by (*DemoCA).Save.
func LoadDemoCA(dir string) (*DemoCA, error) {
	cert, signer, chain, err := load(dir)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: the certificate is not a CA's", dir)
	}
	return &DemoCA{Cert: cert, Signer: signer, Chain: chain}, nil
}

// LoadKey reads a key saved by (*Key).Save.
func LoadKey(dir string) (*Key, error) {
	cert, signer, chain, err := load(dir)
	if err != nil {
		return nil, err
	}
	return &Key{Cert: cert, Signer: signer, Chain: chain}, nil
}

// LoadCertificates reads the PEM certificates of file, DER, in order.
func LoadCertificates(file string) ([][]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var chain [][]byte
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			chain = append(chain, block.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return chain, nil
}

func load(dir string) (*x509.Certificate, crypto.Signer, [][]byte, error) {
	chain, err := LoadCertificates(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", CertFile, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, nil, nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, nil, nil, fmt.Errorf("%s: no PEM block", KeyFile)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", KeyFile, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, nil, nil, errors.New(KeyFile + ": not a signing key")
	}
	return cert, signer, chain, nil
}
