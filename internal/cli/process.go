package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/process"
)

const processUsage = "usage: ortaq process inspect ID | failed | retry ID | cancel ID --reason TEXT  (see ortaq process inspect --help)"

// embeddedNote is what every process command's help says about the
// embedded database.
const embeddedNote = "With the embedded database, run it while ortaq serve is stopped (the data directory is locked), " +
	"or point --database-url at the platform's database."

func processCmd(args []string, stdout, stderr io.Writer) error {
	return dispatch("process", processUsage, args, stdout, stderr,
		subcommand{"inspect", processInspect}, subcommand{"failed", processFailed},
		subcommand{"retry", processRetry}, subcommand{"cancel", processCancel})
}

// openEngine opens (and migrates) the database as migrate does and builds
// the platform without workers: the engine only reads and queues.
func openEngine(cfg app.Config, level string, stderr io.Writer, use func(ctx context.Context, p *app.Platform) error) error {
	cfg.Workers = 0
	return withDatabase(cfg, level, stderr, func(ctx context.Context, db *app.Database, log *slog.Logger) error {
		p, err := app.Build(cfg, db.Pool, log)
		if err != nil {
			return err
		}
		return use(ctx, p)
	})
}

// parseID parses flags before and after the one argument, an application id.
func parseID(f *flags, args []string, usage string, stderr io.Writer) (uuid.UUID, error) {
	rest, err := f.ParseArgs(args)
	if err != nil {
		return uuid.Nil, err
	}
	if len(rest) > 0 {
		after, err := f.ParseArgs(rest[1:])
		if err != nil {
			return uuid.Nil, err
		}
		rest = append(rest[:1], after...)
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, usage)
		return uuid.Nil, errUsage
	}
	id, err := uuid.Parse(rest[0])
	if err != nil {
		fmt.Fprintf(stderr, "ortaq process: %q is not an application id; give its UUID, as ortaq process failed "+
			"or the API (id, Location) show it, not its number\n", rest[0])
		return uuid.Nil, errUsage
	}
	return id, nil
}

// explain turns the engine's errors about one application into sentences.
func explain(ctx context.Context, e *process.Engine, id uuid.UUID, action string, err error) error {
	var ae *apierr.Error
	switch {
	case errors.Is(err, process.ErrNotFound), errors.As(err, &ae) && ae.Code == apierr.ApplicationNotFound:
		return fmt.Errorf("there is no application with id %s", id)
	case errors.As(err, &ae) && ae.Code == apierr.ApplicationState:
		what := "its state"
		if a, gerr := e.Get(ctx, id); gerr == nil {
			what = fmt.Sprintf("application %s is %s", a.Number, a.Status)
		}
		switch action {
		case "retry":
			return fmt.Errorf("cannot retry: %s; only a failed application can be retried (see ortaq process inspect %s)", what, id)
		case "cancel":
			return fmt.Errorf("cannot cancel: %s; only an undecided or failed application can be cancelled (see ortaq process inspect %s)", what, id)
		}
		return fmt.Errorf("cannot %s: %s", action, what)
	}
	return err
}

func defaultActor() string {
	if u := os.Getenv("USER"); u != "" {
		return "operator:" + u
	}
	return "operator:cli"
}

func processInspect(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level string
	var asJSON, personal bool
	f := newFlags("process inspect ID", "Shows everything about the application with the id ID: status, service version, "+
		"the timeline with each step's actor, timing, outcome, attempt and error, officers' tasks, timers and the queued "+
		"or finished runs (jobs) with their errors. The applicant's IIN is masked except its last four digits unless "+
		"--show-personal-data is given. "+embeddedNote, stderr)
	databaseFlags(f, &cfg, &level)
	f.Bool(&asJSON, "json", false, "print the inspection as JSON instead of a report")
	f.Bool(&personal, "show-personal-data", false, "show IINs in full (the applicant's, and any in actors and details)")
	id, err := parseID(f, args, "usage: ortaq process inspect [flags] ID", stderr)
	if err != nil {
		return err
	}
	return openEngine(cfg, level, stderr, func(ctx context.Context, p *app.Platform) error {
		in, err := p.Engine.Inspect(ctx, id)
		if err != nil {
			return explain(ctx, p.Engine, id, "inspect", err)
		}
		if !personal {
			maskInspection(&in)
		}
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(in)
		}
		cursor := ""
		if plan, err := p.Services.Plan(ctx, in.Application.ServiceID, in.Application.ServiceVersion); err == nil &&
			in.Cursor >= 0 && in.Cursor < len(plan.Steps) {
			cursor = fmt.Sprintf("step %s (%s)", plan.Steps[in.Cursor].Step.ID, plan.Steps[in.Cursor].Step.Type)
		}
		writeInspection(stdout, in, cursor)
		return nil
	})
}

