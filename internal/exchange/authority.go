package exchange

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/exchange/catalogue"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the central authority's part of the database.
func Schema() pg.Schema { return pg.NewSchema("exchange", migrations) }

// EnrolmentTTL is how long an enrolment token is valid.
const EnrolmentTTL = 24 * time.Hour

// CertValidity is the lifetime of a gateway certificate.
const CertValidity = 365 * 24 * time.Hour

// Authority is the central authority.
type Authority struct {
	pool     *pgxpool.Pool
	clock    clock.Clock
	instance string

	mu   sync.Mutex
	key  ed25519.PrivateKey
	cert *x509.Certificate
}

// New returns the authority of the X-Road instance (e.g. "KZ").
func New(pool *pgxpool.Pool, clk clock.Clock, instance string) *Authority {
	return &Authority{pool: pool, clock: clk, instance: instance}
}

// Instance is the instance code.
func (a *Authority) Instance() string { return a.instance }

// CA returns the CA certificate and key, creating them on first use.
func (a *Authority) CA(ctx context.Context) (*x509.Certificate, ed25519.PrivateKey, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cert != nil {
		return a.cert, a.key, nil
	}
	var keyB, certB []byte
	err := a.pool.QueryRow(ctx, `SELECT key, cert FROM exchange_ca WHERE id = 1`).Scan(&keyB, &certB)
	if errors.Is(err, pgx.ErrNoRows) {
		pub, key, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, nil, gerr
		}
		now := a.clock.Now()
		tmpl := &x509.Certificate{
			SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "Ortaq exchange CA " + a.instance, Organization: []string{"Ortaq"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(20 * 365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		}
		der, cerr := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
		if cerr != nil {
			return nil, nil, cerr
		}
		// Two centres starting at once: the second one reads the first's key.
		if _, err := a.pool.Exec(ctx, `INSERT INTO exchange_ca (id, key, cert) VALUES (1, $1, $2) ON CONFLICT DO NOTHING`, []byte(key.Seed()), der); err != nil {
			return nil, nil, fmt.Errorf("store CA: %w", err)
		}
		err = a.pool.QueryRow(ctx, `SELECT key, cert FROM exchange_ca WHERE id = 1`).Scan(&keyB, &certB)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load CA: %w", err)
	}
	cert, err := x509.ParseCertificate(certB)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	a.key, a.cert = ed25519.NewKeyFromSeed(keyB), cert
	return a.cert, a.key, nil
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

func fieldErr(path string, code apierr.Code) error {
	return apierr.New(apierr.Validation, apierr.FieldError{Path: path, Code: code})
}

func (a *Authority) record(ctx context.Context, tx pgx.Tx, actor, action, object string) error {
	return audit.Record(ctx, tx, audit.Event{At: a.clock.Now(), Actor: actor, Action: action, Object: object, Purpose: "exchange administration"})
}

// parseID parses an identifier field of the own instance.
func (a *Authority) parseID(field, s string, subsystem bool) (xroad.ClientID, error) {
	var id xroad.ClientID
	var err error
	if subsystem {
		id, err = xroad.ParseSubsystem(s)
	} else {
		id, err = xroad.ParseClient(s)
		if err == nil && id.Subsystem != "" {
			err = errors.New("member expected")
		}
	}
	if s == "" {
		return id, fieldErr(field, apierr.FieldRequired)
	}
	if err != nil {
		return id, fieldErr(field, apierr.FieldFormat)
	}
	if id.Instance != a.instance {
		return id, fieldErr(field, apierr.FieldOneOf)
	}
	return id, nil
}

// AddMember registers a member.
func (a *Authority) AddMember(ctx context.Context, m catalogue.Member, actor string) error {
	if !slices.Contains(xroad.MemberClasses, m.ID.Class) {
		return fieldErr("/class", apierr.FieldOneOf)
	}
	if err := xroad.CheckPart(m.ID.Member); err != nil {
		return fieldErr("/code", apierr.FieldFormat)
	}
	if m.Name == "" {
		return fieldErr("/name", apierr.FieldRequired)
	}
	return pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO exchange_member (class, code, name) VALUES ($1, $2, $3)`, m.ID.Class, m.ID.Member, m.Name)
		if pg.IsUniqueViolation(err, "") {
			return apierr.New(apierr.ExchangeConflict)
		}
		if err != nil {
			return err
		}
		return a.record(ctx, tx, actor, "exchange.member.add", m.ID.String())
	})
}

// AddSubsystem registers a subsystem of an existing member.
func (a *Authority) AddSubsystem(ctx context.Context, s catalogue.Subsystem, actor string) error {
	return pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		if err := memberExists(ctx, tx, s.ID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO exchange_subsystem (class, code, subsystem, name) VALUES ($1, $2, $3, $4)`,
			s.ID.Class, s.ID.Member, s.ID.Subsystem, s.Name)
		if pg.IsUniqueViolation(err, "") {
			return apierr.New(apierr.ExchangeConflict)
		}
		if err != nil {
			return err
		}
		return a.record(ctx, tx, actor, "exchange.subsystem.add", s.ID.String())
	})
}

