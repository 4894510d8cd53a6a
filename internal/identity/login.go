package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
)

// CodeSender delivers a one-time code to a person's phone (through
// internal/notify's SMS adapter, wired by internal/app). It returns once the
// provider took the message.
type CodeSender interface {
	SendCode(ctx context.Context, to Account, code string, lang i18n.Lang) error
}

// LoginConfig bounds sign-in. Zero fields take the defaults.
type LoginConfig struct {
	// MaxFailures failed sign-ins of one account (or client) within Window
	// lock it for LockFor. Default 5.
	MaxFailures int
	// IPMaxFailures failed sign-ins from one address within Window lock the
	// address for LockFor. Default 20: many people share an address (NAT).
	IPMaxFailures int
	Window        time.Duration // default 15 minutes
	LockFor       time.Duration // default 15 minutes
	CodeTTL       time.Duration // a one-time code's lifetime; default 5 minutes
	CodeAttempts  int           // wrong codes a challenge takes before it ends; default 3
	// CitizensElsewhere: citizens sign in through an external provider
	// ([External]), not with a password here; officers still do.
	CitizensElsewhere bool
}

func (c LoginConfig) withDefaults() LoginConfig {
	if c.MaxFailures <= 0 {
		c.MaxFailures = 5
	}
	if c.IPMaxFailures <= 0 {
		c.IPMaxFailures = 20
	}
	if c.Window <= 0 {
		c.Window = 15 * time.Minute
	}
	if c.LockFor <= 0 {
		c.LockFor = 15 * time.Minute
	}
	if c.CodeTTL <= 0 {
		c.CodeTTL = 5 * time.Minute
	}
	if c.CodeAttempts <= 0 {
		c.CodeAttempts = 3
	}
	return c
}

// Logins signs people in with a password and then a one-time code sent by
// SMS, and authenticates organisations' systems by client secret. Failures
// are counted per account (or client) and per address; too many lock both
// for a while. Every attempt, failure, lock and sign-in is audited.
type Logins struct {
	accounts *Accounts
	sender   CodeSender
	cfg      LoginConfig
}

// NewLogins returns sign-in over accounts, sending codes with sender.
func NewLogins(accounts *Accounts, sender CodeSender, cfg LoginConfig) *Logins {
	return &Logins{accounts: accounts, sender: sender, cfg: cfg.withDefaults()}
}

// Attempt is one step of a sign-in, as a form or API call gives it.
type Attempt struct {
	Kind     Kind   // Citizen or Officer; empty means Citizen
	Subject  string // the IIN or the officer's id
	Password string
	// Challenge and Code finish the sign-in (Finish).
	Challenge string
	Code      string
	IP        string // the caller's address, for the per-address limit
	Lang      i18n.Lang
	RequestID string
}

// Challenge is a sign-in waiting for its one-time code.
type Challenge struct {
	// Handle names the challenge in Finish; secret like a password for
	// the code's lifetime (only its SHA-256 is stored).
	Handle    string
	ExpiresAt time.Time
	// PhoneHint shows where the code went: "+7 *** *** ** 67".
	PhoneHint string
}

// challengeKinds are the people who sign in with a password.
func checkKind(k Kind) (Kind, error) {
	switch k {
	case "", Citizen:
		return Citizen, nil
	case Officer:
		return Officer, nil
	}
	return "", apierr.New(apierr.Validation, apierr.FieldError{Path: "/kind", Code: apierr.FieldOneOf})
}

