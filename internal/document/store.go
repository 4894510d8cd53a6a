package document

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/refnum"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the document capability's part of the database.
func Schema() pg.Schema { return pg.NewSchema("document", migrations) }

// Spec is what a document is issued from.
type Spec struct {
	Kind       string          // e.g. "address-certificate"
	Issuer     string          // agency id; its active key signs
	SubjectIIN iin.IIN         // whom the document is about
	Source     string          // what produced it, e.g. "application:<id>"; one document per source
	Fields     json.RawMessage // the document's content, a JSON object
}

// Payload is the signed content of a document.
type Payload struct {
	ID       string          `json:"jti"`
	Number   string          `json:"number"`
	Kind     string          `json:"kind"`
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	IssuedAt int64           `json:"iat"`
	Fields   json.RawMessage `json:"fields"`
}

// Document is an issued document.
type Document struct {
	ID         uuid.UUID
	Number     string
	Kind       string
	Issuer     string
	SubjectIIN string
	Source     string
	Fields     json.RawMessage
	JWS        string
	KeyID      string
	IssuedAt   time.Time
}

// ErrNotFound means there is no such document.
var ErrNotFound = errors.New("document not found")

// Store issues, keeps and verifies documents.
type Store struct {
	pool  *pgxpool.Pool
	clock clock.Clock

	mu   sync.Mutex
	keys map[string]signingKey // active key by agency
}

type signingKey struct {
	id  string
	key ed25519.PrivateKey
}

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool, c clock.Clock) *Store {
	return &Store{pool: pool, clock: c, keys: map[string]signingKey{}}
}

// EnsureKey gives agency an active signing key if it has none and returns the
// active key's id.
func (s *Store) EnsureKey(ctx context.Context, agency string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	kid := thumbprint(pub)
	_, err = s.pool.Exec(ctx, `
		INSERT INTO signing_key (id, agency_id, algorithm, public_key, private_key, created_at)
		VALUES ($1, $2, 'EdDSA', $3, $4, $5)
		ON CONFLICT (agency_id) WHERE retired_at IS NULL DO NOTHING`,
		kid, agency, []byte(pub), []byte(priv), s.clock.Now())
	if err != nil {
		return "", fmt.Errorf("create signing key for %s: %w", agency, err)
	}
	k, err := s.activeKey(ctx, s.pool, agency)
	return k.id, err
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Store) activeKey(ctx context.Context, q queryRower, agency string) (signingKey, error) {
	s.mu.Lock()
	k, ok := s.keys[agency]
	s.mu.Unlock()
	if ok {
		return k, nil
	}
	var priv []byte
	err := q.QueryRow(ctx, `SELECT id, private_key FROM signing_key WHERE agency_id = $1 AND retired_at IS NULL`, agency).
		Scan(&k.id, &priv)
	if errors.Is(err, pgx.ErrNoRows) {
		return signingKey{}, fmt.Errorf("agency %s has no active signing key", agency)
	}
	if err != nil {
		return signingKey{}, fmt.Errorf("load signing key of %s: %w", agency, err)
	}
	k.key = ed25519.PrivateKey(priv)
	s.mu.Lock()
	s.keys[agency] = k
	s.mu.Unlock()
	return k, nil
}

