package identity

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/agency"
	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/web"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the identity capability's part of the database.
func Schema() pg.Schema { return pg.NewSchema("identity", migrations) }

// Prefix starts every access token, so tokens are recognisable (to people,
// secret scanners and the middleware) and told from other bearer values.
const Prefix = "oq_"

// tokenBytes is how much randomness a token carries.
const tokenBytes = 32

// tokenLen is the length of a token: the prefix and 32 bytes in unpadded
// base64url.
var tokenLen = len(Prefix) + base64.RawURLEncoding.EncodedLen(tokenBytes)

// The bounds of a token's lifetime.
const (
	MinTTL = time.Minute
	MaxTTL = 90 * 24 * time.Hour
)

// CacheTTL is how long a resolved token is kept in memory: a revoked token
// may still be accepted this long by a node that resolved it just before.
const CacheTTL = 10 * time.Second

// cacheMax bounds the number of tokens kept in memory.
const cacheMax = 10000

// ErrInvalid matches errors of Issue about what was asked: a principal, a
// lifetime or a note that cannot have a token.
var ErrInvalid = errors.New("invalid token request")

// ErrNotFound means no token has the id.
var ErrNotFound = errors.New("access token not found")

// agencies is what issuing needs of internal/agency.
type agencies interface {
	Get(ctx context.Context, id string) (agency.Agency, error)
}

// Tokens issues, resolves and revokes access tokens.
type Tokens struct {
	pool     *pgxpool.Pool
	clk      clock.Clock
	agencies agencies

	mu    sync.Mutex
	cache map[digest]cached
}

// digest is the SHA-256 of a token: as secret as the token itself within the
// platform, so it never prints.
type digest [sha256.Size]byte

func (digest) String() string   { return "[token digest]" }
func (digest) GoString() string { return "[token digest]" }

type cached struct {
	id    string
	p     Principal
	until time.Time // the sooner of the cache's bound and the token's expiry
}

// NewTokens returns the token store on pool; clk tells the time tokens
// expire by.
func NewTokens(pool *pgxpool.Pool, clk clock.Clock) *Tokens {
	return &Tokens{pool: pool, clk: clk, agencies: agency.NewStore(pool), cache: map[digest]cached{}}
}

// String and GoString keep what the store holds in memory out of any output.
func (t *Tokens) String() string   { return "identity.Tokens" }
func (t *Tokens) GoString() string { return "identity.Tokens" }

// LogValue keeps what the store holds in memory out of logs.
func (t *Tokens) LogValue() slog.Value { return slog.StringValue("identity.Tokens") }

var plainID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// check validates p for a token and returns it in its stored form.
func (t *Tokens) check(ctx context.Context, p Principal) (Principal, error) {
	return checkPrincipal(ctx, t.agencies, p)
}

