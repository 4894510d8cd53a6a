package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/agency"
	"github.com/ortaq/ortaq/internal/clock"
)

// SecretPrefix starts every client secret of an organisation's system.
const SecretPrefix = "oqs_"

// Account is someone who signs in: a citizen or an officer with a password
// and a phone for the one-time code, or an organisation's system with a
// client secret.
type Account struct {
	Principal
	// Phone receives the one-time codes (+7XXXXXXXXXX); people only.
	Phone string
}

// LogValue keeps the phone and a citizen's IIN out of logs.
func (a Account) LogValue() slog.Value { return a.Principal.LogValue() }

// Accounts keeps the accounts that sign in.
type Accounts struct {
	pool     *pgxpool.Pool
	clk      clock.Clock
	agencies agencies
}

// NewAccounts returns the account store on pool.
func NewAccounts(pool *pgxpool.Pool, clk clock.Clock) *Accounts {
	return &Accounts{pool: pool, clk: clk, agencies: agency.NewStore(pool)}
}

var phonePattern = regexp.MustCompile(`^\+7[0-9]{10}$`)

// SetPerson creates or replaces the account of a citizen or an officer:
// who (an officer's agency must exist and have each role), the phone the
// one-time code goes to, and the password (8 to 128 characters), kept as an
// argon2id hash. Errors match ErrInvalid for what cannot be an account.
func (a *Accounts) SetPerson(ctx context.Context, p Principal, phone, password string) error {
	if p.Kind != Citizen && p.Kind != Officer {
		return fmt.Errorf("%w: kind %q: people are citizens or officers", ErrInvalid, p.Kind)
	}
	p, err := checkPrincipal(ctx, a.agencies, p)
	if err != nil {
		return err
	}
	if !phonePattern.MatchString(phone) {
		return fmt.Errorf("%w: phone: use +7 and ten digits", ErrInvalid)
	}
	if n := utf8.RuneCountInString(password); !utf8.ValidString(password) || n < MinPasswordLen || n > MaxPasswordLen {
		return fmt.Errorf("%w: password: %d to %d characters", ErrInvalid, MinPasswordLen, MaxPasswordLen)
	}
	return a.save(ctx, p, phone, hashPassword(password))
}

// SetClient creates an organisation's system (or gives an existing one a new
// secret) with the platform scopes it may hold, and returns its client
// secret once: only its SHA-256 is kept.
func (a *Accounts) SetClient(ctx context.Context, p Principal) (secret string, err error) {
	if p.Kind != System {
		return "", fmt.Errorf("%w: kind %q: a client is a system", ErrInvalid, p.Kind)
	}
	p, err = checkPrincipal(ctx, a.agencies, p)
	if err != nil {
		return "", err
	}
	var raw [32]byte
	rand.Read(raw[:])
	secret = SecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	return secret, a.save(ctx, p, "", hashSecret(secret))
}

func (a *Accounts) save(ctx context.Context, p Principal, phone, secret string) error {
	now := a.clk.Now()
	_, err := a.pool.Exec(ctx, `
		INSERT INTO identity_account (kind, subject, name, agency, roles, phone, secret, created_at, updated_at)
		VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7, $8, $8)
		ON CONFLICT (kind, subject) DO UPDATE SET name = excluded.name, agency = excluded.agency, roles = excluded.roles,
			phone = excluded.phone, secret = excluded.secret, updated_at = excluded.updated_at, disabled_at = NULL`,
		string(p.Kind), p.Subject, p.Name, p.Agency, append([]string{}, p.Roles...), phone, secret, now)
	if err != nil {
		return fmt.Errorf("save account %s: %w", p.Kind, err)
	}
	return nil
}

// Disable stops the account from signing in (its sessions end with it).
func (a *Accounts) Disable(ctx context.Context, kind Kind, subject string) error {
	tag, err := a.pool.Exec(ctx, `UPDATE identity_account SET disabled_at = coalesce(disabled_at, $3) WHERE kind = $1 AND subject = $2`,
		string(kind), subject, a.clk.Now())
	if err != nil {
		return fmt.Errorf("disable account: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNoAccount
	}
	_, err = a.pool.Exec(ctx, `UPDATE identity_session SET ended_at = $3 WHERE kind = $1 AND subject = $2 AND ended_at IS NULL`,
		string(kind), subject, a.clk.Now())
	return err
}

// ErrNoAccount means no account has the kind and subject.
var ErrNoAccount = errors.New("no such account")

// account returns an enabled account and its stored secret; ErrNoAccount
// when there is none.
func (a *Accounts) account(ctx context.Context, q pgx.Tx, kind Kind, subject string) (Account, string, error) {
	var acc Account
	var secret string
	err := q.QueryRow(ctx, `
		SELECT kind, subject, name, coalesce(agency, ''), roles, phone, secret FROM identity_account
		WHERE kind = $1 AND subject = $2 AND disabled_at IS NULL`, string(kind), subject).
		Scan(&acc.Kind, &acc.Subject, &acc.Name, &acc.Agency, &acc.Roles, &acc.Phone, &secret)
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, "", ErrNoAccount
	}
	if err != nil {
		return Account{}, "", fmt.Errorf("read account: %w", err)
	}
	if len(acc.Roles) == 0 {
		acc.Roles = nil
	}
	return acc, secret, nil
}