// Issue signs and stores a document within tx. If the source already has a
// document, that document is returned and nothing new is issued.
func (s *Store) Issue(ctx context.Context, tx pgx.Tx, spec Spec) (Document, error) {
	if !json.Valid(spec.Fields) || len(spec.Fields) == 0 || spec.Fields[0] != '{' {
		return Document{}, errors.New("issue document: fields must be a JSON object")
	}
	key, err := s.activeKey(ctx, tx, spec.Issuer)
	if err != nil {
		return Document{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Document{}, fmt.Errorf("issue document: %w", err)
	}
	now := s.clock.Now().Truncate(time.Second)
	d := Document{
		ID: id, Number: refnum.New('D'), Kind: spec.Kind, Issuer: spec.Issuer,
		SubjectIIN: spec.SubjectIIN.String(), Source: spec.Source, Fields: spec.Fields,
		KeyID: key.id, IssuedAt: now,
	}
	payload, err := json.Marshal(Payload{
		ID: id.String(), Number: d.Number, Kind: d.Kind, Issuer: d.Issuer, Subject: d.SubjectIIN,
		IssuedAt: now.Unix(), Fields: d.Fields,
	})
	if err != nil {
		return Document{}, fmt.Errorf("encode document: %w", err)
	}
	if d.JWS, err = sign(payload, key.id, key.key); err != nil {
		return Document{}, fmt.Errorf("sign document: %w", err)
	}
	// The source's unique constraint is the exactly-once guard: when the
	// source already has a document, that one is the answer.
	tag, err := tx.Exec(ctx, `
		INSERT INTO document (id, number, kind, issuer, subject_iin, source, jws, key_id, issued_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (source) DO NOTHING`,
		d.ID, d.Number, d.Kind, d.Issuer, d.SubjectIIN, d.Source, d.JWS, d.KeyID, d.IssuedAt)
	if err != nil {
		return Document{}, fmt.Errorf("store document: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return s.bySource(ctx, tx, spec.Source)
	}
	return d, nil
}

const selectDocument = `SELECT id, number, kind, issuer, subject_iin, source, jws, key_id, issued_at FROM document`

// scanDocument reads a document; its fields are those of the signed
// payload, the only copy kept.
func scanDocument(row pgx.CollectableRow) (Document, error) {
	var d Document
	if err := row.Scan(&d.ID, &d.Number, &d.Kind, &d.Issuer, &d.SubjectIIN, &d.Source, &d.JWS, &d.KeyID, &d.IssuedAt); err != nil {
		return Document{}, err
	}
	p, err := parse(d.JWS)
	var payload Payload
	if err == nil {
		err = json.Unmarshal(p.payload, &payload)
	}
	if err != nil {
		return Document{}, fmt.Errorf("document %s: stored JWS unreadable: %w", d.ID, err)
	}
	d.Fields = payload.Fields
	return d, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func one(ctx context.Context, q querier, where string, arg any) (Document, error) {
	rows, err := q.Query(ctx, selectDocument+" "+where, arg)
	if err != nil {
		return Document{}, fmt.Errorf("read document: %w", err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDocument)
	if errors.Is(err, pgx.ErrNoRows) {
		return Document{}, ErrNotFound
	}
	if err != nil {
		return Document{}, fmt.Errorf("read document: %w", err)
	}
	return d, nil
}

func (s *Store) bySource(ctx context.Context, q querier, source string) (Document, error) {
	return one(ctx, q, "WHERE source = $1", source)
}

// Get returns a document by id.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (Document, error) {
	return one(ctx, s.pool, "WHERE id = $1", id)
}

// Verification is the answer to "is this document genuine?".
type Verification struct {
	Valid bool `json:"valid"`
	// Code says why a document is not valid: document.malformed,
	// document.unknown_key or document.signature_invalid.
	Code     string   `json:"code,omitempty"`
	KeyID    string   `json:"key_id,omitempty"`
	Document *Payload `json:"document,omitempty"`
	// Registered is true when the platform holds this very document.
	Registered bool `json:"registered"`
}

// Verify checks a compact JWS against the platform's keys. A document that
// fails is an answer (Valid false, with a code), not an error.
func (s *Store) Verify(ctx context.Context, jws string) (Verification, error) {
	jws = strings.TrimSpace(jws)
	p, err := parse(jws)
	if err != nil {
		return Verification{Code: ErrMalformed.Error()}, nil
	}
	var pub []byte
	err = s.pool.QueryRow(ctx, `SELECT public_key FROM signing_key WHERE id = $1`, p.header.Kid).Scan(&pub)
	if errors.Is(err, pgx.ErrNoRows) {
		return Verification{Code: ErrUnknownKey.Error()}, nil
	}
	if err != nil {
		return Verification{}, fmt.Errorf("load key: %w", err)
	}
	if err := p.verify(ed25519.PublicKey(pub)); err != nil {
		return Verification{Code: err.Error(), KeyID: p.header.Kid}, nil
	}
	var payload Payload
	if err := json.Unmarshal(p.payload, &payload); err != nil {
		// Signed by us yet unreadable: cannot happen unless a key leaked.
		return Verification{Code: ErrMalformed.Error(), KeyID: p.header.Kid}, nil
	}
	v := Verification{Valid: true, KeyID: p.header.Kid, Document: &payload}
	if id, err := uuid.Parse(payload.ID); err == nil {
		var stored string
		err := s.pool.QueryRow(ctx, `SELECT jws FROM document WHERE id = $1`, id).Scan(&stored)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return Verification{}, fmt.Errorf("look up document: %w", err)
		}
		v.Registered = stored == jws
	}
	return v, nil
}

// Keys returns every public key, active and retired, as JWKs.
func (s *Store) Keys(ctx context.Context) ([]JWK, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, agency_id, public_key, retired_at IS NOT NULL FROM signing_key ORDER BY agency_id, created_at`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (JWK, error) {
		var k JWK
		var pub []byte
		err := row.Scan(&k.Kid, &k.Agency, &pub, &k.Retired)
		k.Kty, k.Crv, k.Use, k.Alg, k.X = "OKP", "Ed25519", "sig", "EdDSA", b64.EncodeToString(pub)
		return k, err
	})
}
