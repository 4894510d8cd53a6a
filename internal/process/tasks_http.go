package process

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/web"
)

// TaskView is a task as the officers' API shows it.
type TaskView struct {
	ID          string     `json:"id"`
	Application AppRef     `json:"application"`
	Step        string     `json:"step"`
	Role        string     `json:"role"`
	Status      string     `json:"status"`
	ClaimedBy   string     `json:"claimed_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	DueAt       time.Time  `json:"due_at"`
	Overdue     bool       `json:"overdue"`
	EscalatedAt *time.Time `json:"escalated_at,omitempty"`
	Decisions   []string   `json:"decisions"`
	Refusals    []string   `json:"refusals,omitempty"`
	Decision    string     `json:"decision,omitempty"`
	RefusalCode string     `json:"refusal_code,omitempty"`
	Comment     string     `json:"comment,omitempty"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
}

// AppRef names the application of a task.
type AppRef struct {
	ID          string     `json:"id"`
	Number      string     `json:"number"`
	Service     ServiceRef `json:"service"`
	SubmittedAt time.Time  `json:"submitted_at"`
}

// TaskDetail is a task with what the officer needs to decide: the
// application's inputs, the registry data with its source, the timeline.
type TaskDetail struct {
	TaskView
	Inputs      map[string]any   `json:"inputs"`
	Data        []DataView       `json:"data"`
	Timeline    []StepView       `json:"timeline"`
	Attachments []AttachmentView `json:"attachments"`
	// Outputs is the JSON Schema of what to record when approving, when
	// the step asks for anything.
	Outputs map[string]any `json:"outputs,omitempty"`
}

// DataView is one data source's record, or records for a source that
// reads a list (by:), with where they came from.
type DataView struct {
	Name     string           `json:"name"`
	Registry string           `json:"registry"`
	Basis    string           `json:"basis,omitempty"`
	Record   map[string]any   `json:"record,omitempty"`
	Records  []map[string]any `json:"records,omitempty"`
}

// AttachmentView describes an attached file.
type AttachmentView struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	Size      int    `json:"size"`
	SHA256    string `json:"sha256"`
}

func (e *Engine) taskView(r *http.Request, t Task) (TaskView, error) {
	return e.DescribeTask(r.Context(), t, web.Lang(r))
}

// DescribeTask is a task as officers see it, its service's title in lang:
// the decisions and refusals its step allows, whether it is overdue.
func (e *Engine) DescribeTask(ctx context.Context, t Task, lang i18n.Lang) (TaskView, error) {
	def, err := e.services.Version(ctx, t.ServiceID, t.ServiceVersion)
	if err != nil {
		return TaskView{}, err
	}
	plan, err := e.services.Plan(ctx, t.ServiceID, t.ServiceVersion)
	if err != nil {
		return TaskView{}, err
	}
	v := TaskView{
		ID: t.ID.String(), Step: t.StepID, Role: t.Role, Status: t.Status, ClaimedBy: t.ClaimedBy,
		Application: AppRef{ID: t.ApplicationID.String(), Number: t.ApplicationNumber, SubmittedAt: t.SubmittedAt,
			Service: ServiceRef{ID: t.ServiceID, Version: t.ServiceVersion, Title: def.Title.In(lang)}},
		CreatedAt: t.CreatedAt, DueAt: t.DueAt, EscalatedAt: t.EscalatedAt,
		Overdue:  (t.Status == TaskOpen || t.Status == TaskClaimed) && e.cfg.Clock.Now().After(t.DueAt),
		Decision: t.Decision, RefusalCode: t.RefusalCode, Comment: t.Comment, DecidedAt: t.DecidedAt,
		Decisions: []string{},
	}
	if t.StepIndex >= 0 && t.StepIndex < len(plan.Steps) {
		v.Decisions = append(v.Decisions, plan.Steps[t.StepIndex].Step.Decisions...)
		v.Refusals = plan.Steps[t.StepIndex].Step.Refusals
	}
	return v, nil
}