func processFailed(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level string
	var limit int
	var personal bool
	f := newFlags("process failed", "Lists applications that stopped after a step's last attempt, newest first, with "+
		"the error that ended them. "+embeddedNote, stderr)
	databaseFlags(f, &cfg, &level)
	f.Int(&limit, "limit", 50, "at most this many applications")
	f.Bool(&personal, "show-personal-data", false, "show IINs in errors in full")
	if err := f.Parse(args); err != nil {
		return err
	}
	if limit < 1 {
		fmt.Fprintln(stderr, "ortaq process failed: --limit must be at least 1")
		return errUsage
	}
	return openEngine(cfg, level, stderr, func(ctx context.Context, p *app.Platform) error {
		apps, err := p.Engine.Failed(ctx, limit)
		if err != nil {
			return err
		}
		if len(apps) == 0 {
			fmt.Fprintln(stdout, "No failed applications.")
			return nil
		}
		w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNUMBER\tSERVICE\tFAILED AT\tSTEP\tERROR")
		for _, a := range apps {
			failedAt := "-"
			if a.DecidedAt != nil {
				failedAt = stamp(*a.DecidedAt)
			}
			stepName, msg := lastError(a.Timeline)
			if !personal {
				msg = maskIINs(msg)
			}
			fmt.Fprintf(w, "%s\t%s\t%s@%d\t%s\t%s\t%s\n", a.ID, a.Number, a.ServiceID, a.ServiceVersion, failedAt,
				dash(stepName), dash(clip(oneLine(msg), 120)))
		}
		w.Flush()
		if len(apps) == limit {
			fmt.Fprintf(stdout, "(the newest %d; --limit shows more)\n", limit)
		}
		fmt.Fprintln(stdout, "\nretry with: ortaq process retry ID  (see why first: ortaq process inspect ID)\n"+
			"or end with: ortaq process cancel ID --reason TEXT")
		return nil
	})
}

func processRetry(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level, actor string
	f := newFlags("process retry ID", "Sends the failed application with the id ID back to work from the step that "+
		"failed, with a fresh count of attempts; the retry is on its timeline with the operator's name. A node running "+
		"ortaq serve with workers picks it up. "+embeddedNote, stderr)
	databaseFlags(f, &cfg, &level)
	f.String(&actor, "actor", defaultActor(), "who retries, for the timeline")
	id, err := parseID(f, args, "usage: ortaq process retry [flags] ID", stderr)
	if err != nil {
		return err
	}
	if strings.TrimSpace(actor) == "" {
		fmt.Fprintln(stderr, "ortaq process retry: --actor must name who retries")
		return errUsage
	}
	return openEngine(cfg, level, stderr, func(ctx context.Context, p *app.Platform) error {
		if err := p.Engine.Retry(ctx, id, actor); err != nil {
			return explain(ctx, p.Engine, id, "retry", err)
		}
		number := id.String()
		if a, err := p.Engine.Get(ctx, id); err == nil {
			number = a.Number
		}
		fmt.Fprintf(stdout, "ortaq process: application %s is queued again from the step that failed, with fresh attempts (by %s).\n"+
			"A node running ortaq serve with workers works it; follow it with: ortaq process inspect %s\n", number, actor, id)
		return nil
	})
}

