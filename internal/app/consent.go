package app

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/registry"
)

// consentItems tells the consent ledger which data items exist: personal
// attributes of the registries of persons ("population.last_name"), and
// the exchange's services ("service:KZ/GOV/200/registry/persons").
type consentItems struct{ p *Platform }

func (c consentItems) KnownItem(ctx context.Context, item string) (bool, error) {
	if svc, ok := strings.CutPrefix(item, "service:"); ok {
		f := strings.Split(svc, "/")
		if len(f) != 5 || f[0] != ExchangeInstance {
			return false, nil
		}
		var found bool
		err := c.p.Consents.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM exchange_service
			WHERE class = $1 AND code = $2 AND subsystem = $3 AND service = $4)`, f[1], f[2], f[3], f[4]).Scan(&found)
		return found, err
	}
	name, attr, ok := strings.Cut(item, ".")
	if !ok {
		return false, nil
	}
	d, ok := c.p.Registries.Definition(name)
	if !ok || d.Subject == "" {
		return false, nil
	}
	a, ok := d.Attr(attr)
	return ok && (a.Personal == registry.PDPersonal || a.Personal == registry.PDSensitive), nil
}

// registryConsent lets registry readers without a legal basis read with
// a consent.
type registryConsent struct{ l *consent.Ledger }

func (r registryConsent) CheckRead(ctx context.Context, tx pgx.Tx, q registry.ConsentQuery) (string, error) {
	requester, ok := consent.Requester(q.Reader)
	if !ok {
		return "", consent.ErrNotFound
	}
	b, err := r.l.Check(ctx, tx, consent.Need{Subject: q.Subject, Requester: requester, Items: q.Items, Purpose: q.Purpose,
		Actor: q.Reader.Actor(), Channel: "registry", Object: q.Object, RequestID: q.RequestID})
	if err != nil {
		return "", err
	}
	return b.ConsentID.String(), nil
}

func (registryConsent) ExplainUsage(e audit.Event) (registry.UsageDetail, bool) {
	u, ok := consent.ParseObject(e.Object)
	return registry.UsageDetail{ConsentID: u.ConsentID, Items: u.Items, Channel: u.Channel, Denied: u.Denied}, ok
}

// engineConsents lets the engine, built before the ledger, check consents.
type engineConsents struct{ p *Platform }

func (c engineConsents) Check(ctx context.Context, tx pgx.Tx, n consent.Need) (consent.Basis, error) {
	return c.p.Consents.Check(ctx, tx, n)
}
