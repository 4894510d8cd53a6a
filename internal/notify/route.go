package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/outbox"
)

// intent is one thing to tell one recipient: a citizen (toIIN) or the
// officers of a role (agency, role).
type intent struct {
	dedup         string
	toIIN         string
	agency, role  string
	title, text   i18n.Text
	applicationID string
}

// payload is the union of the fields the routed events carry.
type payload struct {
	ApplicationID string     `json:"application_id"`
	Step          string     `json:"step"`
	ToIIN         string     `json:"to_iin"`
	Message       *i18n.Text `json:"message"`
	Template      string     `json:"template"`
	Reason        string     `json:"reason"`
	Invoice       string     `json:"invoice"`
	AmountTiyn    int64      `json:"amount_tiyn"`
	DueAt         *time.Time `json:"due_at"`
	TaskID        string     `json:"task_id"`
	Agency        string     `json:"agency"`
	Role          string     `json:"role"`
	// consent.denied
	SubjectIIN string    `json:"subject_iin"`
	Requester  string    `json:"requester"`
	Items      []string  `json:"items"`
	Purpose    string    `json:"purpose"`
	Code       string    `json:"code"`
	Channel    string    `json:"channel"`
	RequestID  string    `json:"request_id"`
	At         time.Time `json:"at"`
}

// almaty is Kazakhstan's time (UTC+5, one zone since 2024-03-01), in
// which people read deadlines.
var almaty = time.FixedZone("Asia/Almaty", 5*60*60)

func localTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.In(almaty).Format("02.01.2006 15:04")
}

// tenge formats an amount in tiyn: "1 250" or "1 250.50".
func tenge(tiyn int64) string {
	s := strconv.FormatInt(tiyn/100, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	if f := tiyn % 100; f != 0 {
		fmt.Fprintf(&b, ".%02d", f)
	}
	return b.String()
}

// route says what an event tells whom. An event that cannot make a message
// (no recipient, no text) is logged and passed over: it will never make
// one. Errors are for passing trouble; the batch comes again.
func (n *Notifier) route(ctx context.Context, tx pgx.Tx, e outbox.Event) ([]intent, error) {
	var p payload
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		n.log.Warn("notify: event payload unreadable; no message", "event", e.ID, "topic", e.Topic, "error", err)
		return nil, nil
	}
	in := intent{dedup: "event:" + strconv.FormatInt(e.ID, 10), applicationID: p.ApplicationID}
	app := Application{ApplicantIIN: p.ToIIN}
	if p.ApplicationID != "" && n.apps != nil {
		a, err := n.apps.Application(ctx, p.ApplicationID)
		switch {
		case errors.Is(err, ErrUnknownApplication):
		case err != nil:
			return nil, fmt.Errorf("look up application: %w", err)
		default:
			app.Number = a.Number
			if app.ApplicantIIN == "" {
				app.ApplicantIIN = a.ApplicantIIN
			}
		}
	}
	number := cmp.Or(app.Number, p.ApplicationID)
	if e.Topic == "notify.officer.escalation" {
		if p.Agency == "" || p.Role == "" {
			n.log.Warn("notify: escalation without agency or role; no message", "event", e.ID)
			return nil, nil
		}
		in.agency, in.role = p.Agency, p.Role
		in.title = i18n.Catalogue("notify.escalation.title")
		in.text = i18n.Catalogue("notify.escalation.text", p.TaskID, number, p.Role)
		return []intent{in}, nil
	}
	if e.Topic == "consent.denied" {
		return []intent{n.denied(in, p)}, nil
	}
	if app.ApplicantIIN == "" {
		n.log.Warn("notify: event names no citizen; no message", "event", e.ID, "topic", e.Topic)
		return nil, nil
	}
	in.toIIN = app.ApplicantIIN
	in.title = i18n.Catalogue("notify.application.title", number)
	switch {
	case e.Topic == "process.application.returned" || (e.Topic == "notify.message.requested" && p.Template == "application.returned"):
		// Process writes both events in the transaction that returns the
		// application: one message tells it.
		in.dedup = fmt.Sprintf("returned:%s:%d", p.ApplicationID, e.Tx)
		in.text = i18n.Catalogue("notify.returned.text", number, p.Reason)
	case e.Topic == "notify.message.requested" && p.Message != nil && p.Message.In(i18n.KK) != "":
		in.text = complete(*p.Message)
	case e.Topic == "process.payment.requested":
		in.text = i18n.Catalogue("notify.payment.text", tenge(p.AmountTiyn), number, localTime(p.DueAt), p.Invoice)
	case e.Topic == "process.signature.requested":
		in.text = i18n.Catalogue("notify.signature.text", number, localTime(p.DueAt))
	default:
		n.log.Warn("notify: event has no text; no message", "event", e.ID, "topic", e.Topic, "template", p.Template)
		return nil, nil
	}
	return []intent{in}, nil
}

