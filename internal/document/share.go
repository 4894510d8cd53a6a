package document

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/pg"
)

// Sharing a document with a one-time code: the holder creates a share and
// gets a code once; whoever they give the document's number and the code
// to sees the whole document, a limited number of times within a day.
const (
	// ShareTTL is how long a share code stays valid.
	ShareTTL = 24 * time.Hour
	// ShareMaxUses is how many times one code opens the document: a
	// recipient may reload the page or open it on another device, but a
	// leaked code is not a standing link.
	ShareMaxUses = 5
	// ShareMaxFailures wrong codes on one document within
	// ShareFailureWindow lock its sharing until the window has passed.
	ShareMaxFailures   = 10
	ShareFailureWindow = time.Hour
	// maxActiveShares bounds a document's live shares.
	maxActiveShares = 20
	// ShareCodeLength characters from shareAlphabet: 31^10, about 49 bits.
	ShareCodeLength = 10
)

// shareAlphabet has no characters that read alike (0/O, 1/I/L).
const shareAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// Share is one share of a document, as its holder sees it. The code itself
// is never stored and never shown again.
type Share struct {
	ID         uuid.UUID
	DocumentID uuid.UUID
	CreatedAt  time.Time
	ExpiresAt  time.Time
	MaxUses    int
	Uses       int
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Active reports whether the share still opens the document at now.
func (s Share) Active(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.ExpiresAt) && s.Uses < s.MaxUses
}

// Why a share code is refused.
var (
	// ErrShareInvalid: no such document, or the code is wrong, expired,
	// used up or revoked; one answer for each, so that a guesser learns
	// nothing.
	ErrShareInvalid = apierr.New(apierr.DocumentShareInvalid)
	// ErrShareLocked: too many wrong codes on this document lately.
	ErrShareLocked = apierr.New(apierr.DocumentShareLocked)
)

func newShareCode() (string, error) {
	// Rejection sampling keeps every character equally likely.
	const limit = 256 - 256%len(shareAlphabet)
	out := make([]byte, 0, ShareCodeLength)
	buf := make([]byte, 32)
	for len(out) < ShareCodeLength {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < ShareCodeLength {
				out = append(out, shareAlphabet[int(b)%len(shareAlphabet)])
			}
		}
	}
	return string(out), nil
}

// FormatShareCode groups a code for reading aloud: "ABCDE-FGHJK".
func FormatShareCode(code string) string {
	if len(code) != ShareCodeLength {
		return code
	}
	return code[:5] + "-" + code[5:]
}

// normaliseShareCode accepts a code typed with dashes, spaces or in lower
// case; ok is false when it cannot be a code at all.
func normaliseShareCode(code string) (string, bool) {
	code = strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(code) != ShareCodeLength {
		return "", false
	}
	for _, c := range code {
		if !strings.ContainsRune(shareAlphabet, c) {
			return "", false
		}
	}
	return code, true
}

func shareHash(doc uuid.UUID, code string) []byte {
	h := sha256.New()
	h.Write(doc[:])
	h.Write([]byte(code))
	return h.Sum(nil)
}

// owned reads the document in tx, locked, if ownerIIN is the person it is
// about; anyone else gets ErrNotFound, as if it did not exist.
func owned(ctx context.Context, tx pgx.Tx, id uuid.UUID, ownerIIN string) (Document, error) {
	d, err := one(ctx, tx, "WHERE id = $1 FOR UPDATE", id)
	if err != nil {
		return Document{}, err
	}
	if d.SubjectIIN != ownerIIN {
		return Document{}, ErrNotFound
	}
	return d, nil
}

