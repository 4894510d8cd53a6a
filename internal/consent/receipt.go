package consent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ReceiptType is the JWS "typ" of consent receipts.
const ReceiptType = "ortaq-consent-receipt+jws"

var b64 = base64.RawURLEncoding

// keyring holds the ledger's active signing key once loaded.
type keyring struct {
	mu  sync.Mutex
	id  string
	key ed25519.PrivateKey
}

// thumbprint is the RFC 7638 thumbprint of an Ed25519 public key.
func thumbprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(pub) + `"}`))
	return b64.EncodeToString(sum[:])
}

// activeKey returns the signing key, making one on first use (every node
// signs with the same key: it is in the database).
func (l *Ledger) activeKey(ctx context.Context, tx pgx.Tx) (string, ed25519.PrivateKey, error) {
	l.keys.mu.Lock()
	defer l.keys.mu.Unlock()
	if l.keys.key != nil {
		return l.keys.id, l.keys.key, nil
	}
	var id string
	var priv []byte
	err := tx.QueryRow(ctx, `SELECT id, private_key FROM consent_key WHERE retired_at IS NULL`).Scan(&id, &priv)
	if errors.Is(err, pgx.ErrNoRows) {
		pub, p, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return "", nil, gerr
		}
		// Another node may make one at the same time: the unique index
		// keeps one, and this transaction waits for and then reads it.
		if _, err := tx.Exec(ctx, `INSERT INTO consent_key (id, public_key, private_key, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, thumbprint(pub), []byte(pub), []byte(p), l.clock.Now()); err != nil {
			return "", nil, fmt.Errorf("create receipt key: %w", err)
		}
		// Not kept in memory: this transaction may yet roll back.
		err = tx.QueryRow(ctx, `SELECT id, private_key FROM consent_key WHERE retired_at IS NULL`).Scan(&id, &priv)
		if err != nil {
			return "", nil, fmt.Errorf("load receipt key: %w", err)
		}
		return id, ed25519.PrivateKey(priv), nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("load receipt key: %w", err)
	}
	l.keys.id, l.keys.key = id, ed25519.PrivateKey(priv)
	return id, l.keys.key, nil
}

// ReceiptPayload is the signed content of a receipt.
type ReceiptPayload struct {
	ID         string    `json:"jti"`
	Issuer     string    `json:"iss"`
	Kind       string    `json:"kind"` // granted or revoked
	ConsentID  string    `json:"consent_id"`
	Subject    string    `json:"sub"`
	Requester  string    `json:"requester"`
	Items      []string  `json:"items"`
	Purpose    string    `json:"purpose"`
	ValidUntil time.Time `json:"valid_until"`
	Channel    string    `json:"channel,omitempty"`
	Revision   int       `json:"revision"`
	IssuedAt   int64     `json:"iat"`
}

// Receipt is a signed receipt.
type Receipt struct {
	ID        uuid.UUID `json:"id"`
	ConsentID uuid.UUID `json:"consent_id"`
	Kind      string    `json:"kind"`
	JWS       string    `json:"jws"`
	KeyID     string    `json:"key_id"`
	IssuedAt  time.Time `json:"issued_at"`
}

// issueReceipt signs and stores the receipt of a grant or revocation.
func (l *Ledger) issueReceipt(ctx context.Context, tx pgx.Tx, c Consent, kind string, now time.Time) (Receipt, error) {
	kid, key, err := l.activeKey(ctx, tx)
	if err != nil {
		return Receipt{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Receipt{}, err
	}
	payload, err := json.Marshal(ReceiptPayload{ID: id.String(), Issuer: "ortaq-consent", Kind: kind, ConsentID: c.ID.String(),
		Subject: c.SubjectIIN, Requester: c.Requester, Items: c.Items, Purpose: c.Purpose, ValidUntil: c.ValidUntil.UTC(),
		Channel: c.Channel, Revision: c.Revision, IssuedAt: now.Unix()})
	if err != nil {
		return Receipt{}, err
	}
	h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "kid": kid, "typ": ReceiptType})
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(payload)
	r := Receipt{ID: id, ConsentID: c.ID, Kind: kind, KeyID: kid, IssuedAt: now,
		JWS: input + "." + b64.EncodeToString(ed25519.Sign(key, []byte(input)))}
	if _, err := tx.Exec(ctx, `INSERT INTO consent_receipt (id, consent_id, kind, jws, key_id, issued_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.ID, r.ConsentID, r.Kind, r.JWS, r.KeyID, r.IssuedAt); err != nil {
		return Receipt{}, fmt.Errorf("store receipt: %w", err)
	}
	return r, nil
}

// Receipts returns a consent's receipts to its subject or requester.
func (l *Ledger) Receipts(ctx context.Context, c Consent) ([]Receipt, error) {
	rows, err := l.pool.Query(ctx, `SELECT id, consent_id, kind, jws, key_id, issued_at FROM consent_receipt
		WHERE consent_id = $1 ORDER BY issued_at, kind`, c.ID)
	if err != nil {
		return nil, fmt.Errorf("list receipts: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Receipt, error) {
		var r Receipt
		err := row.Scan(&r.ID, &r.ConsentID, &r.Kind, &r.JWS, &r.KeyID, &r.IssuedAt)
		return r, err
	})
}

// Verification is the answer to "is this receipt genuine?". Codes:
// receipt.malformed, receipt.unknown_key, receipt.signature_invalid.
type Verification struct {
	Valid   bool            `json:"valid"`
	Code    string          `json:"code,omitempty"`
	KeyID   string          `json:"key_id,omitempty"`
	Receipt *ReceiptPayload `json:"receipt,omitempty"`
	// Status is the consent's status now (a granted receipt of a consent
	// revoked since is genuine but no longer a basis).
	Status Status `json:"status,omitempty"`
}

// maxJWS bounds what Verify parses.
const maxJWS = 64 << 10

// parsedReceipt is a receipt split into its parts, not yet verified.
type parsedReceipt struct {
	kid     string
	input   string // header.payload, the signed bytes
	payload []byte
	sig     []byte
}

// parseReceipt accepts exactly one header shape: alg EdDSA, our typ, a
// kid, nothing else ("none" and other algorithms are malformed).
func parseReceipt(jws string) (parsedReceipt, bool) {
	if len(jws) > maxJWS {
		return parsedReceipt{}, false
	}
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return parsedReceipt{}, false
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return parsedReceipt{}, false
	}
	var h struct{ Alg, Kid, Typ string }
	dec := json.NewDecoder(strings.NewReader(string(hb)))
	dec.DisallowUnknownFields()
	if dec.Decode(&h) != nil || h.Alg != "EdDSA" || h.Typ != ReceiptType || h.Kid == "" || dec.More() {
		return parsedReceipt{}, false
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil || !json.Valid(payload) {
		return parsedReceipt{}, false
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return parsedReceipt{}, false
	}
	return parsedReceipt{kid: h.Kid, input: parts[0] + "." + parts[1], payload: payload, sig: sig}, true
}

// Verify checks a receipt against the ledger's keys. A bad receipt is an
// answer with a code, not an error.
func (l *Ledger) Verify(ctx context.Context, jws string) (Verification, error) {
	pr, ok := parseReceipt(strings.TrimSpace(jws))
	if !ok {
		return Verification{Code: "receipt.malformed"}, nil
	}
	var pub []byte
	err := l.pool.QueryRow(ctx, `SELECT public_key FROM consent_key WHERE id = $1`, pr.kid).Scan(&pub)
	if errors.Is(err, pgx.ErrNoRows) {
		return Verification{Code: "receipt.unknown_key"}, nil
	}
	if err != nil {
		return Verification{}, fmt.Errorf("load key: %w", err)
	}
	if !ed25519.Verify(ed25519.PublicKey(pub), []byte(pr.input), pr.sig) {
		return Verification{Code: "receipt.signature_invalid", KeyID: pr.kid}, nil
	}
	var p ReceiptPayload
	if err := json.Unmarshal(pr.payload, &p); err != nil {
		return Verification{Code: "receipt.malformed", KeyID: pr.kid}, nil
	}
	v := Verification{Valid: true, KeyID: pr.kid, Receipt: &p}
	if id, err := uuid.Parse(p.ConsentID); err == nil {
		c, err := scanConsent(l.pool.QueryRow(ctx, `SELECT `+consentCols+` FROM consent WHERE id = $1`, id), l.clock.Now())
		if err == nil {
			v.Status = c.Status
		}
	}
	return v, nil
}

// JWK is a public key of the ledger.
type JWK struct {
	Kty     string `json:"kty"`
	Crv     string `json:"crv"`
	X       string `json:"x"`
	Kid     string `json:"kid"`
	Use     string `json:"use"`
	Alg     string `json:"alg"`
	Retired bool   `json:"retired,omitempty"`
}

// Keys returns every receipt key, active and retired.
func (l *Ledger) Keys(ctx context.Context) ([]JWK, error) {
	rows, err := l.pool.Query(ctx, `SELECT id, public_key, retired_at IS NOT NULL FROM consent_key ORDER BY created_at`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (JWK, error) {
		var k JWK
		var pub []byte
		err := row.Scan(&k.Kid, &pub, &k.Retired)
		k.Kty, k.Crv, k.Use, k.Alg, k.X = "OKP", "Ed25519", "sig", "EdDSA", b64.EncodeToString(pub)
		return k, err
	})
}