func processCancel(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level, actor, reason string
	f := newFlags("process cancel ID", "Ends the undecided or failed application with the id ID as cancelled: its open "+
		"tasks are cancelled and its timers dropped; the reason and the operator's name go on its timeline, and the "+
		"citizen sees it cancelled. "+embeddedNote, stderr)
	databaseFlags(f, &cfg, &level)
	f.String(&reason, "reason", "", "why the application is cancelled (required; the timeline keeps it)")
	f.String(&actor, "actor", defaultActor(), "who cancels, for the timeline")
	id, err := parseID(f, args, "usage: ortaq process cancel [flags] --reason TEXT ID", stderr)
	if err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		fmt.Fprintln(stderr, "ortaq process cancel: --reason is required: say why, the application's timeline keeps it")
		return errUsage
	}
	if strings.TrimSpace(actor) == "" {
		fmt.Fprintln(stderr, "ortaq process cancel: --actor must name who cancels")
		return errUsage
	}
	return openEngine(cfg, level, stderr, func(ctx context.Context, p *app.Platform) error {
		if err := p.Engine.Cancel(ctx, id, actor, reason); err != nil {
			return explain(ctx, p.Engine, id, "cancel", err)
		}
		number := id.String()
		if a, err := p.Engine.Get(ctx, id); err == nil {
			number = a.Number
		}
		fmt.Fprintf(stdout, "ortaq process: application %s is cancelled (by %s: %s); open tasks were cancelled and timers dropped.\n"+
			"See its timeline with: ortaq process inspect %s\n", number, actor, reason, id)
		return nil
	})
}

// writeInspection prints in as a report; cursor names the step the cursor
// points at, if known.
func writeInspection(out io.Writer, in process.Inspection, cursor string) {
	a := in.Application
	fmt.Fprintf(out, "Application %s  (id %s)\n", a.Number, a.ID)
	status := a.Status
	switch {
	case a.RefusalCode != "":
		status += " (" + a.RefusalCode + ")"
	case a.DocumentID != nil:
		status += fmt.Sprintf(" (document %s)", a.DocumentID)
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "  Service:\t%s@%d\n", a.ServiceID, a.ServiceVersion)
	fmt.Fprintf(w, "  Status:\t%s\n", status)
	fmt.Fprintf(w, "  Applicant:\t%s\n", in.Applicant)
	fmt.Fprintf(w, "  Submitted:\t%s\n", stamp(a.SubmittedAt))
	if a.DecidedAt != nil {
		fmt.Fprintf(w, "  Decided:\t%s (after %s)\n", stamp(*a.DecidedAt), duration(a.DecidedAt.Sub(a.SubmittedAt)))
	} else {
		fmt.Fprintf(w, "  Decided:\t- (open for %s)\n", duration(time.Since(a.SubmittedAt)))
	}
	switch {
	case in.Cursor < 0:
		fmt.Fprintf(w, "  Cursor:\t%d (end of the flow)\n", in.Cursor)
	case cursor != "":
		fmt.Fprintf(w, "  Cursor:\t%d, %s\n", in.Cursor, cursor)
	default:
		fmt.Fprintf(w, "  Cursor:\t%d\n", in.Cursor)
	}
	w.Flush()

	fmt.Fprintf(out, "\nTimeline (%d steps, times in %s):\n", len(a.Timeline), zone(a.SubmittedAt))
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  TIME\tSTEP\tACTOR\tOUTCOME\tATTEMPT\tDURATION\tDETAIL")
	for _, s := range a.Timeline {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%d\t%s\t%s\n", stamp(s.StartedAt), s.Name, s.Actor, s.Outcome, s.Attempt,
			duration(s.FinishedAt.Sub(s.StartedAt)), dash(detail(s.Detail)))
	}
	w.Flush()

	if len(in.Tasks) == 0 {
		fmt.Fprintln(out, "\nTasks: none")
	} else {
		fmt.Fprintf(out, "\nTasks (%d):\n", len(in.Tasks))
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  ID\tSTEP\tROLE\tSTATUS\tCLAIMED BY\tDUE\tESCALATED\tDECISION")
		for _, t := range in.Tasks {
			escalated, decision := "-", "-"
			if t.EscalatedAt != nil {
				escalated = stamp(*t.EscalatedAt)
			}
			if t.Decision != "" {
				decision = t.Decision + " by " + t.DecidedBy
				if t.RefusalCode != "" {
					decision += " (" + t.RefusalCode + ")"
				}
			}
			fmt.Fprintf(w, "  %s\t%s\t%s/%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.StepID, t.Agency, t.Role, t.Status,
				dash(t.ClaimedBy), stamp(t.DueAt), escalated, decision)
		}
		w.Flush()
	}

	if len(in.Timers) == 0 {
		fmt.Fprintln(out, "\nTimers: none")
	} else {
		fmt.Fprintf(out, "\nTimers (%d):\n", len(in.Timers))
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "  KIND\tDUE")
		for _, t := range in.Timers {
			fmt.Fprintf(w, "  %s\t%s\n", t.Kind, stamp(t.DueAt))
		}
		w.Flush()
	}

	if len(in.Jobs) == 0 {
		fmt.Fprintln(out, "\nQueued run: none (nothing to do until a person or a timer acts)")
	} else {
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(out, "\nQueued run (errors of earlier attempts are on the timeline):")
		fmt.Fprintln(w, "  STATE\tATTEMPTS SO FAR\tDUE")
		for _, j := range in.Jobs {
			fmt.Fprintf(w, "  %s\t%d\t%s\n", j.State, j.Attempt, stamp(j.Schedule))
		}
		w.Flush()
	}

	switch a.Status {
	case process.StatusFailed:
		fmt.Fprintf(out, "\nNext: ortaq process retry %s, or ortaq process cancel %s --reason TEXT\n", a.ID, a.ID)
	case process.StatusSubmitted, process.StatusInReview, process.StatusReturned, process.StatusWaiting:
		fmt.Fprintf(out, "\nUndecided; an operator may end it with: ortaq process cancel %s --reason TEXT\n", a.ID)
	}
}