func (e *Engine) handleInbox(w http.ResponseWriter, r *http.Request) error {
	who, err := identity.Require(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := InboxFilter{Status: q.Get("status"), Role: q.Get("role"), Service: q.Get("service"), Overdue: q.Get("overdue") == "true"}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			return apierr.New(apierr.Validation, apierr.FieldError{Path: "/limit", Code: apierr.FieldOutOfRange})
		}
		f.Limit = n
	}
	if s := q.Get("after"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			return apierr.New(apierr.Validation, apierr.FieldError{Path: "/after", Code: apierr.FieldFormat})
		}
		f.After = &id
	}
	tasks, err := e.Inbox(r.Context(), who, f)
	if err != nil {
		return err
	}
	out := struct {
		Tasks []TaskView `json:"tasks"`
		Next  string     `json:"next,omitempty"`
	}{Tasks: []TaskView{}}
	for _, t := range tasks {
		v, err := e.taskView(r, t)
		if err != nil {
			return err
		}
		out.Tasks = append(out.Tasks, v)
	}
	if f.Limit > 0 && len(tasks) == f.Limit || f.Limit == 0 && len(tasks) == 50 {
		out.Next = tasks[len(tasks)-1].ID.String()
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

// caller returns who calls and the id in the path; an id that is not a
// UUID names nothing, so it is notFound.
func caller(r *http.Request, notFound apierr.Code) (identity.Principal, uuid.UUID, error) {
	who, err := identity.Require(r)
	if err != nil {
		return identity.Principal{}, uuid.Nil, err
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return identity.Principal{}, uuid.Nil, apierr.New(notFound)
	}
	return who, id, nil
}

// handleTask shows a task with the application's data; the officer's read
// of the applicant's personal data is audited.
func (e *Engine) handleTask(w http.ResponseWriter, r *http.Request) error {
	who, id, err := caller(r, apierr.TaskNotFound)
	if err != nil {
		return err
	}
	d, err := e.TaskDetail(r.Context(), who, id, web.Lang(r), web.RequestID(r.Context()))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, d)
	return nil
}

// TaskDetail is a task the officer is entitled to with what they need to
// decide: the application's inputs, the registry data with its source and
// legal basis, the timeline (texts in lang), the attachments. The read of
// the applicant's personal data is audited (process.application.read).
func (e *Engine) TaskDetail(ctx context.Context, who identity.Principal, id uuid.UUID, lang i18n.Lang, requestID string) (TaskDetail, error) {
	var t Task
	var inputs, data map[string]any
	var atts []AttachmentView
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		if t, err = e.loadTask(ctx, tx, who, id, false); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT inputs, data FROM application WHERE id = $1`, t.ApplicationID).Scan(&inputs, &data); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id::text, name, media_type, size, encode(sha256, 'hex') FROM task_attachment
			WHERE task_id IN (SELECT id FROM task WHERE application_id = $1) ORDER BY id`, t.ApplicationID)
		if err != nil {
			return err
		}
		if atts, err = pgx.CollectRows(rows, pgx.RowToStructByPos[AttachmentView]); err != nil {
			return err
		}
		return e.officerAudit(ctx, tx, who, "process.application.read", t.ApplicationID, requestID)
	})
	if err != nil {
		return TaskDetail{}, err
	}
	v, err := e.DescribeTask(ctx, t, lang)
	if err != nil {
		return TaskDetail{}, err
	}
	d := TaskDetail{TaskView: v, Inputs: inputs, Data: []DataView{}, Attachments: atts}
	if d.Attachments == nil {
		d.Attachments = []AttachmentView{}
	}
	plan, err := e.services.Plan(ctx, t.ServiceID, t.ServiceVersion)
	if err != nil {
		return TaskDetail{}, err
	}
	for _, ds := range plan.Data {
		view := DataView{Name: ds.Source.Name, Registry: ds.Source.Registry, Basis: ds.Source.Basis}
		if ds.Source.Exchange != "" {
			view.Registry = ds.Source.Exchange
		}
		switch v := data[ds.Source.Name].(type) {
		case map[string]any:
			view.Record = v
		case []any:
			view.Records = make([]map[string]any, 0, len(v))
			for _, r := range v {
				if m, ok := r.(map[string]any); ok {
					view.Records = append(view.Records, m)
				}
			}
		default:
			continue // not read (a when: that did not hold) or nothing found
		}
		d.Data = append(d.Data, view)
	}
	if t.StepIndex >= 0 && t.StepIndex < len(plan.Steps) {
		d.Outputs, _ = plan.Steps[t.StepIndex].Step.Outputs.Value.(map[string]any)
	}
	a, err := e.Get(ctx, t.ApplicationID)
	if err != nil {
		return TaskDetail{}, err
	}
	def, err := e.services.Version(ctx, t.ServiceID, t.ServiceVersion)
	if err != nil {
		return TaskDetail{}, err
	}
	d.Timeline = ViewOf(a, def, lang).Timeline
	return d, nil
}

func (e *Engine) handleClaim(w http.ResponseWriter, r *http.Request) error {
	return e.taskAction(w, r, e.Claim)
}

func (e *Engine) handleRelease(w http.ResponseWriter, r *http.Request) error {
	return e.taskAction(w, r, e.Release)
}