// denied tells the data-protection officers of an attempt to read a
// person's data without a basis. The message names the person by the last
// four digits of the IIN only: an inbox is no place for a full one, and the
// request id finds the attempt in the audit trail.
func (n *Notifier) denied(in intent, p payload) intent {
	in.agency, in.role = n.cfg.DataProtection.Agency, n.cfg.DataProtection.Role
	in.title = i18n.Catalogue("notify.denied.title")
	subject := "…"
	if len(p.SubjectIIN) == 12 {
		subject = "…" + p.SubjectIIN[8:]
	}
	in.text = i18n.Catalogue("notify.denied.text", p.Requester, strings.Join(p.Items, ", "), subject, p.Purpose,
		cmp.Or(p.Channel, "-"), p.Code, localTime(&p.At), cmp.Or(p.RequestID, "-"))
	return in
}

// complete fills a language a definition left out (Kazakh, else Russian).
func complete(t i18n.Text) i18n.Text {
	return i18n.Text{KK: t.In(i18n.KK), RU: t.In(i18n.RU), EN: t.In(i18n.EN)}
}

// write inserts the messages of one intent: in-app (delivered as it is
// written) and, for a citizen with a contact, SMS and e-mail (queued).
func (n *Notifier) write(ctx context.Context, tx pgx.Tx, e outbox.Event, in intent) error {
	now := n.clock.Now()
	type msg struct {
		channel, address, language, subject, body string
	}
	var msgs []msg
	recipient := "citizen:" + in.toIIN
	if in.toIIN == "" {
		recipient = "role:" + in.agency + "/" + in.role
	}
	msgs = append(msgs, msg{channel: InApp, language: string(i18n.KK), subject: in.title.KK, body: in.text.KK})
	if in.toIIN != "" {
		c, found, err := readContact(ctx, tx, in.toIIN)
		if err != nil {
			return err
		}
		if found {
			if err := audit.Record(ctx, tx, audit.Event{At: now, Actor: "system:notify", Action: "notify.contact.read",
				SubjectIIN: in.toIIN, Object: "outbox_event:" + strconv.FormatInt(e.ID, 10), Purpose: "notification: " + e.Topic}); err != nil {
				return err
			}
		}
		langs := []i18n.Lang{i18n.KK, i18n.RU} // as 1414 writes when nobody chose
		if l, ok := i18n.Parse(c.Language); ok {
			langs = []i18n.Lang{l}
		}
		lang, subject, body := render(in, langs)
		if c.Phone != "" {
			msgs = append(msgs, msg{channel: SMS, address: c.Phone, language: lang, body: body})
		}
		if c.Email != "" {
			msgs = append(msgs, msg{channel: Email, address: c.Email, language: lang, subject: subject, body: body})
		}
	}
	title, _ := json.Marshal(in.title)
	text, _ := json.Marshal(in.text)
	for _, m := range msgs {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		status, sentAt, next := "queued", (*time.Time)(nil), &now
		if m.channel == InApp {
			status, sentAt, next = "sent", &now, nil
		}
		var address, toIIN, agency, role, appID any
		if m.address != "" {
			address = m.address
		}
		if in.toIIN != "" {
			toIIN = in.toIIN
		} else {
			agency, role = in.agency, in.role
		}
		if in.applicationID != "" {
			appID = in.applicationID
		}
		tag, err := tx.Exec(ctx, `INSERT INTO notify_message (id, dedup, event_id, topic, channel, recipient, to_iin, agency, role,
			address, language, subject, body, title, text, application_id, status, next_attempt_at, created_at, sent_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
			ON CONFLICT (dedup, channel, recipient) DO NOTHING`,
			id, in.dedup, e.ID, e.Topic, m.channel, recipient, toIIN, agency, role,
			address, m.language, m.subject, m.body, title, text, appID, status, next, now, sentAt)
		if err != nil {
			return fmt.Errorf("write %s message: %w", m.channel, err)
		}
		if tag.RowsAffected() == 1 {
			// Counted before the commit: a rolled-back batch comes again and
			// counts again, a rare overcount.
			n.counted.WithLabelValues(m.channel, "made").Inc()
		}
	}
	return nil
}

// render gives the language tag, subject and body of a message in langs:
// one language, or Kazakh then Russian.
func render(in intent, langs []i18n.Lang) (lang, subject, body string) {
	var tags, subjects, bodies []string
	for _, l := range langs {
		tags = append(tags, string(l))
		subjects = append(subjects, in.title.In(l))
		bodies = append(bodies, in.text.In(l))
	}
	return strings.Join(tags, ","), strings.Join(subjects, " / "), strings.Join(bodies, "\n")
}