// checkPrincipal validates p and returns it in its stored form: a citizen's
// IIN normalised, roles sorted and deduplicated, an officer's agency and
// roles existing.
func checkPrincipal(ctx context.Context, agencies agencies, p Principal) (Principal, error) {
	if err := checkText("name", p.Name, 200); err != nil {
		return Principal{}, err
	}
	switch p.Kind {
	case Citizen:
		n, err := iin.Parse(p.Subject)
		if err != nil {
			var e *iin.Error
			errors.As(err, &e)
			return Principal{}, fmt.Errorf("%w: a citizen's subject must be a valid IIN (%s)", ErrInvalid, e.Code)
		}
		p.Subject = n.String()
	case Officer, System:
		if !plainID.MatchString(p.Subject) {
			return Principal{}, fmt.Errorf("%w: %s id %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid, p.Kind, p.Subject)
		}
	default:
		return Principal{}, fmt.Errorf("%w: kind %q: use citizen, officer or system", ErrInvalid, p.Kind)
	}
	if p.Kind == System {
		if p.Agency != "" {
			return Principal{}, fmt.Errorf("%w: only officers have an agency", ErrInvalid)
		}
		for _, r := range p.Roles {
			if !slices.Contains(SystemScopes, r) {
				return Principal{}, fmt.Errorf("%w: a system's role %q is not one of %s", ErrInvalid, r, strings.Join(SystemScopes, ", "))
			}
		}
		p.Roles = slices.Compact(slices.Sorted(slices.Values(p.Roles)))
		return p, nil
	}
	if p.Kind != Officer {
		if p.Agency != "" || len(p.Roles) > 0 {
			return Principal{}, fmt.Errorf("%w: only officers and systems have roles, and only officers an agency", ErrInvalid)
		}
		p.Roles = nil
		return p, nil
	}
	if p.Agency == "" || len(p.Roles) == 0 {
		return Principal{}, fmt.Errorf("%w: an officer needs an agency and at least one role", ErrInvalid)
	}
	a, err := agencies.Get(ctx, p.Agency)
	if errors.Is(err, agency.ErrNotFound) {
		return Principal{}, fmt.Errorf("%w: agency %q does not exist", ErrInvalid, p.Agency)
	}
	if err != nil {
		return Principal{}, err
	}
	roles := slices.Clone(p.Roles)
	slices.Sort(roles)
	roles = slices.Compact(roles)
	for _, r := range roles {
		if !slices.Contains(a.Roles, r) {
			return Principal{}, fmt.Errorf("%w: agency %q has no role %q (its roles: %s)", ErrInvalid, p.Agency, r, strings.Join(a.Roles, ", "))
		}
	}
	p.Roles = roles
	return p, nil
}

// checkText refuses text that is too long or holds control characters.
func checkText(what, s string, max int) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return fmt.Errorf("%w: %s: at most %d characters of valid UTF-8", ErrInvalid, what, max)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("%w: %s: no control characters", ErrInvalid, what)
	}
	return nil
}

