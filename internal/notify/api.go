package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/web"
)

// InboxMessage is one in-app message.
type InboxMessage struct {
	ID            uuid.UUID
	Topic         string
	Title, Text   i18n.Text
	ApplicationID string
	CreatedAt     time.Time
}

// ErrBadCursor is returned by Inbox for an after that is not one of the
// recipient's messages.
var ErrBadCursor = errors.New("not a message of this inbox")

// Recipient is whose in-app inbox is read: a citizen by IIN, or an
// officer, who reads what was sent to each role they hold in their agency.
type Recipient struct {
	IIN    string
	Agency string
	Roles  []string
}

// RecipientOf returns the inbox p reads; ok is false for a principal that
// has none (organisations' systems).
func RecipientOf(p identity.Principal) (to Recipient, ok bool) {
	switch p.Kind {
	case identity.Citizen:
		return Recipient{IIN: p.Subject}, p.Subject != ""
	case identity.Officer:
		return Recipient{Agency: p.Agency, Roles: p.Roles}, p.Agency != ""
	}
	return Recipient{}, false
}

// where is the SQL condition that selects to's messages, its first
// placeholder $1 and the arguments it takes.
func (to Recipient) where() (string, []any) {
	if to.IIN != "" {
		return `to_iin = $1`, []any{to.IIN}
	}
	return `agency = $1 AND role = ANY($2)`, []any{to.Agency, to.Roles}
}

// Inbox returns the recipient's in-app messages, newest first, after the
// message with id after (uuid.Nil: from the newest).
func (n *Notifier) Inbox(ctx context.Context, to Recipient, after uuid.UUID, limit int) ([]InboxMessage, error) {
	if to.IIN == "" && (to.Agency == "" || len(to.Roles) == 0) {
		if after != uuid.Nil {
			return nil, ErrBadCursor
		}
		return nil, nil
	}
	cond, args := to.where()
	next := len(args) + 1
	var afterAt time.Time
	if after != uuid.Nil {
		err := n.pool.QueryRow(ctx, `SELECT created_at FROM notify_message WHERE `+cond+
			fmt.Sprintf(` AND id = $%d AND channel = 'inapp'`, next), append(args, after)...).Scan(&afterAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrBadCursor
		}
		if err != nil {
			return nil, fmt.Errorf("read inbox: %w", err)
		}
	}
	rows, err := n.pool.Query(ctx, `SELECT id, topic, title, text, coalesce(application_id, ''), created_at FROM notify_message
		WHERE `+cond+fmt.Sprintf(` AND channel = 'inapp' AND ($%d::uuid IS NULL OR (created_at, id) < ($%d, $%d::uuid))
		ORDER BY created_at DESC, id DESC LIMIT $%d`, next, next+1, next, next+2), append(args, nullUUID(after), afterAt, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read inbox: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (InboxMessage, error) {
		var m InboxMessage
		var title, text []byte
		if err := r.Scan(&m.ID, &m.Topic, &title, &text, &m.ApplicationID, &m.CreatedAt); err != nil {
			return m, err
		}
		if err := json.Unmarshal(title, &m.Title); err != nil {
			return m, err
		}
		return m, json.Unmarshal(text, &m.Text)
	})
}

func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

// NotificationView is an in-app message in the reader's language.
type NotificationView struct {
	ID            uuid.UUID `json:"id"`
	Topic         string    `json:"topic"`
	Title         string    `json:"title"`
	Text          string    `json:"text"`
	ApplicationID string    `json:"application_id,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// NotificationList is a page of the inbox.
type NotificationList struct {
	Notifications []NotificationView `json:"notifications"`
	Language      string             `json:"language"`
	// Next continues the list (?after=); absent on the last page.
	Next string `json:"next,omitempty"`
}

// ContactInput is the body of PUT /api/v1/notifications/contact; an empty
// or absent field clears it.
type ContactInput struct {
	Phone    string `json:"phone"`
	Email    string `json:"email"`
	Language string `json:"language"`
}

// Routes mounts the notification API: the in-app inbox of citizens and
// officers, and citizens' contacts.
func (n *Notifier) Routes(s *web.Server) {
	s.HandleFunc("GET /api/v1/notifications", n.handleInbox)
	s.HandleFunc("GET /api/v1/notifications/contact", n.handleGetContact)
	s.HandleFunc("PUT /api/v1/notifications/contact", n.handlePutContact)
}

// citizen returns the calling citizen: 401 anonymous, 403 anyone else.
func citizen(r *http.Request) (identity.Principal, error) {
	p, err := identity.Require(r)
	if err != nil {
		return p, err
	}
	if p.Kind != identity.Citizen {
		return p, apierr.New(apierr.Forbidden)
	}
	return p, nil
}

const maxPage = 100

func (n *Notifier) handleInbox(w http.ResponseWriter, r *http.Request) error {
	p, err := identity.Require(r)
	if err != nil {
		return err
	}
	to, ok := RecipientOf(p)
	if !ok {
		return apierr.New(apierr.Forbidden)
	}
	q := r.URL.Query()
	var fields []apierr.FieldError
	limit := 20
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		switch {
		case err != nil:
			fields = append(fields, apierr.FieldError{Path: "/limit", Code: apierr.FieldFormat})
		case v < 1 || v > maxPage:
			fields = append(fields, apierr.FieldError{Path: "/limit", Code: apierr.FieldOutOfRange})
		default:
			limit = v
		}
	}
	var after uuid.UUID
	if s := q.Get("after"); s != "" {
		if after, err = uuid.Parse(s); err != nil {
			fields = append(fields, apierr.FieldError{Path: "/after", Code: apierr.FieldFormat})
		}
	}
	if len(fields) > 0 {
		return apierr.New(apierr.Validation, fields...)
	}
	msgs, err := n.Inbox(r.Context(), to, after, limit+1)
	if errors.Is(err, ErrBadCursor) {
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/after", Code: apierr.FieldFormat})
	}
	if err != nil {
		return err
	}
	lang := web.Lang(r)
	out := NotificationList{Notifications: make([]NotificationView, 0, len(msgs)), Language: string(lang)}
	if len(msgs) > limit {
		msgs = msgs[:limit]
		out.Next = msgs[limit-1].ID.String()
	}
	for _, m := range msgs {
		out.Notifications = append(out.Notifications, NotificationView{ID: m.ID, Topic: m.Topic, Title: m.Title.In(lang),
			Text: m.Text.In(lang), ApplicationID: m.ApplicationID, CreatedAt: m.CreatedAt})
	}
	w.Header().Set("Content-Language", string(lang))
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (n *Notifier) handleGetContact(w http.ResponseWriter, r *http.Request) error {
	p, err := citizen(r)
	if err != nil {
		return err
	}
	c, _, err := n.Contact(r.Context(), p.Subject, p.Actor(), web.RequestID(r.Context()))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, c)
	return nil
}

func (n *Notifier) handlePutContact(w http.ResponseWriter, r *http.Request) error {
	p, err := citizen(r)
	if err != nil {
		return err
	}
	var in ContactInput
	if err := web.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	saved, err := n.SetContact(r.Context(), p.Subject, Contact{Phone: in.Phone, Email: in.Email, Language: in.Language},
		p.Actor(), web.RequestID(r.Context()))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, saved)
	return nil
}