// Start checks the password and sends a one-time code. Its errors:
// request.validation (a missing field, a malformed IIN), auth.locked,
// auth.login_failed (the same for an unknown account and a wrong password).
func (l *Logins) Start(ctx context.Context, a Attempt) (Challenge, error) {
	kind, err := checkKind(a.Kind)
	if err != nil {
		return Challenge{}, err
	}
	if kind == Citizen && l.cfg.CitizensElsewhere {
		return Challenge{}, apierr.New(apierr.Validation, apierr.FieldError{Path: "/kind", Code: apierr.FieldOneOf})
	}
	subject := strings.TrimSpace(a.Subject)
	var fields []apierr.FieldError
	if subject == "" {
		fields = append(fields, apierr.FieldError{Path: "/subject", Code: apierr.FieldRequired})
	} else if kind == Citizen {
		n, err := iin.Parse(subject)
		if err != nil {
			var e *iin.Error
			errors.As(err, &e)
			fields = append(fields, apierr.FieldError{Path: "/subject", Code: apierr.Code(e.Code)})
		} else {
			subject = n.String()
		}
	} else if !plainID.MatchString(subject) {
		fields = append(fields, apierr.FieldError{Path: "/subject", Code: apierr.FieldFormat})
	}
	if a.Password == "" {
		fields = append(fields, apierr.FieldError{Path: "/password", Code: apierr.FieldRequired})
	} else if len(a.Password) > 4*MaxPasswordLen {
		fields = append(fields, apierr.FieldError{Path: "/password", Code: apierr.FieldTooLong})
	}
	if len(fields) > 0 {
		return Challenge{}, apierr.New(apierr.Validation, fields...)
	}
	now := l.accounts.clk.Now()
	who := throttleKey{account: "account:" + string(kind) + ":" + subject, ip: ipKey(a.IP)}
	ev := loginEvent(kind, subject, a.RequestID, now)

	var acc Account
	var ch Challenge
	var code string
	var outcome error
	err = pgx.BeginFunc(ctx, l.accounts.pool, func(tx pgx.Tx) error {
		if locked, err := l.locked(ctx, tx, now, who); err != nil || locked {
			if err != nil {
				return err
			}
			outcome = apierr.New(apierr.LoginLocked)
			return ev.record(ctx, tx, "identity.login.refused_locked")
		}
		var stored string
		var err error
		acc, stored, err = l.accounts.account(ctx, tx, kind, subject)
		if errors.Is(err, ErrNoAccount) {
			stored = dummyHash()
		} else if err != nil {
			return err
		}
		ok := checkPassword(stored, a.Password) && err == nil
		if !ok {
			outcome = apierr.New(apierr.LoginFailed)
			return l.failed(ctx, tx, now, who, ev, "identity.login.failed")
		}
		ch, code, err = l.newChallenge(ctx, tx, acc, now)
		if err != nil {
			return err
		}
		return ev.record(ctx, tx, "identity.login.code_sent")
	})
	if err != nil {
		return Challenge{}, fmt.Errorf("start sign-in: %w", err)
	}
	if outcome != nil {
		return Challenge{}, outcome
	}
	if err := l.sender.SendCode(ctx, acc, code, a.Lang); err != nil {
		return Challenge{}, apierr.Wrap(apierr.Unavailable, fmt.Errorf("send sign-in code: %w", err))
	}
	return ch, nil
}