// CreateShare makes a share code for the document of ownerIIN: the code is
// returned this once (FormatShareCode shows it grouped) and only its hash
// kept. Audited as document.share_created.
func (s *Store) CreateShare(ctx context.Context, docID uuid.UUID, ownerIIN, actor, requestID string) (Share, string, error) {
	code, err := newShareCode()
	if err != nil {
		return Share{}, "", fmt.Errorf("share code: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Share{}, "", err
	}
	now := s.clock.Now().Truncate(time.Microsecond)
	sh := Share{ID: id, DocumentID: docID, CreatedAt: now, ExpiresAt: now.Add(ShareTTL), MaxUses: ShareMaxUses}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		d, err := owned(ctx, tx, docID, ownerIIN)
		if err != nil {
			return err
		}
		var active int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM document_share WHERE document_id = $1 AND revoked_at IS NULL
			AND expires_at > $2 AND uses < max_uses`, docID, now).Scan(&active); err != nil {
			return fmt.Errorf("count shares: %w", err)
		}
		if active >= maxActiveShares {
			return apierr.New(apierr.DocumentShareLimit)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO document_share (id, document_id, code_hash, created_by, created_at, expires_at, max_uses)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, sh.ID, docID, shareHash(docID, code), actor, sh.CreatedAt, sh.ExpiresAt, sh.MaxUses); err != nil {
			return fmt.Errorf("store share: %w", err)
		}
		return audit.Record(ctx, tx, audit.Event{At: now, Actor: actor, Action: "document.share_created", SubjectIIN: d.SubjectIIN,
			Object: "document:" + d.ID.String() + " share:" + sh.ID.String(), Purpose: "shared by the document's holder", RequestID: requestID})
	})
	if err != nil {
		return Share{}, "", err
	}
	return sh, code, nil
}

const shareCols = `id, document_id, created_at, expires_at, max_uses, uses, last_used_at, revoked_at`

func scanShare(row pgx.CollectableRow) (Share, error) {
	var sh Share
	err := row.Scan(&sh.ID, &sh.DocumentID, &sh.CreatedAt, &sh.ExpiresAt, &sh.MaxUses, &sh.Uses, &sh.LastUsedAt, &sh.RevokedAt)
	return sh, err
}

// Shares lists the shares of ownerIIN's document, newest first (limit 50);
// ErrNotFound for anyone else's.
func (s *Store) Shares(ctx context.Context, docID uuid.UUID, ownerIIN string) ([]Share, error) {
	var out []Share
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := owned(ctx, tx, docID, ownerIIN); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+shareCols+` FROM document_share WHERE document_id = $1
			ORDER BY created_at DESC, id DESC LIMIT 50`, docID)
		if err != nil {
			return fmt.Errorf("list shares: %w", err)
		}
		out, err = pgx.CollectRows(rows, scanShare)
		return err
	})
	return out, err
}

// RevokeShare ends a share of ownerIIN's document at once. Revoking an
// ended share changes nothing and is no error. Audited as
// document.share_revoked.
func (s *Store) RevokeShare(ctx context.Context, docID, shareID uuid.UUID, ownerIIN, actor, requestID string) error {
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		d, err := owned(ctx, tx, docID, ownerIIN)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		tag, err := tx.Exec(ctx, `UPDATE document_share SET revoked_at = coalesce(revoked_at, $3) WHERE id = $1 AND document_id = $2`, shareID, docID, now)
		if err != nil {
			return fmt.Errorf("revoke share: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, audit.Event{At: now, Actor: actor, Action: "document.share_revoked", SubjectIIN: d.SubjectIIN,
			Object: "document:" + d.ID.String() + " share:" + shareID.String(), Purpose: "shared by the document's holder", RequestID: requestID})
	})
}

// resolve finds a document's id by its id or its number (as printed, e.g.
// "D-1234-5678-9012", any case).
func (s *Store) resolve(ctx context.Context, q querier, ref string) (uuid.UUID, error) {
	ref = strings.TrimSpace(ref)
	if id, err := uuid.Parse(ref); err == nil {
		return id, nil
	}
	if len(ref) > 64 {
		return uuid.Nil, ErrNotFound
	}
	d, err := one(ctx, q, "WHERE number = $1", strings.ToUpper(ref))
	return d.ID, err
}

// OpenShare returns the document named by ref (its id or number) to
// whoever holds one of its live share codes, counts the use and records it
// in the audit trail as document.shared_read, which its holder sees. A
// wrong, expired, used-up or revoked code is ErrShareInvalid and counts as
// a failure (audited as document.share_refused); ShareMaxFailures of them
// within ShareFailureWindow make every code of the document ErrShareLocked
// until the window has passed.
func (s *Store) OpenShare(ctx context.Context, ref, code, actor, requestID string) (Document, error) {
	var d Document
	var refusal error
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		id, err := s.resolve(ctx, tx, ref)
		if errors.Is(err, ErrNotFound) {
			refusal = ErrShareInvalid
			return nil
		}
		if err != nil {
			return err
		}
		// The document's row lock orders concurrent tries, so that the
		// failure count cannot be outrun.
		d, err = one(ctx, tx, "WHERE id = $1 FOR UPDATE", id)
		if errors.Is(err, ErrNotFound) {
			refusal = ErrShareInvalid
			return nil
		}
		if err != nil {
			return err
		}
		now := s.clock.Now()
		var failures int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM document_share_failure WHERE document_id = $1 AND at > $2`,
			d.ID, now.Add(-ShareFailureWindow)).Scan(&failures); err != nil {
			return fmt.Errorf("count failures: %w", err)
		}
		if failures >= ShareMaxFailures {
			refusal = ErrShareLocked
			return nil
		}
		var shareID uuid.UUID
		norm, ok := normaliseShareCode(code)
		if ok {
			err = tx.QueryRow(ctx, `UPDATE document_share SET uses = uses + 1, last_used_at = $3
				WHERE document_id = $1 AND code_hash = $2 AND revoked_at IS NULL AND expires_at > $3 AND uses < max_uses
				RETURNING id`, d.ID, shareHash(d.ID, norm), now).Scan(&shareID)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("use share: %w", err)
			}
			ok = err == nil
		}
		if !ok {
			refusal = ErrShareInvalid
			if _, err := tx.Exec(ctx, `INSERT INTO document_share_failure (document_id, at) VALUES ($1, $2)`, d.ID, now); err != nil {
				return fmt.Errorf("count failure: %w", err)
			}
			return audit.Record(ctx, tx, audit.Event{At: now, Actor: actor, Action: "document.share_refused", SubjectIIN: d.SubjectIIN,
				Object: "document:" + d.ID.String(), Purpose: "a wrong or spent share code", RequestID: requestID})
		}
		return audit.Record(ctx, tx, audit.Event{At: now, Actor: actor, Action: "document.shared_read", SubjectIIN: d.SubjectIIN,
			Object: "document:" + d.ID.String() + " share:" + shareID.String(), Purpose: "shown with the holder's share code", RequestID: requestID})
	})
	if err != nil {
		return Document{}, err
	}
	if refusal != nil {
		return Document{}, refusal
	}
	return d, nil
}

