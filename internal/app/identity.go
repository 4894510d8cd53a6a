package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/notify"
)

// smsCodes sends sign-in codes through notify's SMS adapter at once (not
// through the message queue: a code is useless after five minutes, and a
// retry later would only confuse).
type smsCodes struct {
	sender notify.Sender
	// echo, set by `serve --demo` only, also prints each demo SMS on the
	// terminal: with the embedded database locked by serve, the dev outbox
	// (`ortaq notify outbox`) cannot be read while the demo runs. Never set
	// in production: it would print the codes.
	echo io.Writer
}

func (s *smsCodes) SendCode(ctx context.Context, to identity.Account, code string, lang i18n.Lang) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	m := notify.Message{ID: id, Channel: notify.SMS, Address: to.Phone, Language: string(lang), Attempt: 1,
		Body: i18n.T(lang, "identity.sms.code", code)}
	if to.Kind == identity.Citizen {
		m.ToIIN = to.Subject
	}
	if err := s.sender.Send(ctx, m); err != nil {
		return err
	}
	if s.echo != nil {
		fmt.Fprintf(s.echo, "demo SMS to %s: %s\n", m.Address, m.Body)
	}
	return nil
}

// sweepIdentity deletes spent sign-in rows (identity.Sweep) every
// identity.SweepEvery until ctx ends.
func sweepIdentity(ctx context.Context, pool *pgxpool.Pool, clk clock.Clock, log *slog.Logger) {
	tick := time.NewTicker(identity.SweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n, err := identity.Sweep(ctx, pool, clk); err != nil && ctx.Err() == nil {
			log.Warn("sweeping sign-in tables", "error", err)
		} else if n > 0 {
			log.Debug("swept sign-in tables", "rows", n)
		}
	}
}

// SeedDemoAccounts creates the demo's accounts (demo.Accounts) and prints
// how to sign in: the citizens' and officers' password, and the demo bank's
// new client secret.
func (p *Platform) SeedDemoAccounts(ctx context.Context, sample demo.Result, out io.Writer) error {
	var people, officers []string
	for _, a := range demo.Accounts(sample) {
		pr := identity.Principal{Kind: identity.Kind(a.Kind), Subject: a.Subject, Name: a.Name, Agency: a.Agency, Roles: a.Roles}
		if pr.Kind == identity.System {
			secret, err := p.Accounts.SetClient(ctx, pr)
			if err != nil {
				return fmt.Errorf("demo client %s: %w", a.Subject, err)
			}
			fmt.Fprintf(out, "  demo bank: client id %s, secret %s (POST /api/v1/oauth/token, grant_type=client_credentials)\n", a.Subject, secret)
			continue
		}
		if err := p.Accounts.SetPerson(ctx, pr, a.Phone, demo.Password); err != nil {
			return fmt.Errorf("demo account %s: %w", a.Subject, err)
		}
		if pr.Kind == identity.Citizen {
			people = append(people, a.Subject)
		} else {
			officers = append(officers, a.Subject)
		}
	}
	fmt.Fprintf(out, "  sign in:  /login with password %q for citizens %v and officers %v; demo SMS codes are printed here\n", demo.Password, people, officers)
	p.codes.echo = out
	return nil
}

// forwardedFor returns a middleware that, for a request from one of the
// trusted proxies, takes the caller's address from X-Forwarded-For (the
// right-most address that is not itself a trusted proxy), so that sign-in's
// per-address limit counts callers, not the load balancer. Requests from
// anyone else keep their peer address: the header is trivially forged.
func forwardedFor(trusted []netip.Prefix) func(http.Handler) http.Handler {
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			peer, err := netip.ParseAddrPort(r.RemoteAddr)
			if err != nil || !isTrusted(peer.Addr()) {
				next.ServeHTTP(w, r)
				return
			}
			hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
			for i := len(hops) - 1; i >= 0; i-- {
				a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
				if err != nil {
					break // a malformed hop: trust nothing further left
				}
				if !isTrusted(a) {
					r2 := r.Clone(r.Context())
					r2.RemoteAddr = netip.AddrPortFrom(a.Unmap(), 0).String()
					next.ServeHTTP(w, r2)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ParseTrustedProxies reads addresses and CIDR prefixes ("10.0.0.0/8",
// "192.0.2.7").
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: an IP address or CIDR prefix", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
