package esign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
)

// CMS (RFC 5652) SignedData, detached, as NCALayer produces it: signed
// attributes with the content type and the SHA-256 message digest, the
// signature over the DER SET OF those attributes, the certificates in the
// SignedData. Only encoding/asn1 is used, so only DER is read (NCALayer
// writes DER).

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}

	oidRSA         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSASHA1     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidRSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidECDSASHA1   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSASHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
)

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	// Content keeps its [0] EXPLICIT wrapper (encoding/asn1 does not
	// unwrap a RawValue): the SignedData is Content.Bytes.
	Content asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

// cms is a parsed detached SignedData with one signer.
type cms struct {
	certs  []*x509.Certificate
	signer signerInfo
	attrs  []attribute
	// content is the encapsulated content, if the CMS is not detached.
	content []byte
}

func malformed(format string, args ...any) error {
	return rejectf(apierr.SignatureMalformed, "/signature/value", format, args...)
}

func unsupported(path, format string, args ...any) error {
	return rejectf(apierr.SignatureAlgorithmUnsupported, path, format, args...)
}

// parseSignedData reads a DER CMS ContentInfo holding a SignedData with
// exactly one signer.
func parseSignedData(der []byte) (*cms, error) {
	var ci contentInfo
	rest, err := asn1.Unmarshal(der, &ci)
	if err != nil {
		return nil, malformed("content info: %v", err)
	}
	if len(rest) > 0 {
		return nil, malformed("%d bytes after the content info", len(rest))
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, malformed("content type %s, not signed data", ci.ContentType)
	}
	var sd signedData
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(rest) > 0 {
		return nil, malformed("signed data: %v", err)
	}
	if len(sd.SignerInfos) != 1 {
		return nil, malformed("%d signers; want exactly one", len(sd.SignerInfos))
	}
	out := &cms{signer: sd.SignerInfos[0]}
	if !sd.EncapContentInfo.EContentType.Equal(oidData) {
		return nil, malformed("encapsulated content type %s, not data", sd.EncapContentInfo.EContentType)
	}
	if len(sd.EncapContentInfo.EContent.FullBytes) > 0 {
		// A RawValue keeps its [0] EXPLICIT wrapper: the OCTET STRING is inside.
		var octets []byte
		if rest, err := asn1.Unmarshal(sd.EncapContentInfo.EContent.Bytes, &octets); err != nil || len(rest) > 0 {
			return nil, malformed("encapsulated content: %v", err)
		}
		out.content = octets
	}
	// GOST first: its certificates may not even parse.
	for _, alg := range []asn1.ObjectIdentifier{out.signer.DigestAlgorithm.Algorithm, out.signer.SignatureAlgorithm.Algorithm} {
		if isGOST(alg) {
			return nil, unsupported("/signature/value", "GOST algorithm %s: needs KalkanCrypt or NCANode", alg)
		}
	}
	for b := sd.Certificates.Bytes; len(b) > 0; {
		var raw asn1.RawValue
		if b, err = asn1.Unmarshal(b, &raw); err != nil {
			return nil, malformed("certificates: %v", err)
		}
		if len(out.certs) == MaxChain {
			return nil, malformed("more than %d certificates", MaxChain)
		}
		cert, err := x509.ParseCertificate(raw.FullBytes)
		if err != nil {
			if oid, ok := certAlgorithmOID(raw.FullBytes); ok && isGOST(oid) {
				return nil, unsupported("/signature/value", "GOST certificate %s: needs KalkanCrypt or NCANode", oid)
			}
			return nil, malformed("certificate %d: %v", len(out.certs), err)
		}
		out.certs = append(out.certs, cert)
	}
	if len(out.signer.SignedAttrs.Bytes) == 0 {
		return nil, malformed("no signed attributes")
	}
	for b := out.signer.SignedAttrs.Bytes; len(b) > 0; {
		var a attribute
		b, err = asn1.Unmarshal(b, &a)
		if err != nil {
			return nil, malformed("signed attribute: %v", err)
		}
		out.attrs = append(out.attrs, a)
	}
	return out, nil
}

