package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/notify"
)

const notifyUsage = "usage: ortaq notify outbox [--to IIN|phone|email] [--channel sms|email] [--limit N] [--follow]  (see ortaq notify outbox --help)"

func notifyCmd(args []string, stdout, stderr io.Writer) error {
	return dispatch("notify", notifyUsage, args, stdout, stderr, subcommand{"outbox", notifyOutbox})
}

// notifyOutbox prints what the development adapters of SMS and e-mail
// sent: the stand-in for the SMS centre and the mail server.
func notifyOutbox(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level string
	var filter notify.OutboxFilter
	var follow bool
	f := newFlags("notify outbox", "Prints the development outbox: the SMS and e-mail that the platform's development "+
		"adapters sent (phones and addresses in full: this is development data), oldest first. "+
		"With --follow, keeps printing new ones until Ctrl-C; that needs --database-url, since the embedded "+
		"database is locked while ortaq serve runs.", stderr)
	databaseFlags(f, &cfg, &level)
	f.String(&filter.To, "to", "", "only messages to this IIN, phone (+7XXXXXXXXXX) or e-mail address")
	f.String(&filter.Channel, "channel", "", "only sms or email")
	f.Int(&filter.Limit, "limit", 20, "the newest this many messages")
	f.Bool(&follow, "follow", false, "keep printing new messages until interrupted")
	if err := f.Parse(args); err != nil {
		return err
	}
	if filter.Channel != "" && filter.Channel != notify.SMS && filter.Channel != notify.Email {
		fmt.Fprintf(stderr, "ortaq notify outbox: --channel %q: use sms or email\n", filter.Channel)
		return errUsage
	}
	if filter.Limit < 1 {
		fmt.Fprintln(stderr, "ortaq notify outbox: --limit must be at least 1")
		return errUsage
	}
	return withDatabase(cfg, level, stderr, func(ctx context.Context, db *app.Database, _ *slog.Logger) error {
		return printOutbox(ctx, db, filter, follow, stdout, stderr)
	})
}

// printOutbox prints the dev outbox, and with follow what arrives after.
func printOutbox(ctx context.Context, db *app.Database, filter notify.OutboxFilter, follow bool, stdout, stderr io.Writer) error {
	sent, err := notify.DevOutbox(ctx, db.Pool, filter)
	if err != nil {
		return err
	}
	for _, s := range sent {
		printSent(stdout, s)
	}
	if !follow {
		nextSteps(stderr, len(sent), filter)
		return nil
	}
	if len(sent) > 0 {
		filter.After = sent[len(sent)-1].ID
	}
	fmt.Fprintln(stderr, "Waiting for new messages; Ctrl-C stops.")
	filter.Limit = 1000
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		sent, err := notify.DevOutbox(ctx, db.Pool, filter)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, s := range sent {
			printSent(stdout, s)
			filter.After = s.ID
		}
	}
}

func printSent(w io.Writer, s notify.Sent) {
	to := s.Address
	if s.ToIIN != "" {
		to += " (IIN " + s.ToIIN + ")"
	}
	fmt.Fprintf(w, "#%d  %s  %-5s  to %s  [%s]  message %s\n", s.ID, stamp(s.SentAt), s.Channel, to, s.Language, s.MessageID)
	if s.Subject != "" {
		fmt.Fprintf(w, "    Subject: %s\n", s.Subject)
	}
	for line := range strings.SplitSeq(s.Body, "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
}

// nextSteps tells where to look next.
func nextSteps(w io.Writer, n int, f notify.OutboxFilter) {
	if n == 0 {
		what := "no SMS or e-mail"
		if f.To != "" || f.Channel != "" {
			what += " matching --to/--channel"
		}
		fmt.Fprintf(w, "The development outbox holds %s. Messages go there when an event (a service's notify step, a fee to pay, "+
			"a signature asked for, an application returned) reaches a citizen who left a contact: PUT /api/v1/notifications/contact. "+
			"Every message also lands in the citizen's in-app inbox (GET /api/v1/notifications); messages still queued or failed, "+
			"with their attempts and last error, are in table notify_message.\n", what)
		return
	}
	fmt.Fprintf(w, "%d message(s), oldest first. New ones as they come: ortaq notify outbox --follow --database-url URL. "+
		"The citizen's in-app inbox: GET /api/v1/notifications; retries and failures: table notify_message (status, attempts, last_error).\n", n)
}
