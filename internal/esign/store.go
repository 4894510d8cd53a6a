package esign

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
)

// ErrNotFound means there is no such trust root.
var ErrNotFound = errors.New("esign: no such trust root")

// Root is a trust root: a CA certificate whose chains the platform accepts.
type Root struct {
	ID        int64      `json:"id"`
	DER       []byte     `json:"certificate"` // base64 in JSON
	SHA256    string     `json:"sha256"`      // hex fingerprint of DER
	Subject   string     `json:"subject"`
	NotAfter  time.Time  `json:"not_after"`
	AddedBy   string     `json:"added_by"`
	AddedAt   time.Time  `json:"added_at"`
	Active    bool       `json:"active"`
	RemovedBy string     `json:"removed_by,omitempty"`
	RemovedAt *time.Time `json:"removed_at,omitempty"`
}

// Revocation names a revoked certificate by its issuer and serial number.
type Revocation struct {
	Issuer string `json:"issuer"` // RFC 4514, as Signer.Issuer shows it
	Serial string `json:"serial"` // hex, as Signer.Serial shows it
	Reason string `json:"reason,omitempty"`
	// RevokedAt (default now): verifications at an earlier time still
	// accept the certificate, so what was signed before stays valid.
	RevokedAt time.Time `json:"revoked_at"`
}

// MaxReasonLength bounds a revocation's reason, in bytes.
const MaxReasonLength = 500

// Roots lists the trust roots, removed ones too, in the order they were added.
func (v *Verifier) Roots(ctx context.Context) ([]Root, error) {
	rows, err := v.pool.Query(ctx, `
		SELECT id, der, sha256, subject, not_after, added_by, added_at, active,
		       coalesce(removed_by, ''), removed_at
		FROM esign_trust_root ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read trust roots: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Root, error) {
		var r Root
		var sum []byte
		err := row.Scan(&r.ID, &r.DER, &sum, &r.Subject, &r.NotAfter, &r.AddedBy, &r.AddedAt, &r.Active, &r.RemovedBy, &r.RemovedAt)
		r.SHA256 = fmt.Sprintf("%x", sum)
		return r, err
	})
}

// AddRoot trusts the CA certificate der (a certificate with the CA basic
// constraint). Adding a root again makes it active again. actor is recorded
// with the row and in the audit trail.
func (v *Verifier) AddRoot(ctx context.Context, der []byte, actor string) (Root, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return Root{}, apierr.New(apierr.Validation, apierr.FieldError{Path: "/certificate", Code: apierr.FieldFormat})
	}
	if !c.IsCA {
		return Root{}, apierr.New(apierr.Validation, apierr.FieldError{Path: "/certificate", Code: apierr.FieldOneOf})
	}
	sum := sha256.Sum256(der)
	now := v.clock.Now().UTC()
	var id int64
	err = pgx.BeginFunc(ctx, v.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO esign_trust_root (der, sha256, subject, not_after, added_by, added_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (sha256) DO UPDATE SET active = true, added_by = $5, added_at = $6, removed_by = NULL, removed_at = NULL
			RETURNING id`, der, sum[:], c.Subject.String(), c.NotAfter, actor, now).Scan(&id)
		if err != nil {
			return fmt.Errorf("store trust root: %w", err)
		}
		return audit.Record(ctx, tx, audit.Event{At: now, Actor: actor, Action: "esign.root.added",
			Object: "esign_trust_root:" + strconv.FormatInt(id, 10), Purpose: "trust " + c.Subject.String()})
	})
	if err != nil {
		return Root{}, err
	}
	v.forget()
	return Root{ID: id, DER: der, SHA256: fmt.Sprintf("%x", sum), Subject: c.Subject.String(), NotAfter: c.NotAfter.UTC(),
		AddedBy: actor, AddedAt: now, Active: true}, nil
}

// RemoveRoot stops trusting root id; the row stays, inactive.
func (v *Verifier) RemoveRoot(ctx context.Context, id int64, actor string) error {
	now := v.clock.Now().UTC()
	err := pgx.BeginFunc(ctx, v.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE esign_trust_root SET active = false, removed_by = $2, removed_at = $3
			WHERE id = $1 AND active`, id, actor, now)
		if err != nil {
			return fmt.Errorf("remove trust root: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, audit.Event{At: now, Actor: actor, Action: "esign.root.removed",
			Object: "esign_trust_root:" + strconv.FormatInt(id, 10)})
	})
	if err != nil {
		return err
	}
	v.forget()
	return nil
}

// Revoke records a revoked certificate; recording it again updates its
// reason and time.
func (v *Verifier) Revoke(ctx context.Context, r Revocation, actor string) (Revocation, error) {
	var fields []apierr.FieldError
	r.Issuer = strings.TrimSpace(r.Issuer)
	if r.Issuer == "" {
		fields = append(fields, apierr.FieldError{Path: "/issuer", Code: apierr.FieldRequired})
	}
	serial, ok := normaliseSerial(r.Serial)
	switch {
	case r.Serial == "":
		fields = append(fields, apierr.FieldError{Path: "/serial", Code: apierr.FieldRequired})
	case !ok:
		fields = append(fields, apierr.FieldError{Path: "/serial", Code: apierr.FieldFormat})
	}
	if len(r.Reason) > MaxReasonLength {
		fields = append(fields, apierr.FieldError{Path: "/reason", Code: apierr.FieldTooLong})
	}
	if len(fields) > 0 {
		return Revocation{}, apierr.New(apierr.Validation, fields...)
	}
	r.Serial = serial
	now := v.clock.Now().UTC()
	if r.RevokedAt.IsZero() {
		r.RevokedAt = now
	}
	r.RevokedAt = r.RevokedAt.UTC()
	err := pgx.BeginFunc(ctx, v.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO esign_revoked (issuer, serial, reason, revoked_at, added_by, added_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (issuer, serial) DO UPDATE SET reason = $3, revoked_at = $4, added_by = $5, added_at = $6`,
			r.Issuer, r.Serial, r.Reason, r.RevokedAt, actor, now)
		if err != nil {
			return fmt.Errorf("store revocation: %w", err)
		}
		return audit.Record(ctx, tx, audit.Event{At: now, Actor: actor, Action: "esign.certificate.revoked",
			Object: "certificate:" + r.Serial + " of " + r.Issuer, Purpose: r.Reason})
	})
	if err != nil {
		return Revocation{}, err
	}
	v.forget()
	return r, nil
}

// normaliseSerial turns a hex serial (colons and spaces allowed, any case)
// into lowercase hex without leading zeros.
func normaliseSerial(s string) (string, bool) {
	s = strings.NewReplacer(":", "", " ", "").Replace(strings.TrimPrefix(strings.ToLower(s), "0x"))
	if s == "" || len(s) > 64 {
		return "", false
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() < 0 {
		return "", false
	}
	return n.Text(16), true
}