func memberExists(ctx context.Context, tx pgx.Tx, id xroad.ClientID) error {
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM exchange_member WHERE class = $1 AND code = $2)`, id.Class, id.Member).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return apierr.New(apierr.ExchangeMemberNotFound)
	}
	return nil
}

// PutService registers or updates a service of an existing subsystem.
func (a *Authority) PutService(ctx context.Context, s catalogue.Service, actor string) error {
	if s.OpenAPI != nil && !json.Valid(s.OpenAPI) {
		return fieldErr("/openapi", apierr.FieldFormat)
	}
	return pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM exchange_subsystem WHERE class = $1 AND code = $2 AND subsystem = $3)`,
			s.ID.Class, s.ID.Member, s.ID.ClientID.Subsystem).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return apierr.New(apierr.ExchangeSubsystemNotFound)
		}
		var doc any
		if len(s.OpenAPI) > 0 {
			doc = string(s.OpenAPI)
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO exchange_service (class, code, subsystem, service, title, url, openapi, personal_data)
			VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
			ON CONFLICT (class, code, subsystem, service) DO UPDATE
			SET title = excluded.title, url = excluded.url, openapi = excluded.openapi, personal_data = excluded.personal_data`,
			s.ID.Class, s.ID.Member, s.ID.ClientID.Subsystem, s.ID.Code, s.Title, s.URL, doc, s.PersonalData)
		if err != nil {
			return err
		}
		return a.record(ctx, tx, actor, "exchange.service.put", s.ID.String())
	})
}

// Grant adds an access right.
func (a *Authority) Grant(ctx context.Context, r catalogue.Access, actor string) error {
	return pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM exchange_subsystem WHERE class = $1 AND code = $2 AND subsystem = $3)`,
			r.Client.Class, r.Client.Member, r.Client.Subsystem).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return apierr.New(apierr.ExchangeSubsystemNotFound)
		}
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM exchange_service WHERE class = $1 AND code = $2 AND subsystem = $3 AND service = $4)`,
			r.Service.Class, r.Service.Member, r.Service.ClientID.Subsystem, r.Service.Code).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return apierr.New(apierr.ExchangeServiceNotFound)
		}
		_, err := tx.Exec(ctx, `INSERT INTO exchange_access (client, service, method, path) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			r.Client.String(), r.Service.String(), cmpOr(r.Method, "*"), cmpOr(r.Path, "*"))
		if err != nil {
			return err
		}
		return a.record(ctx, tx, actor, "exchange.access.grant", r.Client.String()+" -> "+r.Service.String())
	})
}