// attr returns the single value of the signed attribute oid.
func (c *cms) attr(oid asn1.ObjectIdentifier) ([]byte, error) {
	var found []byte
	for _, a := range c.attrs {
		if !a.Type.Equal(oid) {
			continue
		}
		if found != nil {
			return nil, malformed("attribute %s twice", oid)
		}
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(a.Values.Bytes, &v)
		if err != nil || len(rest) > 0 {
			return nil, malformed("attribute %s: not one value", oid)
		}
		found = v.FullBytes
	}
	if found == nil {
		return nil, malformed("no attribute %s", oid)
	}
	return found, nil
}

// signerCert finds the signer's certificate among certs.
func (c *cms) signerCert(certs []*x509.Certificate) (*x509.Certificate, error) {
	sid := c.signer.SID
	switch {
	case sid.Class == asn1.ClassUniversal && sid.Tag == asn1.TagSequence:
		var is issuerAndSerial
		if rest, err := asn1.Unmarshal(sid.FullBytes, &is); err != nil || len(rest) > 0 || is.Serial == nil {
			return nil, malformed("signer identifier: %v", err)
		}
		for _, cert := range certs {
			if cert.SerialNumber.Cmp(is.Serial) == 0 && bytes.Equal(cert.RawIssuer, is.Issuer.FullBytes) {
				return cert, nil
			}
		}
	case sid.Class == asn1.ClassContextSpecific && sid.Tag == 0:
		for _, cert := range certs {
			if len(cert.SubjectKeyId) > 0 && bytes.Equal(cert.SubjectKeyId, sid.Bytes) {
				return cert, nil
			}
		}
	default:
		return nil, malformed("signer identifier of tag %d", sid.Tag)
	}
	return nil, rejectf(apierr.SignatureMalformed, "/signature/chain", "the signer's certificate is neither in the CMS nor in the chain")
}

// verify checks the CMS over data and returns the signer's certificate and
// the other certificates (candidates for the chain). extra are certificates
// sent beside the CMS.
func (c *cms) verify(data []byte, extra []*x509.Certificate) (*x509.Certificate, []*x509.Certificate, error) {
	all := append(slices.Clip(c.certs), extra...)
	if len(all) > MaxChain {
		return nil, nil, rejectf(apierr.SignatureMalformed, "/signature/chain", "more than %d certificates", MaxChain)
	}
	const algPath = "/signature/value"
	if d := c.signer.DigestAlgorithm.Algorithm; !d.Equal(oidSHA256) {
		switch {
		case isGOST(d):
			return nil, nil, unsupported(algPath, "GOST digest %s: needs KalkanCrypt or NCANode", d)
		case d.Equal(oidSHA1):
			return nil, nil, unsupported(algPath, "SHA-1 is refused")
		}
		return nil, nil, unsupported(algPath, "digest algorithm %s", d)
	}
	leaf, err := c.signerCert(all)
	if err != nil {
		return nil, nil, err
	}
	if err := checkCertAlgorithms(leaf, "/signature/chain/0"); err != nil {
		return nil, nil, err
	}
	ct, err := c.attr(oidContentType)
	if err != nil {
		return nil, nil, err
	}
	var ctOID asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(ct, &ctOID); err != nil || !ctOID.Equal(oidData) {
		return nil, nil, malformed("content-type attribute is not data")
	}
	md, err := c.attr(oidMessageDigest)
	if err != nil {
		return nil, nil, err
	}
	var digest []byte
	if _, err := asn1.Unmarshal(md, &digest); err != nil {
		return nil, nil, malformed("message digest: %v", err)
	}
	if c.content != nil && !bytes.Equal(c.content, data) {
		return nil, nil, rejectf(apierr.SignatureInvalid, "/signature/value", "the CMS holds other content than the data")
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(digest, want[:]) {
		return nil, nil, rejectf(apierr.SignatureInvalid, "/signature/value", "message digest does not match the data")
	}
	// The signature covers the DER SET OF the signed attributes: the same
	// bytes with the universal SET tag in place of [0] IMPLICIT.
	signed := slices.Clone(c.signer.SignedAttrs.FullBytes)
	signed[0] = 0x31
	sum := sha256.Sum256(signed)
	alg := c.signer.SignatureAlgorithm.Algorithm
	switch pub := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		if !alg.Equal(oidRSA) && !alg.Equal(oidRSASHA256) {
			return nil, nil, sigAlgUnsupported(alg)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], c.signer.Signature); err != nil {
			return nil, nil, reject(apierr.SignatureInvalid, "/signature/value", err)
		}
	case *ecdsa.PublicKey:
		if !alg.Equal(oidECDSASHA256) && !alg.Equal(oidECPublicKey) {
			return nil, nil, sigAlgUnsupported(alg)
		}
		if !ecdsa.VerifyASN1(pub, sum[:], c.signer.Signature) {
			return nil, nil, rejectf(apierr.SignatureInvalid, "/signature/value", "ECDSA signature does not verify")
		}
	default:
		return nil, nil, unsupported("/signature/chain/0", "%T signers in CMS", leaf.PublicKey)
	}
	var others []*x509.Certificate
	for _, cert := range all {
		if !equalDER(cert, leaf) {
			others = append(others, cert)
		}
	}
	return leaf, others, nil
}

