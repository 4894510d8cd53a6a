package esign

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"time"
)

// SetCacheTime makes v measure the age of its cache with now, so tests can
// move past CacheTTL without sleeping.
func SetCacheTime(v *Verifier, now func() time.Time) { v.now = now }

// SetCMSDigestAlgorithm rewrites the digest algorithm of a CMS made by
// (*Key).Sign, in the signer info and the SignedData's list.
func SetCMSDigestAlgorithm(der []byte, oid string) []byte {
	var ci contentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		panic(err)
	}
	var sd signedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		panic(err)
	}
	sd.DigestAlgorithms[0].Algorithm = parseOID(oid)
	sd.SignerInfos[0].DigestAlgorithm.Algorithm = parseOID(oid)
	inner, err := asn1.Marshal(sd)
	if err != nil {
		panic(err)
	}
	out, err := asn1.Marshal(contentInfo{ContentType: oidSignedData,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
	if err != nil {
		panic(err)
	}
	return out
}

// VerifyWithRoots is Verify against roots and revocations (issuer, serial
// pairs) held in memory.
func VerifyWithRoots(data []byte, sig Signature, at time.Time, roots []*x509.Certificate, revoked ...[2]string) (Signer, error) {
	t := &trust{roots: roots, revoked: map[revKey]time.Time{}}
	for _, r := range revoked {
		t.revoked[revKey{r[0], r[1]}] = time.Time{}
	}
	return verify(data, sig, at, t)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