// lastError finds the step and error that failed an application: its
// "failed" step, else its last step with an error.
func lastError(timeline []process.Step) (step, msg string) {
	for _, named := range []bool{true, false} {
		for i := len(timeline) - 1; i >= 0; i-- {
			s := timeline[i]
			if s.Outcome != "error" || (named && s.Name != process.StatusFailed) {
				continue
			}
			msg, _ = s.Detail["error"].(string)
			if step, _ = s.Detail["step"].(string); step == "" {
				step = s.Name
			}
			return step, msg
		}
	}
	return "", ""
}

// detail renders a step's detail: the error first, then the other facts.
func detail(d map[string]any) string {
	var parts []string
	if e, ok := d["error"]; ok {
		parts = append(parts, "error: "+oneLine(fmt.Sprint(e)))
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := d[k]
		if k == "error" || v == nil || v == "" {
			continue
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case map[string]any, []any:
			b, _ := json.Marshal(v)
			s = string(b)
		default:
			s = fmt.Sprint(v)
		}
		parts = append(parts, k+"="+oneLine(s))
	}
	return strings.Join(parts, " ")
}

var word = regexp.MustCompile(`[0-9A-Za-z_-]+`)

// maskIINs masks every IIN-like word (twelve digits standing alone) in s
// except its last four digits. Ids such as UUIDs are words of their own and
// stay.
func maskIINs(s string) string {
	return word.ReplaceAllStringFunc(s, maskIIN)
}

func maskIIN(s string) string {
	if len(s) != 12 || strings.Trim(s, "0123456789") != "" {
		return s
	}
	return strings.Repeat("*", 8) + s[8:]
}

// maskInspection masks the applicant's IIN, and any IIN in actors, details,
// comments and errors.
func maskInspection(in *process.Inspection) {
	in.Applicant = strings.Repeat("*", max(len(in.Applicant)-4, 0)) + in.Applicant[max(len(in.Applicant)-4, 0):]
	for i := range in.Application.Timeline {
		s := &in.Application.Timeline[i]
		s.Actor = maskIINs(s.Actor)
		s.Detail, _ = maskAny(s.Detail).(map[string]any)
	}
	for i := range in.Tasks {
		t := &in.Tasks[i]
		t.Comment, t.ClaimedBy, t.DecidedBy = maskIINs(t.Comment), maskIINs(t.ClaimedBy), maskIINs(t.DecidedBy)
	}
}

func maskAny(v any) any {
	switch v := v.(type) {
	case string:
		return maskIINs(v)
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = maskAny(x)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = maskAny(x)
		}
		return l
	}
	return v
}

// stamp shows a time in the operator's zone, to the millisecond.
func stamp(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05.000")
}

// zone names the operator's zone at t, as stamp shows times.
func zone(t time.Time) string {
	name, offset := t.Local().Zone()
	switch {
	case offset == 0:
		return "UTC"
	case name == "" || name[0] == '+' || name[0] == '-':
		return "UTC" + t.Local().Format("-07:00")
	}
	return name + " (UTC" + t.Local().Format("-07:00") + ")"
}

// duration shows d to a useful precision.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
