package document

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// header is the protected JWS header of every document.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// mediaType marks a JWS as an Ortaq document.
const mediaType = "ortaq-document+jws"

var b64 = base64.RawURLEncoding

// sign produces a compact JWS of payload with key, named kid.
func sign(payload []byte, kid string, key ed25519.PrivateKey) (string, error) {
	h, err := json.Marshal(header{Alg: "EdDSA", Kid: kid, Typ: mediaType})
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(payload)
	sig := ed25519.Sign(key, []byte(input))
	return input + "." + b64.EncodeToString(sig), nil
}

// Why a JWS fails verification. Each is a stable code in verify answers.
var (
	ErrMalformed    = errors.New("document.malformed")
	ErrUnknownKey   = errors.New("document.unknown_key")
	ErrBadSignature = errors.New("document.signature_invalid")
)

// parsed is a JWS split into its parts, not yet verified.
type parsed struct {
	header  header
	payload []byte
	input   string // header.payload, the signed bytes
	sig     []byte
}

// maxJWS bounds what we are willing to parse.
const maxJWS = 256 << 10

func parse(jws string) (parsed, error) {
	if len(jws) > maxJWS {
		return parsed{}, ErrMalformed
	}
	parts := strings.Split(strings.TrimSpace(jws), ".")
	if len(parts) != 3 {
		return parsed{}, ErrMalformed
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return parsed{}, ErrMalformed
	}
	var p parsed
	dec := json.NewDecoder(strings.NewReader(string(hb)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p.header); err != nil {
		return parsed{}, ErrMalformed
	}
	// Only our algorithm: never "none", never a downgrade.
	if p.header.Alg != "EdDSA" || p.header.Typ != mediaType || p.header.Kid == "" {
		return parsed{}, ErrMalformed
	}
	if p.payload, err = b64.DecodeString(parts[1]); err != nil {
		return parsed{}, ErrMalformed
	}
	if p.sig, err = b64.DecodeString(parts[2]); err != nil || len(p.sig) != ed25519.SignatureSize {
		return parsed{}, ErrMalformed
	}
	p.input = parts[0] + "." + parts[1]
	return p, nil
}

func (p parsed) verify(pub ed25519.PublicKey) error {
	if !ed25519.Verify(pub, []byte(p.input), p.sig) {
		return ErrBadSignature
	}
	return nil
}

// JWK is a public key as RFC 8037 writes Ed25519 keys.
type JWK struct {
	Kty    string `json:"kty"`
	Crv    string `json:"crv"`
	X      string `json:"x"`
	Kid    string `json:"kid"`
	Use    string `json:"use"`
	Alg    string `json:"alg"`
	Agency string `json:"agency"`
	// Retired keys verify what they signed but sign nothing new.
	Retired bool `json:"retired,omitempty"`
}

// thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key.
func thumbprint(pub ed25519.PublicKey) string {
	// Members in lexicographic order, no whitespace, as RFC 7638 requires.
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return b64.EncodeToString(sum[:])
}