// Revoke removes an access right; it reports whether one was there.
func (a *Authority) Revoke(ctx context.Context, r catalogue.Access, actor string) error {
	return pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM exchange_access WHERE client = $1 AND service = $2 AND method = $3 AND path = $4`,
			r.Client.String(), r.Service.String(), cmpOr(r.Method, "*"), cmpOr(r.Path, "*"))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return apierr.New(apierr.ExchangeAccessNotFound)
		}
		return a.record(ctx, tx, actor, "exchange.access.revoke", r.Client.String()+" -> "+r.Service.String())
	})
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// NewEnrolmentToken creates a one-time token for member's gateway.
func (a *Authority) NewEnrolmentToken(ctx context.Context, member xroad.ClientID, actor string) (string, time.Time, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", time.Time{}, err
	}
	token := "oqe_" + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(token))
	expires := a.clock.Now().Add(EnrolmentTTL)
	err := pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		if err := memberExists(ctx, tx, member); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO exchange_enrolment (token_hash, class, code, expires_at) VALUES ($1, $2, $3, $4)`,
			sum[:], member.Class, member.Member, expires); err != nil {
			return err
		}
		return a.record(ctx, tx, actor, "exchange.enrolment.token", member.String())
	})
	return token, expires, err
}

// Enrolment is what a gateway gets back.
type Enrolment struct {
	Member      string `json:"member"`
	Serial      string `json:"serial"`
	Certificate []byte `json:"certificate"` // DER
	CA          []byte `json:"ca"`          // DER
}

// Enrol spends a token: it certifies the CSR's Ed25519 key for the token's
// member, and lists the gateway at address in the catalogue.
func (a *Authority) Enrol(ctx context.Context, token string, csrDER []byte, address string) (Enrolment, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil || csr.CheckSignature() != nil {
		return Enrolment{}, fieldErr("/csr", apierr.FieldFormat)
	}
	pub, ok := csr.PublicKey.(ed25519.PublicKey)
	if !ok {
		return Enrolment{}, fieldErr("/csr", apierr.FieldOneOf)
	}
	if address == "" {
		return Enrolment{}, fieldErr("/address", apierr.FieldRequired)
	}
	ca, caKey, err := a.CA(ctx)
	if err != nil {
		return Enrolment{}, err
	}
	sum := sha256.Sum256([]byte(token))
	now := a.clock.Now()
	var out Enrolment
	err = pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		var class, code string
		err := tx.QueryRow(ctx, `
			UPDATE exchange_enrolment SET used_at = $2
			WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
			RETURNING class, code`, sum[:], now).Scan(&class, &code)
		if errors.Is(err, pgx.ErrNoRows) {
			return apierr.New(apierr.ExchangeEnrolmentInvalid)
		}
		if err != nil {
			return err
		}
		member := xroad.ClientID{Instance: a.instance, Class: class, Member: code}
		serial := randomSerial()
		tmpl := &x509.Certificate{
			SerialNumber: serial, Subject: pkix.Name{CommonName: member.String(), Organization: []string{member.String()}},
			NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(CertValidity),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
		if err != nil {
			return err
		}
		out = Enrolment{Member: member.String(), Serial: hex.EncodeToString(serial.Bytes()), Certificate: der, CA: ca.Raw}
		if _, err := tx.Exec(ctx, `INSERT INTO exchange_certificate (serial, class, code, address, cert, issued_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			out.Serial, class, code, address, der, now); err != nil {
			return err
		}
		return a.record(ctx, tx, "gateway:"+member.String(), "exchange.gateway.enrol", "certificate:"+out.Serial)
	})
	return out, err
}

// RevokeCertificate revokes a gateway certificate.
func (a *Authority) RevokeCertificate(ctx context.Context, serial, actor string) error {
	return pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE exchange_certificate SET revoked_at = coalesce(revoked_at, $2) WHERE serial = $1`, serial, a.clock.Now())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return apierr.New(apierr.ExchangeCertificateNotFound)
		}
		return a.record(ctx, tx, actor, "exchange.certificate.revoke", "certificate:"+serial)
	})
}