// Facts are what anyone may learn of a document by its id (the QR code on
// it): whether it is genuine and current, its kind, title, issuer and date;
// nothing of the person it is about.
type Facts struct {
	ID       uuid.UUID
	Number   string
	Kind     string
	Title    i18n.Text
	Issuer   string
	IssuedAt time.Time
	// Valid: the platform holds the document and its signature verifies
	// with the issuer's key (a retired key still verifies what it signed).
	Valid bool
}

// PublicFacts returns the non-personal facts of a document; ErrNotFound if
// there is no such document. Not audited: nothing personal is read out.
func (s *Store) PublicFacts(ctx context.Context, id uuid.UUID) (Facts, error) {
	d, err := s.Get(ctx, id)
	if err != nil {
		return Facts{}, err
	}
	f := Facts{ID: d.ID, Number: d.Number, Kind: d.Kind, Issuer: d.Issuer, IssuedAt: d.IssuedAt}
	var fields struct {
		Title i18n.Text `json:"title"`
	}
	_ = json.Unmarshal(d.Fields, &fields) // a document without a title shows its kind
	f.Title = fields.Title
	v, err := s.Verify(ctx, d.JWS)
	if err != nil {
		return Facts{}, err
	}
	f.Valid = v.Valid && v.Registered
	return f, nil
}

// ListBySubject returns the documents about subjectIIN, newest first, and
// audits the read (document.list) in the same transaction, as Read does.
func (s *Store) ListBySubject(ctx context.Context, subjectIIN, actor, requestID string, limit int) ([]Document, error) {
	var out []Document
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, selectDocument+` WHERE subject_iin = $1 ORDER BY issued_at DESC, id DESC LIMIT $2`, subjectIIN, limit)
		if err != nil {
			return fmt.Errorf("list documents: %w", err)
		}
		if out, err = pgx.CollectRows(rows, scanDocument); err != nil {
			return fmt.Errorf("list documents: %w", err)
		}
		return audit.Record(ctx, tx, audit.Event{At: s.clock.Now(), Actor: actor, Action: "document.list", SubjectIIN: subjectIIN,
			Object: fmt.Sprintf("documents:%d", len(out)), Purpose: "document holder view", RequestID: requestID})
	})
	return out, err
}