// Issue creates a token for p valid for ttl (MinTTL to MaxTTL). The token is
// returned once and never stored: only its SHA-256 is. id names the token
// for Revoke. An officer's agency must exist and have each of the roles; a
// citizen's subject must be a valid IIN.
func (t *Tokens) Issue(ctx context.Context, p Principal, ttl time.Duration, note string) (token string, id string, err error) {
	if ttl < MinTTL || ttl > MaxTTL {
		return "", "", fmt.Errorf("%w: lifetime %s: must be between 1m and 90 days (2160h)", ErrInvalid, ttl)
	}
	if err := checkText("note", note, 500); err != nil {
		return "", "", err
	}
	p, err = t.check(ctx, p)
	if err != nil {
		return "", "", err
	}
	var raw [tokenBytes]byte
	rand.Read(raw[:]) // never fails: crypto/rand crashes the program instead
	token = Prefix + base64.RawURLEncoding.EncodeToString(raw[:])
	uid, err := uuid.NewV7()
	if err != nil {
		return "", "", fmt.Errorf("issue token: %w", err)
	}
	h := hash(token)
	now := t.clk.Now()
	err = pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO access_token (id, hash, kind, subject, name, agency, roles, note, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, nullif($6, ''), $7, $8, $9, $10)`,
			uid, h[:], string(p.Kind), p.Subject, p.Name, p.Agency, append([]string{}, p.Roles...), note, now, now.Add(ttl))
		if err != nil {
			return err
		}
		// Every token issued is on the audit trail: for whom, which (by
		// id, never the token), until when.
		ev := audit.Event{At: now, Actor: "system:identity", Action: "identity.token.issued", Object: "access_token:" + uid.String(),
			Purpose: cmp.Or(note, "access token") + " (until " + now.Add(ttl).UTC().Format(time.RFC3339) + ")"}
		if p.Kind == Citizen {
			ev.SubjectIIN = p.Subject
		} else {
			ev.Object += " for " + p.Actor()
		}
		return audit.Record(ctx, tx, ev)
	})
	if err != nil {
		return "", "", fmt.Errorf("issue token: %w", err)
	}
	return token, uid.String(), nil
}

func hash(token string) digest { return sha256.Sum256([]byte(token)) }

// wellFormed reports whether s looks like a token at all, so that garbage
// never reaches the database.
func wellFormed(s string) bool {
	if len(s) != tokenLen || !strings.HasPrefix(s, Prefix) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s[len(Prefix):])
	return err == nil
}

// Resolve returns the principal of a valid token: known, not expired, not
// revoked. ok is false for any other token. A token resolved in the last
// CacheTTL is answered from memory.
//
// Tokens are looked up by their SHA-256 (in memory and in the database), so
// how long a lookup takes tells nothing useful about any token.
func (t *Tokens) Resolve(ctx context.Context, token string) (p Principal, ok bool, err error) {
	if !wellFormed(token) {
		return Principal{}, false, nil
	}
	h := hash(token)
	now := t.clk.Now()
	t.mu.Lock()
	c, hit := t.cache[h]
	t.mu.Unlock()
	if hit && now.Before(c.until) {
		return c.p.clone(), true, nil
	}
	var id uuid.UUID
	var kind string
	var expires time.Time
	err = t.pool.QueryRow(ctx, `
		SELECT id, kind, subject, name, coalesce(agency, ''), roles, expires_at
		FROM access_token WHERE hash = $1 AND revoked_at IS NULL AND expires_at > $2`, h[:], now).
		Scan(&id, &kind, &p.Subject, &p.Name, &p.Agency, &p.Roles, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		if hit {
			t.mu.Lock()
			delete(t.cache, h)
			t.mu.Unlock()
		}
		return Principal{}, false, nil
	}
	if err != nil {
		return Principal{}, false, fmt.Errorf("resolve token: %w", err)
	}
	p.Kind = Kind(kind)
	if len(p.Roles) == 0 {
		p.Roles = nil
	}
	until := now.Add(CacheTTL)
	if expires.Before(until) {
		until = expires
	}
	t.remember(h, cached{id: id.String(), p: p.clone(), until: until}, now)
	return p, true, nil
}

// remember caches c, keeping the cache within cacheMax entries: expired ones
// go first, then arbitrary ones.
func (t *Tokens) remember(h digest, c cached, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.cache) >= cacheMax {
		for k, v := range t.cache {
			if !now.Before(v.until) {
				delete(t.cache, k)
			}
		}
		for k := range t.cache {
			if len(t.cache) < cacheMax {
				break
			}
			delete(t.cache, k)
		}
	}
	t.cache[h] = c
}

// Revoke ends the token with id at once on this node, and within CacheTTL on
// every other. Revoking a revoked or expired token changes nothing.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	uid, err := uuid.Parse(id)
	if err != nil {
		return fmt.Errorf("revoke token %q: %w", id, ErrNotFound)
	}
	tag, err := t.pool.Exec(ctx, `UPDATE access_token SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1`, uid, t.clk.Now())
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke token %s: %w", id, ErrNotFound)
	}
	t.mu.Lock()
	for k, v := range t.cache {
		if v.id == uid.String() {
			delete(t.cache, k)
		}
	}
	t.mu.Unlock()
	return nil
}

// Middleware resolves "Authorization: Bearer oq_..." into the request's
// context ([FromContext], [Require]). A request without the header goes on
// anonymous; a bearer value without the "oq_" prefix is left to other guards
// (the administrative token). An oq_ token that does not resolve is answered
// 401 auth.token_invalid: a client with a stale token learns so at once
// instead of being served as anonymous.
func (t *Tokens) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		value = strings.TrimSpace(value)
		if !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(value, Prefix) {
			next.ServeHTTP(w, r)
			return
		}
		p, ok, err := t.Resolve(r.Context(), value)
		if err != nil {
			web.Fail(w, r, apierr.Wrap(apierr.Unavailable, err))
			return
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			web.Fail(w, r, apierr.New(apierr.TokenInvalid))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}