func sigAlgUnsupported(alg asn1.ObjectIdentifier) error {
	switch {
	case isGOST(alg):
		return unsupported("/signature/value", "GOST signature %s: needs KalkanCrypt or NCANode", alg)
	case alg.Equal(oidRSASHA1) || alg.Equal(oidECDSASHA1):
		return unsupported("/signature/value", "SHA-1 signature %s is refused", alg)
	}
	return unsupported("/signature/value", "signature algorithm %s", alg)
}

// signCMS makes a detached CMS SignedData over data with signer and its
// certificate, carrying chain (signer first).
func signCMS(data []byte, signer crypto.Signer, cert *x509.Certificate, chain [][]byte, at time.Time) ([]byte, error) {
	var sigAlg asn1.ObjectIdentifier
	switch signer.Public().(type) {
	case *rsa.PublicKey:
		sigAlg = oidRSASHA256
	case *ecdsa.PublicKey:
		sigAlg = oidECDSASHA256
	default:
		return nil, fmt.Errorf("CMS signing with a %T key: only RSA and ECDSA", signer.Public())
	}
	digest := sha256.Sum256(data)
	var attrs [][]byte
	for _, a := range []struct {
		oid asn1.ObjectIdentifier
		val any
	}{
		{oidContentType, oidData},
		{oidSigningTime, at.UTC()},
		{oidMessageDigest, digest[:]},
	} {
		v, err := asn1.Marshal(a.val)
		if err != nil {
			return nil, err
		}
		enc, err := asn1.Marshal(attribute{Type: a.oid, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: v}})
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, enc)
	}
	// DER orders the elements of a SET OF by their encodings.
	slices.SortFunc(attrs, bytes.Compare)
	set, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: bytes.Join(attrs, nil)})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(set)
	sig, err := signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	signedAttrs := slices.Clone(set)
	signedAttrs[0] = 0xA0
	sid, err := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber})
	if err != nil {
		return nil, err
	}
	sha := pkix.AlgorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1.NullRawValue}
	sd := signedData{
		Version:          1,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{sha},
		EncapContentInfo: encapContentInfo{EContentType: oidData},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: bytes.Join(chain, nil)},
		SignerInfos: []signerInfo{{
			Version:            1,
			SID:                asn1.RawValue{FullBytes: sid},
			DigestAlgorithm:    sha,
			SignedAttrs:        asn1.RawValue{FullBytes: signedAttrs},
			SignatureAlgorithm: pkix.AlgorithmIdentifier{Algorithm: sigAlg},
			Signature:          sig,
		}},
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, err
	}
	// A RawValue is written as it is: the [0] EXPLICIT wrapper is spelt out.
	return asn1.Marshal(contentInfo{ContentType: oidSignedData,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
}
