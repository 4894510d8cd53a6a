package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/identity"
)

func tokenCmd(args []string, stdout, stderr io.Writer) error {
	return dispatch("token", "usage: ortaq token issue [flags] | revoke [flags] ID  (see ortaq token issue --help)", args, stdout, stderr,
		subcommand{"issue", tokenIssue}, subcommand{"revoke", tokenRevoke})
}

// openTokens opens (and migrates) the database as migrate does.
func openTokens(cfg app.Config, level string, stderr io.Writer, use func(ctx context.Context, tokens *identity.Tokens) error) error {
	return withDatabase(cfg, level, stderr, func(ctx context.Context, db *app.Database, _ *slog.Logger) error {
		return use(ctx, identity.NewTokens(db.Pool, clock.Real{}))
	})
}

func tokenIssue(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level, kind, note string
	var p identity.Principal
	var ttl time.Duration
	f := newFlags("token issue", "Issues an access token for a citizen, an officer of an agency or an organisation's system, "+
		"and prints it once on stdout (what it is and how to use it go to stderr). The platform keeps only its SHA-256: "+
		"a lost token cannot be shown again, only revoked and replaced. With the embedded database, run it while "+
		"ortaq serve is stopped (the data directory is locked), or point --database-url at the platform's database.", stderr)
	databaseFlags(f, &cfg, &level)
	f.String(&kind, "kind", "", "whom the token stands for: citizen, officer or system")
	f.String(&p.Subject, "subject", "", "the citizen's IIN, the officer's id (e.g. mia-0001) or the system's client id")
	f.String(&p.Name, "name", "", "display name (optional)")
	f.String(&p.Agency, "agency", "", "officers: the agency's id (e.g. mia)")
	f.Strings(&p.Roles, "role", "officers: a role within the agency; systems: a platform scope ("+strings.Join(identity.SystemScopes, ", ")+"); repeat for several (environment: comma-separated)")
	f.Duration(&ttl, "ttl", 12*time.Hour, "how long the token is valid, 1m to 2160h (90 days)")
	f.String(&note, "note", "", "why the token exists, for whoever reviews tokens later (optional)")
	if err := f.Parse(args); err != nil {
		return err
	}
	p.Kind = identity.Kind(kind)
	return openTokens(cfg, level, stderr, func(ctx context.Context, tokens *identity.Tokens) error {
		expires := time.Now().Add(ttl).UTC().Truncate(time.Second)
		token, id, err := tokens.Issue(ctx, p, ttl, note)
		if err != nil {
			return err
		}
		who := p.Actor()
		if p.Kind == identity.Officer {
			who += fmt.Sprintf(" (agency %s, roles %s)", p.Agency, strings.Join(p.Roles, ", "))
		}
		fmt.Fprintf(stderr, "ortaq token: issued access token %s for %s, valid until %s (%s).\n", id, who, expires.Format(time.RFC3339), ttl)
		fmt.Fprintf(stderr, "It is printed below, once: the platform keeps only its hash. Send it with every API call as\n"+
			"  Authorization: Bearer <token>\nRevoke it with: ortaq token revoke %s\n", id)
		fmt.Fprintln(stdout, token)
		return nil
	})
}

func tokenRevoke(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level string
	f := newFlags("token revoke", "Revokes the access token with the id ID (printed when it was issued). Every node refuses it "+
		fmt.Sprintf("within %s (resolved tokens are cached that long).", identity.CacheTTL), stderr)
	databaseFlags(f, &cfg, &level)
	rest, err := f.ParseArgs(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "usage: ortaq token revoke [flags] ID")
		return errUsage
	}
	return openTokens(cfg, level, stderr, func(ctx context.Context, tokens *identity.Tokens) error {
		if err := tokens.Revoke(ctx, rest[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ortaq token: revoked %s; every node refuses it within %s\n", rest[0], identity.CacheTTL)
		return nil
	})
}

// Strings defines a flag that may repeat; its environment variable holds
// comma-separated values. Values on the command line replace the
// environment's.
func (f *flags) Strings(p *[]string, name, usage string) {
	if v, ok := f.env(name); ok {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*p = append(*p, s)
			}
		}
	}
	f.fs.Var(&repeated{p: p}, name, usage)
}

type repeated struct {
	p   *[]string
	set bool
}

func (r *repeated) String() string {
	if r == nil || r.p == nil {
		return ""
	}
	return strings.Join(*r.p, ",")
}

func (r *repeated) Set(v string) error {
	if !r.set {
		*r.p, r.set = nil, true
	}
	*r.p = append(*r.p, v)
	return nil
}