func (e *Engine) taskAction(w http.ResponseWriter, r *http.Request, act func(context.Context, identity.Principal, uuid.UUID, string) (Task, error)) error {
	who, id, err := caller(r, apierr.TaskNotFound)
	if err != nil {
		return err
	}
	t, err := act(r.Context(), who, id, web.RequestID(r.Context()))
	if err != nil {
		return err
	}
	v, err := e.taskView(r, t)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, v)
	return nil
}

// DecisionBody is the body of POST /api/v1/tasks/{id}/decision.
type DecisionBody struct {
	Decision    string           `json:"decision"`
	Refusal     string           `json:"refusal"`
	Comment     string           `json:"comment"`
	Attachments []AttachmentBody `json:"attachments"`
	// Outputs are what the step asks the officer to record when approving.
	Outputs map[string]any `json:"outputs"`
}

// AttachmentBody is a file in a decision, its content in base64.
type AttachmentBody struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	Content   []byte `json:"content"`
}

func (e *Engine) handleDecision(w http.ResponseWriter, r *http.Request) error {
	who, id, err := caller(r, apierr.TaskNotFound)
	if err != nil {
		return err
	}
	var body DecisionBody
	if err := web.DecodeJSONLimit(w, r, &body, 4*maxAttachments*maxAttachmentBytes/3+web.MaxBodyBytes); err != nil {
		return err
	}
	req := DecideRequest{Decision: body.Decision, Refusal: body.Refusal, Comment: body.Comment, Outputs: body.Outputs, RequestID: web.RequestID(r.Context())}
	for _, a := range body.Attachments {
		req.Attachments = append(req.Attachments, Attachment(a))
	}
	t, err := e.Decide(r.Context(), who, id, req)
	if err != nil {
		return err
	}
	v, err := e.taskView(r, t)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (e *Engine) handleAttachment(w http.ResponseWriter, r *http.Request) error {
	who, id, err := caller(r, apierr.TaskNotFound)
	if err != nil {
		return err
	}
	attachment, err := uuid.Parse(r.PathValue("attachment"))
	if err != nil {
		return apierr.New(apierr.TaskNotFound)
	}
	a, err := e.TaskAttachment(r.Context(), who, id, attachment, web.RequestID(r.Context()))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", a.MediaType)
	w.Header().Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(a.Name))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(a.Content)
	return nil
}

// TaskAttachment reads a file attached to a decision on the application of
// a task the officer is entitled to; the read is audited
// (process.attachment.read). Any other file is apierr.TaskNotFound.
func (e *Engine) TaskAttachment(ctx context.Context, who identity.Principal, task, attachment uuid.UUID, requestID string) (Attachment, error) {
	var a Attachment
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		t, err := e.loadTask(ctx, tx, who, task, false)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT name, media_type, content FROM task_attachment
			WHERE id = $1 AND task_id IN (SELECT id FROM task WHERE application_id = $2)`, attachment, t.ApplicationID).Scan(&a.Name, &a.MediaType, &a.Content)
		if errors.Is(err, pgx.ErrNoRows) {
			return apierr.New(apierr.TaskNotFound)
		}
		if err != nil {
			return err
		}
		return e.officerAudit(ctx, tx, who, "process.attachment.read", t.ApplicationID, requestID)
	})
	return a, err
}

// CorrectionBody is the body of POST /api/v1/applications/{id}/correction.
type CorrectionBody struct {
	Inputs map[string]any `json:"inputs"`
}

func (e *Engine) handleWithdraw(w http.ResponseWriter, r *http.Request) error {
	who, id, err := caller(r, apierr.ApplicationNotFound)
	if err != nil {
		return err
	}
	if err := e.Withdraw(r.Context(), who, id, web.RequestID(r.Context())); err != nil {
		return err
	}
	return e.writeApplication(w, r, id)
}

func (e *Engine) handleCorrection(w http.ResponseWriter, r *http.Request) error {
	who, id, err := caller(r, apierr.ApplicationNotFound)
	if err != nil {
		return err
	}
	var body CorrectionBody
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if err := e.Correct(r.Context(), who, id, body.Inputs, web.RequestID(r.Context())); err != nil {
		return err
	}
	return e.writeApplication(w, r, id)
}

func (e *Engine) writeApplication(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	v, err := e.View(r.Context(), id, web.Lang(r))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, v)
	return nil
}

// Now is the engine's clock: pages that say whether a deadline falls today
// use the same time as the engine that says whether it is overdue.
func (e *Engine) Now() time.Time { return e.cfg.Clock.Now() }