// Finish checks the one-time code of a challenge and returns who signed in.
// Its errors: request.validation, auth.challenge_expired (unknown, used,
// expired or out of attempts: start again), auth.code_invalid, auth.locked.
func (l *Logins) Finish(ctx context.Context, a Attempt) (Principal, error) {
	var fields []apierr.FieldError
	if a.Challenge == "" {
		fields = append(fields, apierr.FieldError{Path: "/challenge", Code: apierr.FieldRequired})
	}
	code := strings.TrimSpace(a.Code)
	if code == "" {
		fields = append(fields, apierr.FieldError{Path: "/code", Code: apierr.FieldRequired})
	} else if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		fields = append(fields, apierr.FieldError{Path: "/code", Code: apierr.FieldFormat})
	}
	if len(fields) > 0 {
		return Principal{}, apierr.New(apierr.Validation, fields...)
	}
	now := l.accounts.clk.Now()
	h := sha256.Sum256([]byte(a.Challenge))
	var p Principal
	var outcome error
	err := pgx.BeginFunc(ctx, l.accounts.pool, func(tx pgx.Tx) error {
		var kind, subject string
		var codeHash []byte
		var attempts int
		var expires time.Time
		var used *time.Time
		err := tx.QueryRow(ctx, `SELECT kind, subject, code_hash, attempts, expires_at, used_at FROM identity_challenge WHERE hash = $1 FOR UPDATE`, h[:]).
			Scan(&kind, &subject, &codeHash, &attempts, &expires, &used)
		if errors.Is(err, pgx.ErrNoRows) {
			outcome = apierr.New(apierr.ChallengeExpired, apierr.FieldError{Path: "/challenge", Code: apierr.FieldFormat})
			return nil
		}
		if err != nil {
			return err
		}
		ev := loginEvent(Kind(kind), subject, a.RequestID, now)
		who := throttleKey{account: "account:" + kind + ":" + subject, ip: ipKey(a.IP)}
		if used != nil || !now.Before(expires) || attempts >= l.cfg.CodeAttempts {
			outcome = apierr.New(apierr.ChallengeExpired, apierr.FieldError{Path: "/challenge", Code: apierr.FieldFormat})
			return ev.record(ctx, tx, "identity.login.challenge_expired")
		}
		if locked, err := l.locked(ctx, tx, now, who); err != nil || locked {
			if err != nil {
				return err
			}
			outcome = apierr.New(apierr.LoginLocked)
			return ev.record(ctx, tx, "identity.login.refused_locked")
		}
		want := codeDigest(a.Challenge, code)
		if subtle.ConstantTimeCompare(want[:], codeHash) != 1 {
			outcome = apierr.New(apierr.CodeInvalid, apierr.FieldError{Path: "/code", Code: apierr.FieldFormat})
			if _, err := tx.Exec(ctx, `UPDATE identity_challenge SET attempts = attempts + 1 WHERE hash = $1`, h[:]); err != nil {
				return err
			}
			return l.failed(ctx, tx, now, who, ev, "identity.login.code_failed")
		}
		if _, err := tx.Exec(ctx, `UPDATE identity_challenge SET used_at = $2 WHERE hash = $1`, h[:], now); err != nil {
			return err
		}
		acc, _, err := l.accounts.account(ctx, tx, Kind(kind), subject)
		if errors.Is(err, ErrNoAccount) { // disabled meanwhile
			outcome = apierr.New(apierr.LoginFailed)
			return ev.record(ctx, tx, "identity.login.failed")
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM identity_throttle WHERE key = $1`, who.account); err != nil {
			return err
		}
		p = acc.Principal
		ev.actor = p.Actor()
		return ev.record(ctx, tx, "identity.login")
	})
	if err != nil {
		return Principal{}, fmt.Errorf("finish sign-in: %w", err)
	}
	if outcome != nil {
		return Principal{}, outcome
	}
	return p, nil
}

// dummySecret is compared against for an unknown client.
var dummySecret = hashSecret("no client has this secret")

// Client authenticates an organisation's system by its client id and secret
// (OAuth 2.0 client credentials). Its errors: auth.client_invalid (the same
// for an unknown client and a wrong secret), auth.locked.
func (l *Logins) Client(ctx context.Context, clientID, secret, ip, requestID string) (Principal, error) {
	if clientID == "" || secret == "" || !plainID.MatchString(clientID) || len(secret) > 200 {
		return Principal{}, apierr.New(apierr.ClientInvalid)
	}
	now := l.accounts.clk.Now()
	who := throttleKey{account: "client:" + clientID, ip: ipKey(ip)}
	ev := loginEvent(System, clientID, requestID, now)
	var p Principal
	var outcome error
	err := pgx.BeginFunc(ctx, l.accounts.pool, func(tx pgx.Tx) error {
		if locked, err := l.locked(ctx, tx, now, who); err != nil || locked {
			if err != nil {
				return err
			}
			outcome = apierr.New(apierr.LoginLocked)
			return ev.record(ctx, tx, "identity.client.refused_locked")
		}
		acc, stored, err := l.accounts.account(ctx, tx, System, clientID)
		if errors.Is(err, ErrNoAccount) {
			stored = dummySecret
		} else if err != nil {
			return err
		}
		if !checkSecret(stored, secret) || err != nil {
			outcome = apierr.New(apierr.ClientInvalid)
			return l.failed(ctx, tx, now, who, ev, "identity.client.failed")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM identity_throttle WHERE key = $1`, who.account); err != nil {
			return err
		}
		p = acc.Principal
		ev.actor = p.Actor()
		return ev.record(ctx, tx, "identity.client.authenticated")
	})
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate client: %w", err)
	}
	if outcome != nil {
		return Principal{}, outcome
	}
	return p, nil
}

