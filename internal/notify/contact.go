package notify

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
)

// Contact is where a citizen wants messages. Empty fields are not set: no
// SMS without a phone, no e-mail without an address, Kazakh and Russian
// without a language.
type Contact struct {
	Phone     string    `json:"phone,omitempty"`    // +7XXXXXXXXXX
	Email     string    `json:"email,omitempty"`    // a bare address, no display name
	Language  string    `json:"language,omitempty"` // kk, ru or en
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

var phoneForm = regexp.MustCompile(`^\+7[0-9]{10}$`)

// Validate names each wrong field: /phone phone.format, /email
// email.format, /language one_of.
func (c Contact) Validate() []apierr.FieldError {
	var out []apierr.FieldError
	if c.Phone != "" && !phoneForm.MatchString(c.Phone) {
		out = append(out, apierr.FieldError{Path: "/phone", Code: apierr.FieldPhoneFormat})
	}
	if c.Email != "" {
		a, err := mail.ParseAddress(c.Email)
		if err != nil || a.Address != c.Email || a.Name != "" || len(c.Email) > 254 {
			out = append(out, apierr.FieldError{Path: "/email", Code: apierr.FieldEmailFormat})
		}
	}
	switch c.Language {
	case "", "kk", "ru", "en":
	default:
		out = append(out, apierr.FieldError{Path: "/language", Code: apierr.FieldOneOf})
	}
	return out
}

func readContact(ctx context.Context, tx pgx.Tx, iin string) (c Contact, found bool, err error) {
	var phone, email, lang *string
	err = tx.QueryRow(ctx, `SELECT phone, email, language, updated_at FROM notify_contact WHERE iin = $1`, iin).
		Scan(&phone, &email, &lang, &c.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Contact{}, false, nil
	}
	if err != nil {
		return Contact{}, false, fmt.Errorf("read contact: %w", err)
	}
	for _, f := range []struct{ dst, src *string }{{&c.Phone, phone}, {&c.Email, email}, {&c.Language, lang}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	return c, true, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// SetContact replaces the citizen's contact (validated; a 422 names each
// wrong field) and audits the write in its transaction. actor is who
// writes ("citizen:<iin>").
func (n *Notifier) SetContact(ctx context.Context, iin string, c Contact, actor, requestID string) (Contact, error) {
	if fields := c.Validate(); len(fields) > 0 {
		return Contact{}, apierr.New(apierr.Validation, fields...)
	}
	c.UpdatedAt = n.clock.Now()
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO notify_contact (iin, phone, email, language, updated_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (iin) DO UPDATE SET phone = excluded.phone, email = excluded.email, language = excluded.language, updated_at = excluded.updated_at`,
			iin, nullable(c.Phone), nullable(c.Email), nullable(c.Language), c.UpdatedAt); err != nil {
			return fmt.Errorf("write contact: %w", err)
		}
		return audit.Record(ctx, tx, audit.Event{At: c.UpdatedAt, Actor: actor, Action: "notify.contact.write",
			SubjectIIN: iin, Object: "notify_contact:" + iin, Purpose: "the citizen's notification contact", RequestID: requestID})
	})
	if err != nil {
		return Contact{}, err
	}
	return c, nil
}

// Contact returns the citizen's contact (found false when none is set) and
// audits the read.
func (n *Notifier) Contact(ctx context.Context, iin, actor, requestID string) (c Contact, found bool, err error) {
	err = pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		if c, found, err = readContact(ctx, tx, iin); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: n.clock.Now(), Actor: actor, Action: "notify.contact.read",
			SubjectIIN: iin, Object: "notify_contact:" + iin, Purpose: "the citizen's notification contact", RequestID: requestID})
	})
	return c, found, err
}
