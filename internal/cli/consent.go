package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/identity"
)

func consentCmd(args []string, stdout, stderr io.Writer) error {
	return dispatch("consent", "usage: ortaq consent list [flags] | revoke [flags] ID  (see ortaq consent list --help)", args, stdout, stderr,
		subcommand{"list", consentList}, subcommand{"revoke", consentRevoke})
}

// openLedger opens (and migrates) the database and the consent ledger.
func openLedger(cfg app.Config, level string, stderr io.Writer, use func(ctx context.Context, l *consent.Ledger) error) error {
	return withDatabase(cfg, level, stderr, func(ctx context.Context, db *app.Database, log *slog.Logger) error {
		return use(ctx, consent.New(db.Pool, clock.Real{}, nil, log))
	})
}

func consentList(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level, subject string
	var limit int
	var asJSON, personal bool
	f := newFlags("consent list", "Lists consents, newest first: id, status, requester, the person (IIN masked unless "+
		"--show-personal-data), items, purpose and dates. "+embeddedNote, stderr)
	databaseFlags(f, &cfg, &level)
	f.String(&subject, "subject", "", "only this person's consents (an IIN)")
	f.Int(&limit, "limit", 50, "at most this many, 1 to 10000")
	f.Bool(&asJSON, "json", false, "print JSON, one consent per line")
	f.Bool(&personal, "show-personal-data", false, "show IINs in full")
	if err := f.Parse(args); err != nil {
		return err
	}
	if limit < 1 || limit > 10000 {
		fmt.Fprintln(stderr, "ortaq consent list: --limit must be 1 to 10000")
		return errUsage
	}
	return openLedger(cfg, level, stderr, func(ctx context.Context, l *consent.Ledger) error {
		cs, err := l.ListAll(ctx, subject, limit)
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(stdout)
			for _, c := range cs {
				if !personal {
					c.SubjectIIN = maskIIN(c.SubjectIIN)
				}
				if err := enc.Encode(c); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tREQUESTER\tPERSON\tITEMS\tPURPOSE\tREQUESTED\tVALID UNTIL")
		for _, c := range cs {
			who := c.SubjectIIN
			if !personal {
				who = maskIIN(who)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Status, c.Requester, who, strings.Join(c.Items, ","),
				c.Purpose, c.RequestedAt.UTC().Format(time.RFC3339), c.ValidUntil.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

func consentRevoke(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level, actor string
	f := newFlags("consent revoke", "Revokes the granted consent ID at once, as the data-protection officer may "+
		"(the person or the requester revoke through the API): a receipt is signed, consent.revoked goes to the "+
		"outbox, and every later use is refused with consent.revoked. "+embeddedNote, stderr)
	databaseFlags(f, &cfg, &level)
	f.String(&actor, "actor", defaultActor(), "who revokes, for the audit trail")
	rest, err := f.ParseArgs(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "usage: ortaq consent revoke [flags] ID")
		return errUsage
	}
	id, err := uuid.Parse(rest[0])
	if err != nil {
		fmt.Fprintf(stderr, "ortaq consent revoke: %q is not a consent id\n", rest[0])
		return errUsage
	}
	return openLedger(cfg, level, stderr, func(ctx context.Context, l *consent.Ledger) error {
		c, err := l.Revoke(ctx, id, identity.Principal{}, actor, "")
		if err != nil {
			return fmt.Errorf("cannot revoke: %w", err)
		}
		fmt.Fprintf(stdout, "ortaq consent: revoked %s (requester %s, items %s) at %s\n", c.ID, c.Requester,
			strings.Join(c.Items, ","), c.RevokedAt.UTC().Format(time.RFC3339))
		return nil
	})
}
