package identity

import (
	"context"
	"log/slog"
	"net/http"
	"slices"

	"github.com/ortaq/ortaq/internal/apierr"
)

// Kind is what sort of party a principal is.
type Kind string

// The kinds of principal.
const (
	Citizen Kind = "citizen" // Subject is the IIN (12 digits, valid per internal/iin)
	Officer Kind = "officer" // Subject is an officer id (e.g. "mia-0001"); Agency and Roles set
	System  Kind = "system"  // an organisation's system (e.g. a bank); Subject is its client id
)

// Principal is who makes a request.
type Principal struct {
	Kind    Kind
	Subject string
	Name    string   // display name, may be empty
	Agency  string   // officers: agency id (see internal/agency); empty otherwise
	Roles   []string // officers: roles within Agency; systems: platform scopes (SystemScopes)
}

// ScopePayments lets a payment gateway's system confirm that state fees
// were paid.
const ScopePayments = "payments"

// ScopeExchangeGateway lets an exchange gateway follow the consent feed of
// the exchange's clients and report the personal-data calls it passed or
// refused.
const ScopeExchangeGateway = "exchange-gateway"

// SystemScopes are the platform-wide roles an organisation's system may
// hold.
var SystemScopes = []string{ScopePayments, ScopeExchangeGateway}

// HasScope reports whether p is a system holding scope.
func (p Principal) HasScope(scope string) bool {
	return p.Kind == System && slices.Contains(p.Roles, scope)
}

// Actor is the principal as the audit trail names it: "citizen:<iin>",
// "officer:<id>", "system:<id>".
func (p Principal) Actor() string { return string(p.Kind) + ":" + p.Subject }

// HasRole reports whether p is an officer of agency with role.
func (p Principal) HasRole(agency, role string) bool {
	return p.Kind == Officer && agency != "" && p.Agency == agency && slices.Contains(p.Roles, role)
}

// IsCitizen reports whether p is the citizen with the IIN.
func (p Principal) IsCitizen(iin string) bool {
	return p.Kind == Citizen && iin != "" && p.Subject == iin
}

// LogValue keeps a citizen's IIN out of logs: it is personal data, and logs
// are not the audit trail.
func (p Principal) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("kind", string(p.Kind))}
	if p.Kind != Citizen {
		attrs = append(attrs, slog.String("subject", p.Subject))
	}
	if p.Agency != "" {
		attrs = append(attrs, slog.String("agency", p.Agency), slog.Any("roles", p.Roles))
	}
	return slog.GroupValue(attrs...)
}

func (p Principal) clone() Principal {
	p.Roles = slices.Clone(p.Roles)
	return p
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p.clone())
}

// FromContext returns the principal ctx carries; ok is false for anonymous
// requests.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	if !ok {
		return Principal{}, false
	}
	return p.clone(), true
}

// Require returns the principal of r, or auth.unauthorized (401) when r is
// anonymous. What the principal may do is the caller's decision.
func Require(r *http.Request) (Principal, error) {
	p, ok := FromContext(r.Context())
	if !ok {
		return Principal{}, apierr.New(apierr.Unauthorized)
	}
	return p, nil
}