// Snapshot reads the current catalogue.
func (a *Authority) Snapshot(ctx context.Context) (*catalogue.Catalogue, error) {
	c := &catalogue.Catalogue{Instance: a.instance, IssuedAt: a.clock.Now()}
	id := func(class, code, sub string) xroad.ClientID {
		return xroad.ClientID{Instance: a.instance, Class: class, Member: code, Subsystem: sub}
	}
	err := pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT class, code, name FROM exchange_member ORDER BY class, code`)
		var err error
		c.Members, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalogue.Member, error) {
			var class, code, name string
			err := r.Scan(&class, &code, &name)
			return catalogue.Member{ID: id(class, code, ""), Name: name}, err
		})
		if err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT class, code, subsystem, name FROM exchange_subsystem ORDER BY 1, 2, 3`)
		c.Subsystems, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalogue.Subsystem, error) {
			var class, code, sub, name string
			err := r.Scan(&class, &code, &sub, &name)
			return catalogue.Subsystem{ID: id(class, code, sub), Name: name}, err
		})
		if err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT class, code, subsystem, service, title, url, coalesce(openapi::text, ''), personal_data FROM exchange_service ORDER BY 1, 2, 3, 4`)
		c.Services, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalogue.Service, error) {
			var class, code, sub, svc, doc string
			var s catalogue.Service
			err := r.Scan(&class, &code, &sub, &svc, &s.Title, &s.URL, &doc, &s.PersonalData)
			s.ID = xroad.ServiceID{ClientID: id(class, code, sub), Code: svc}
			if doc != "" {
				s.OpenAPI = json.RawMessage(doc)
			}
			return s, err
		})
		if err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT client, service, method, path FROM exchange_access ORDER BY 1, 2, 3, 4`)
		c.Access, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalogue.Access, error) {
			var cl, svc string
			var acc catalogue.Access
			if err := r.Scan(&cl, &svc, &acc.Method, &acc.Path); err != nil {
				return acc, err
			}
			acc.Client, _ = xroad.ParseSubsystem(cl)
			acc.Service, _ = xroad.ParseService(svc)
			return acc, nil
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT serial, class, code, address, cert, revoked_at IS NOT NULL FROM exchange_certificate ORDER BY issued_at, serial`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g catalogue.Gateway
			var class, code string
			var revoked bool
			if err := rows.Scan(&g.Serial, &class, &code, &g.Address, &g.Cert, &revoked); err != nil {
				return err
			}
			g.Member = id(class, code, "")
			c.Gateways = append(c.Gateways, g)
			if revoked {
				c.Revoked = append(c.Revoked, g.Serial)
			}
		}
		return rows.Err()
	})
	return c, err
}

// SignedSnapshot is the current catalogue, signed by the CA.
func (a *Authority) SignedSnapshot(ctx context.Context) (catalogue.Envelope, error) {
	_, key, err := a.CA(ctx)
	if err != nil {
		return catalogue.Envelope{}, err
	}
	c, err := a.Snapshot(ctx)
	if err != nil {
		return catalogue.Envelope{}, err
	}
	return catalogue.Sign(c, key)
}

// Timestamp signs digest with the time now: the time-stamping service that
// gateways use for their message log seals (the centre's clock and CA key
// instead of a node's own word).
func (a *Authority) Timestamp(ctx context.Context, digest []byte) (int64, []byte, error) {
	if len(digest) != sha256.Size {
		return 0, nil, fieldErr("/digest", apierr.FieldFormat)
	}
	_, key, err := a.CA(ctx)
	if err != nil {
		return 0, nil, err
	}
	at := a.clock.Now().UnixMicro()
	return at, ed25519.Sign(key, catalogue.TimestampMessage(digest, at)), nil
}