func (l *Logins) newChallenge(ctx context.Context, tx pgx.Tx, acc Account, now time.Time) (Challenge, string, error) {
	var raw [32]byte
	rand.Read(raw[:])
	handle := base64.RawURLEncoding.EncodeToString(raw[:])
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return Challenge{}, "", err
	}
	code := fmt.Sprintf("%06d", n.Int64())
	h := sha256.Sum256([]byte(handle))
	c := codeDigest(handle, code)
	ch := Challenge{Handle: handle, ExpiresAt: now.Add(l.cfg.CodeTTL), PhoneHint: phoneHint(acc.Phone)}
	_, err = tx.Exec(ctx, `INSERT INTO identity_challenge (hash, kind, subject, code_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		h[:], string(acc.Kind), acc.Subject, c[:], now, ch.ExpiresAt)
	if err != nil {
		return Challenge{}, "", fmt.Errorf("store challenge: %w", err)
	}
	return ch, code, nil
}

// codeDigest is how a code is kept: salted with its challenge's handle,
// which the database does not hold.
func codeDigest(handle, code string) [32]byte {
	return sha256.Sum256([]byte("ortaq sign-in code\x00" + handle + "\x00" + code))
}

func phoneHint(phone string) string {
	if len(phone) < 4 {
		return ""
	}
	return "+7 *** *** ** " + phone[len(phone)-2:]
}

// throttleKey is what failures are counted against.
type throttleKey struct{ account, ip string }

func ipKey(ip string) string {
	if ip == "" {
		return ""
	}
	return "ip:" + ip
}

func (k throttleKey) keys() []string {
	if k.ip == "" {
		return []string{k.account}
	}
	return []string{k.account, k.ip}
}

func (l *Logins) locked(ctx context.Context, tx pgx.Tx, now time.Time, k throttleKey) (bool, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM identity_throttle WHERE key = ANY($1) AND locked_until > $2`, k.keys(), now).Scan(&n)
	return n > 0, err
}

// failed counts a failure against the account and the address, locks each
// that reached its limit, and audits the failure and any lock.
func (l *Logins) failed(ctx context.Context, tx pgx.Tx, now time.Time, k throttleKey, ev loginEventT, action string) error {
	if err := ev.record(ctx, tx, action); err != nil {
		return err
	}
	for _, key := range k.keys() {
		limit := l.cfg.MaxFailures
		if strings.HasPrefix(key, "ip:") {
			limit = l.cfg.IPMaxFailures
		}
		var failures int
		err := tx.QueryRow(ctx, `
			INSERT INTO identity_throttle AS t (key, failures, first_at) VALUES ($1, 1, $2)
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN t.first_at <= $3 THEN 1 ELSE t.failures + 1 END,
				first_at = CASE WHEN t.first_at <= $3 THEN $2 ELSE t.first_at END
			RETURNING failures`, key, now, now.Add(-l.cfg.Window)).Scan(&failures)
		if err != nil {
			return fmt.Errorf("count failure: %w", err)
		}
		if failures < limit {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE identity_throttle SET failures = 0, first_at = $2, locked_until = $3 WHERE key = $1`,
			key, now, now.Add(l.cfg.LockFor)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		lock := ev
		lock.object = key
		if strings.HasPrefix(key, "ip:") {
			lock.subjectIIN = ""
		}
		if err := lock.record(ctx, tx, "identity.login.locked"); err != nil {
			return err
		}
	}
	return nil
}

// loginEventT is the audit event of a sign-in step.
type loginEventT struct {
	at         time.Time
	actor      string
	subjectIIN string
	object     string
	requestID  string
}

func loginEvent(kind Kind, subject, requestID string, now time.Time) loginEventT {
	ev := loginEventT{at: now, actor: "anonymous", object: "account:" + string(kind) + ":" + subject, requestID: requestID}
	if kind == Citizen && len(subject) == 12 && strings.Trim(subject, "0123456789") == "" {
		ev.subjectIIN = subject
	}
	if kind == System {
		ev.object = "client:" + subject
	}
	return ev
}

func (e loginEventT) record(ctx context.Context, tx pgx.Tx, action string) error {
	return audit.Record(ctx, tx, audit.Event{At: e.at, Actor: e.actor, Action: action, SubjectIIN: e.subjectIIN,
		Object: e.object, Purpose: "sign-in", RequestID: e.requestID})
}
