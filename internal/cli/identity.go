package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/identity"
)

func identityCmd(args []string, stdout, stderr io.Writer) error {
	const use = "usage: ortaq identity citizen add | officer add | client add | disable [flags]  (see ortaq identity citizen add --help)"
	if len(args) >= 1 && args[0] == "disable" {
		return identityDisable(args[1:], stdout, stderr)
	}
	if len(args) < 2 || args[1] != "add" {
		fmt.Fprintln(stderr, use)
		return errUsage
	}
	switch args[0] {
	case "citizen", "officer":
		return identityPersonAdd(identity.Kind(args[0]), args[2:], stdout, stderr)
	case "client":
		return identityClientAdd(args[2:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "ortaq identity: unknown account kind %q (citizen, officer, client)\n%s\n", args[0], use)
	return errUsage
}

// openAccounts opens (and migrates) the database as migrate does.
func openAccounts(cfg app.Config, level string, stderr io.Writer, use func(ctx context.Context, accounts *identity.Accounts) error) error {
	return withDatabase(cfg, level, stderr, func(ctx context.Context, db *app.Database, _ *slog.Logger) error {
		return use(ctx, identity.NewAccounts(db.Pool, clock.Real{}))
	})
}

// readPassword reads the first line of file ("-": standard input): a
// password never goes on the command line, where process lists show it.
func readPassword(file string) (string, error) {
	var r io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(io.LimitReader(r, 1024)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func identityPersonAdd(kind identity.Kind, args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level, phone, passwordFile string
	p := identity.Principal{Kind: kind}
	what := "a citizen's account: the IIN"
	if kind == identity.Officer {
		what = "an officer's account: an id, the agency and roles"
	}
	f := newFlags("identity "+string(kind)+" add", "Creates (or replaces) "+what+", the phone that gets the one-time sign-in "+
		"codes by SMS, and the password, read from the first line of --password-file (standard input by default; never a flag, "+
		"which process lists show) and kept as an argon2id hash. With the embedded database, run it while ortaq serve is stopped, "+
		"or point --database-url at the platform's database.", stderr)
	databaseFlags(f, &cfg, &level)
	if kind == identity.Citizen {
		f.String(&p.Subject, "iin", "", "the citizen's IIN (12 digits)")
	} else {
		f.String(&p.Subject, "id", "", "the officer's id (e.g. mia-0001)")
		f.String(&p.Agency, "agency", "", "the agency's id (e.g. mia)")
		f.Strings(&p.Roles, "role", "a role within the agency; repeat for several (environment: comma-separated)")
	}
	f.String(&p.Name, "name", "", "display name (optional)")
	f.String(&phone, "phone", "", "the phone for one-time codes, +7 and ten digits")
	f.String(&passwordFile, "password-file", "-", "file whose first line is the password (8 to 128 characters); - for standard input")
	if err := f.Parse(args); err != nil {
		return err
	}
	password, err := readPassword(passwordFile)
	if err != nil {
		return err
	}
	return openAccounts(cfg, level, stderr, func(ctx context.Context, accounts *identity.Accounts) error {
		if err := accounts.SetPerson(ctx, p, phone, password); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ortaq identity: %s account %s saved; sign in at /login (password, then the code sent to the phone)\n", kind, p.Subject)
		return nil
	})
}

func identityClientAdd(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level string
	var redirects []string
	p := identity.Principal{Kind: identity.System}
	f := newFlags("identity client add", "Creates an organisation's system (e.g. a bank) that gets access tokens with the OAuth 2.0 "+
		"client-credentials grant (POST /api/v1/oauth/token or /oidc/token), or gives an existing one a new secret; with "+
		"--redirect-uri it is also an OpenID Connect relying party that signs people in (/oidc/authorize, PKCE required). "+
		"The secret is printed once on stdout: the platform keeps only its SHA-256.", stderr)
	databaseFlags(f, &cfg, &level)
	f.String(&p.Subject, "id", "", "the client id (e.g. halyk-bank)")
	f.String(&p.Name, "name", "", "display name (optional)")
	f.Strings(&p.Roles, "scope", "a platform scope ("+strings.Join(identity.SystemScopes, ", ")+"); repeat for several (environment: comma-separated)")
	f.Strings(&redirects, "redirect-uri", "OpenID Connect: where people may be sent back after signing in (exact, absolute http(s) URL); repeat for several")
	if err := f.Parse(args); err != nil {
		return err
	}
	return openAccounts(cfg, level, stderr, func(ctx context.Context, accounts *identity.Accounts) error {
		secret, err := accounts.SetClient(ctx, p)
		if err != nil {
			return err
		}
		if err := accounts.SetRedirectURIs(ctx, p.Subject, redirects); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "ortaq identity: client %s saved. Its secret is printed below, once; get tokens with\n"+
			"  curl -u %s:SECRET -d grant_type=client_credentials .../api/v1/oauth/token\n", p.Subject, p.Subject)
		fmt.Fprintln(stdout, secret)
		return nil
	})
}

func identityDisable(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level, kind, subject string
	f := newFlags("identity disable", "Stops an account from signing in: its sessions end at once, its refresh tokens stop "+
		"working, and access tokens already issued run out within minutes.", stderr)
	databaseFlags(f, &cfg, &level)
	f.String(&kind, "kind", "", "citizen, officer or system")
	f.String(&subject, "subject", "", "the citizen's IIN, the officer's id or the client id")
	if err := f.Parse(args); err != nil {
		return err
	}
	return openAccounts(cfg, level, stderr, func(ctx context.Context, accounts *identity.Accounts) error {
		if err := accounts.Disable(ctx, identity.Kind(kind), subject); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ortaq identity: %s account %s disabled\n", kind, subject)
		return nil
	})
}
