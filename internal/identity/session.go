package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/web"
)

// SessionCookie is the portal's session cookie.
const SessionCookie = "oq_session"

// sessionPrefix starts a session cookie's value.
const sessionPrefix = "oqw_"

// SessionTTL is how long a web session lasts from sign-in.
const SessionTTL = 8 * time.Hour

// How a session's person proved who they are, and the level of assurance
// that gives (recorded on each session, as kz.md §10 asks).
const (
	MethodPasswordSMS = "password+sms"
	LoASubstantial    = "substantial"
)

// Sessions keeps the portal's web sessions: a random cookie value (only
// its SHA-256 stored) standing for the principal who signed in.
type Sessions struct {
	pool *pgxpool.Pool
	clk  clock.Clock
}

// NewSessions returns the session store on pool.
func NewSessions(pool *pgxpool.Pool, clk clock.Clock) *Sessions {
	return &Sessions{pool: pool, clk: clk}
}

// Create starts a session for p (a citizen or an officer who just signed
// in) and returns the cookie's value and its expiry. Audited.
func (s *Sessions) Create(ctx context.Context, p Principal, method, requestID string) (value string, expires time.Time, err error) {
	if p.Kind != Citizen && p.Kind != Officer {
		return "", time.Time{}, fmt.Errorf("%w: sessions are for people", ErrInvalid)
	}
	var raw [32]byte
	rand.Read(raw[:])
	value = sessionPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	h := hash(value)
	now := s.clk.Now()
	expires = now.Add(SessionTTL)
	id, err := uuid.NewV7()
	if err != nil {
		return "", time.Time{}, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO identity_session (id, hash, kind, subject, name, agency, roles, auth_method, loa, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, nullif($6, ''), $7, $8, $9, $10, $11)`,
			id, h[:], string(p.Kind), p.Subject, p.Name, p.Agency, append([]string{}, p.Roles...), method, LoASubstantial, now, expires)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, sessionEvent(p, now, "identity.session.started", id, requestID))
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create session: %w", err)
	}
	return value, expires, nil
}

func sessionEvent(p Principal, now time.Time, action string, id uuid.UUID, requestID string) audit.Event {
	ev := audit.Event{At: now, Actor: p.Actor(), Action: action, Object: "session:" + id.String(), Purpose: "sign-in", RequestID: requestID}
	if p.Kind == Citizen {
		ev.SubjectIIN = p.Subject
	}
	return ev
}

func wellFormedSession(v string) bool {
	if len(v) != len(sessionPrefix)+43 || !strings.HasPrefix(v, sessionPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(v[len(sessionPrefix):])
	return err == nil
}

// Resolve returns the principal of a live session; ok is false otherwise.
func (s *Sessions) Resolve(ctx context.Context, value string) (p Principal, ok bool, err error) {
	if !wellFormedSession(value) {
		return Principal{}, false, nil
	}
	h := hash(value)
	var kind string
	err = s.pool.QueryRow(ctx, `SELECT kind, subject, name, coalesce(agency, ''), roles FROM identity_session
		WHERE hash = $1 AND ended_at IS NULL AND expires_at > $2`, h[:], s.clk.Now()).
		Scan(&kind, &p.Subject, &p.Name, &p.Agency, &p.Roles)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, false, nil
	}
	if err != nil {
		return Principal{}, false, fmt.Errorf("resolve session: %w", err)
	}
	p.Kind = Kind(kind)
	if len(p.Roles) == 0 {
		p.Roles = nil
	}
	return p, true, nil
}

// End ends the session (sign-out); ending an unknown or ended one does
// nothing. Audited.
func (s *Sessions) End(ctx context.Context, value, requestID string) error {
	if !wellFormedSession(value) {
		return nil
	}
	h := hash(value)
	now := s.clk.Now()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id uuid.UUID
		var p Principal
		var kind string
		err := tx.QueryRow(ctx, `UPDATE identity_session SET ended_at = $2 WHERE hash = $1 AND ended_at IS NULL
			RETURNING id, kind, subject`, h[:], now).Scan(&id, &kind, &p.Subject)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("end session: %w", err)
		}
		p.Kind = Kind(kind)
		return audit.Record(ctx, tx, sessionEvent(p, now, "identity.session.ended", id, requestID))
	})
}

// SetCookie gives the browser its session cookie: HttpOnly, Secure over
// TLS, SameSite=Lax (a link from elsewhere arrives signed in; a form posted
// from elsewhere does not).
func SetCookie(w http.ResponseWriter, r *http.Request, value string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: value, Path: "/", Expires: expires,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// ClearCookie removes the session cookie.
func ClearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// Middleware puts the principal of the session cookie into requests for
// pages (not /api/: the API takes bearer tokens only, so no API call is made
// with a browser's ambient credentials). A request that already has a
// principal (a bearer token) keeps it; an unknown or ended session is
// anonymous.
func (s *Sessions) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		if _, ok := FromContext(r.Context()); ok {
			next.ServeHTTP(w, r)
			return
		}
		c, err := r.Cookie(SessionCookie)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		p, ok, err := s.Resolve(r.Context(), c.Value)
		if err != nil {
			web.Fail(w, r, apierr.Wrap(apierr.Unavailable, err))
			return
		}
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}
