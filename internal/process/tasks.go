package process

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/servicedef"
)

// Task statuses.
const (
	TaskOpen      = "open"
	TaskClaimed   = "claimed"
	TaskDone      = "done"
	TaskCancelled = "cancelled"
)

// Task is an officer's review of one application at one review step.
type Task struct {
	ID            uuid.UUID
	ApplicationID uuid.UUID
	StepID        string
	StepIndex     int
	Agency        string
	Role          string
	Status        string
	ClaimedBy     string
	ClaimedAt     *time.Time
	CreatedAt     time.Time
	DueAt         time.Time
	EscalatedAt   *time.Time
	Decision      string
	RefusalCode   string
	Comment       string
	DecidedBy     string
	DecidedAt     *time.Time
	// Of the application, for inbox lists.
	ApplicationNumber string
	ServiceID         string
	ServiceVersion    int
	SubmittedAt       time.Time
}

const taskColumns = `t.id, t.application_id, t.step_id, t.step_index, t.agency, t.role, t.status, coalesce(t.claimed_by, ''),
	t.claimed_at, t.created_at, t.due_at, t.escalated_at, coalesce(t.decision, ''), coalesce(t.refusal_code, ''),
	coalesce(t.comment, ''), coalesce(t.decided_by, ''), t.decided_at, a.number, a.service_id, a.service_version, a.submitted_at`

func scanTask(r pgx.Row) (Task, error) {
	var t Task
	err := r.Scan(&t.ID, &t.ApplicationID, &t.StepID, &t.StepIndex, &t.Agency, &t.Role, &t.Status, &t.ClaimedBy,
		&t.ClaimedAt, &t.CreatedAt, &t.DueAt, &t.EscalatedAt, &t.Decision, &t.RefusalCode,
		&t.Comment, &t.DecidedBy, &t.DecidedAt, &t.ApplicationNumber, &t.ServiceID, &t.ServiceVersion, &t.SubmittedAt)
	return t, err
}

// openTask creates the task of review step i, with its deadline timer.
func (e *Engine) openTask(ctx context.Context, tx pgx.Tx, app uuid.UUID, i int, s servicedef.Step, agency string) (Task, error) {
	now := e.cfg.Clock.Now()
	due, err := e.deadline(ctx, now, s.Deadline)
	if err != nil {
		return Task{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Task{}, err
	}
	var escalateTo *string
	if s.EscalateTo != "" {
		escalateTo = &s.EscalateTo
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO task (id, application_id, step_id, step_index, agency, role, escalate_to, status, created_at, due_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9)`, id, app, s.ID, i, agency, s.Role, escalateTo, now, due)
	b.Queue(`INSERT INTO process_timer (application_id, kind, task_id, due_at) VALUES ($1, 'task_deadline', $2, $3)`, app, id, due)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return Task{}, fmt.Errorf("open task: %w", err)
	}
	if err := outbox.Emit(ctx, tx, now, "process.task.opened", id.String(), map[string]any{
		"task_id": id, "application_id": app, "agency": agency, "role": s.Role, "due_at": due,
	}); err != nil {
		return Task{}, err
	}
	return Task{ID: id, ApplicationID: app, StepID: s.ID, StepIndex: i, Agency: agency, Role: s.Role, Status: TaskOpen, CreatedAt: now, DueAt: due}, nil
}

// InboxFilter selects tasks of an officer's inbox.
type InboxFilter struct {
	// Status is open, claimed, mine (claimed by the caller) or "" for open
	// and claimed.
	Status  string
	Role    string // one of the caller's roles; "" for all of them
	Service string
	Overdue bool
	Limit   int // default 50, at most 200
	// After continues a list after the task with this id (keyset paging).
	After *uuid.UUID
}

// Inbox lists the open and claimed tasks of the officer's agency and roles,
// the closest deadline first.
func (e *Engine) Inbox(ctx context.Context, who identity.Principal, f InboxFilter) ([]Task, error) {
	if who.Kind != identity.Officer {
		return nil, apierr.New(apierr.Forbidden)
	}
	roles := who.Roles
	if f.Role != "" {
		if !who.HasRole(who.Agency, f.Role) {
			return nil, apierr.New(apierr.Validation, apierr.FieldError{Path: "/role", Code: apierr.FieldOneOf})
		}
		roles = []string{f.Role}
	}
	statuses := []string{TaskOpen, TaskClaimed}
	claimedBy := ""
	switch f.Status {
	case "":
	case TaskOpen, TaskClaimed:
		statuses = []string{f.Status}
	case "mine":
		statuses, claimedBy = []string{TaskClaimed}, who.Subject
	default:
		return nil, apierr.New(apierr.Validation, apierr.FieldError{Path: "/status", Code: apierr.FieldOneOf})
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 200)
	var afterDue time.Time
	var afterID uuid.UUID
	if f.After != nil {
		err := e.pool.QueryRow(ctx, `SELECT due_at, id FROM task WHERE id = $1`, *f.After).Scan(&afterDue, &afterID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, apierr.New(apierr.Validation, apierr.FieldError{Path: "/after", Code: apierr.FieldFormat})
		}
		if err != nil {
			return nil, err
		}
	}
	rows, err := e.pool.Query(ctx, `SELECT `+taskColumns+` FROM task t JOIN application a ON a.id = t.application_id
		WHERE t.agency = $1 AND t.role = ANY($2) AND t.status = ANY($3)
		  AND ($4 = '' OR t.claimed_by = $4) AND ($5 = '' OR a.service_id = $5) AND (NOT $6 OR t.due_at < $7)
		  AND ($8::uuid IS NULL OR (t.due_at, t.id) > ($9, $8))
		ORDER BY t.due_at, t.id LIMIT $10`,
		who.Agency, roles, statuses, claimedBy, f.Service, f.Overdue, e.cfg.Clock.Now(), f.After, afterDue, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Task, error) { return scanTask(r) })
}

// entitled reports whether the officer may see and work task t.
func entitled(who identity.Principal, t Task) bool {
	return who.HasRole(t.Agency, t.Role)
}

// loadTask reads a task the officer is entitled to; with lock, it locks the
// application first, then the task, in the order every writer takes them.
func (e *Engine) loadTask(ctx context.Context, q pgx.Tx, who identity.Principal, id uuid.UUID, lock bool) (Task, error) {
	if who.Kind != identity.Officer {
		return Task{}, apierr.New(apierr.Forbidden)
	}
	if lock {
		var app uuid.UUID
		err := q.QueryRow(ctx, `SELECT application_id FROM task WHERE id = $1`, id).Scan(&app)
		if errors.Is(err, pgx.ErrNoRows) {
			return Task{}, apierr.New(apierr.TaskNotFound)
		}
		if err != nil {
			return Task{}, err
		}
		if _, err := q.Exec(ctx, `SELECT 1 FROM application WHERE id = $1 FOR NO KEY UPDATE`, app); err != nil {
			return Task{}, err
		}
	}
	sql := `SELECT ` + taskColumns + ` FROM task t JOIN application a ON a.id = t.application_id WHERE t.id = $1`
	if lock {
		sql += ` FOR NO KEY UPDATE OF t`
	}
	t, err := scanTask(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Task{}, apierr.New(apierr.TaskNotFound)
	}
	if err != nil {
		return Task{}, fmt.Errorf("read task: %w", err)
	}
	// Another agency's or role's task does not exist for this officer.
	if !entitled(who, t) {
		return Task{}, apierr.New(apierr.TaskNotFound)
	}
	return t, nil
}

// officerAudit records an officer's action on an application's data.
func (e *Engine) officerAudit(ctx context.Context, tx pgx.Tx, who identity.Principal, action string, app uuid.UUID, requestID string) error {
	var applicant, serviceID string
	if err := tx.QueryRow(ctx, `SELECT applicant_iin, service_id FROM application WHERE id = $1`, app).Scan(&applicant, &serviceID); err != nil {
		return err
	}
	return audit.Record(ctx, tx, audit.Event{
		At: e.cfg.Clock.Now(), Actor: who.Actor(), Action: action, SubjectIIN: applicant,
		Object: "application:" + app.String(), Purpose: "service:" + serviceID + "; review", RequestID: requestID,
	})
}

// Claim takes an open task for the officer. Claiming one's own task again
// is a no-op.
func (e *Engine) Claim(ctx context.Context, who identity.Principal, id uuid.UUID, requestID string) (Task, error) {
	var out Task
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		t, err := e.loadTask(ctx, tx, who, id, true)
		if err != nil {
			return err
		}
		switch {
		case t.Status == TaskClaimed && t.ClaimedBy == who.Subject:
			out = t
			return nil
		case t.Status == TaskClaimed:
			return apierr.New(apierr.TaskClaimed)
		case t.Status != TaskOpen:
			return apierr.New(apierr.TaskClosed)
		}
		now := e.cfg.Clock.Now()
		if _, err := tx.Exec(ctx, `UPDATE task SET status = 'claimed', claimed_by = $2, claimed_at = $3 WHERE id = $1`, id, who.Subject, now); err != nil {
			return err
		}
		if err := addStep(ctx, tx, t.ApplicationID, step{Name: "review.claimed", Actor: who.Actor(), Start: now, End: now, Outcome: "ok",
			Detail: map[string]any{"task_id": id}}); err != nil {
			return err
		}
		if err := e.officerAudit(ctx, tx, who, "process.task.claim", t.ApplicationID, requestID); err != nil {
			return err
		}
		t.Status, t.ClaimedBy, t.ClaimedAt = TaskClaimed, who.Subject, &now
		out = t
		return nil
	})
	return out, err
}

// Release puts a task the officer claimed back into the queue.
func (e *Engine) Release(ctx context.Context, who identity.Principal, id uuid.UUID, requestID string) (Task, error) {
	var out Task
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		t, err := e.loadTask(ctx, tx, who, id, true)
		if err != nil {
			return err
		}
		if err := mustHold(t, who); err != nil {
			return err
		}
		now := e.cfg.Clock.Now()
		if _, err := tx.Exec(ctx, `UPDATE task SET status = 'open', claimed_by = NULL, claimed_at = NULL WHERE id = $1`, id); err != nil {
			return err
		}
		if err := addStep(ctx, tx, t.ApplicationID, step{Name: "review.released", Actor: who.Actor(), Start: now, End: now, Outcome: "ok",
			Detail: map[string]any{"task_id": id}}); err != nil {
			return err
		}
		if err := e.officerAudit(ctx, tx, who, "process.task.release", t.ApplicationID, requestID); err != nil {
			return err
		}
		t.Status, t.ClaimedBy, t.ClaimedAt = TaskOpen, "", nil
		out = t
		return nil
	})
	return out, err
}

// mustHold checks that the officer holds task t.
func mustHold(t Task, who identity.Principal) error {
	switch {
	case t.Status == TaskDone || t.Status == TaskCancelled:
		return apierr.New(apierr.TaskClosed)
	case t.Status != TaskClaimed:
		return apierr.New(apierr.TaskNotClaimed)
	case t.ClaimedBy != who.Subject:
		return apierr.New(apierr.TaskClaimed)
	}
	return nil
}

// Attachment is a file an officer attaches to a decision.
type Attachment struct {
	Name      string
	MediaType string
	Content   []byte
}

// Limits on what a decision may carry.
const (
	maxComment         = 4000
	maxAttachments     = 3
	maxAttachmentBytes = 2 << 20
)

var attachmentTypes = []string{"application/pdf", "image/jpeg", "image/png"}

// Limits on a decision's attachments, for forms that take them: at most
// MaxAttachments files of at most MaxAttachmentBytes each, of the media
// types AttachmentTypes lists.
const (
	MaxAttachments     = maxAttachments
	MaxAttachmentBytes = maxAttachmentBytes
)

// AttachmentTypes are the media types a decision's attachment may have.
func AttachmentTypes() []string { return slices.Clone(attachmentTypes) }

// DecideRequest is an officer's decision on a task.
type DecideRequest struct {
	// Decision is approve, refuse or return, as the review step allows.
	Decision string
	// Refusal is the refusal code when refusing; the step's only refusal
	// when empty.
	Refusal string
	// Comment explains the decision; a return must say what to correct.
	Comment     string
	Attachments []Attachment
	// Outputs are what the officer records when approving, as the step's
	// outputs schema asks.
	Outputs   map[string]any
	RequestID string
}

// Decide records the officer's decision on a task they hold and moves the
// application on: approve continues the flow, refuse decides it, return
// asks the citizen for a correction.
func (e *Engine) Decide(ctx context.Context, who identity.Principal, id uuid.UUID, req DecideRequest) (Task, error) {
	var serviceID string
	var version int
	err := e.pool.QueryRow(ctx, `SELECT a.service_id, a.service_version FROM task t JOIN application a ON a.id = t.application_id WHERE t.id = $1`, id).
		Scan(&serviceID, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return Task{}, apierr.New(apierr.TaskNotFound)
	}
	if err != nil {
		return Task{}, err
	}
	plan, err := e.services.Plan(ctx, serviceID, version)
	if err != nil {
		return Task{}, err
	}
	var out Task
	err = e.inTxWaking(ctx, func(tx pgx.Tx) error {
		t, err := e.loadTask(ctx, tx, who, id, true)
		if err != nil {
			return err
		}
		if err := mustHold(t, who); err != nil {
			return err
		}
		if t.StepIndex < 0 || t.StepIndex >= len(plan.Steps) {
			return fmt.Errorf("task %s names step %d, which service %s v%d does not have", id, t.StepIndex, serviceID, version)
		}
		ps := plan.Steps[t.StepIndex]
		decision, refusal, fields := checkDecision(ps.Step, req)
		if decision == "approve" {
			for _, ie := range plan.CheckOutputs(t.StepIndex, req.Outputs) {
				fields = append(fields, apierr.FieldError{Path: "/outputs" + ie.Path, Code: apierr.Code(ie.Code)})
			}
		} else if len(req.Outputs) > 0 {
			fields = append(fields, apierr.FieldError{Path: "/outputs", Code: apierr.FieldUnknown})
		}
		if len(fields) > 0 {
			return apierr.New(apierr.Validation, fields...)
		}
		now := e.cfg.Clock.Now()
		var refusalCode *string
		if refusal != "" {
			refusalCode = &refusal
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE task SET status = 'done', claimed_by = NULL, decision = $2, refusal_code = $3, comment = $4, decided_by = $5, decided_at = $6 WHERE id = $1`,
			id, decision, refusalCode, req.Comment, who.Subject, now)
		b.Queue(`DELETE FROM process_timer WHERE task_id = $1`, id)
		for _, a := range req.Attachments {
			aid, err := uuid.NewV7()
			if err != nil {
				return err
			}
			sum := sha256.Sum256(a.Content)
			b.Queue(`INSERT INTO task_attachment (id, task_id, name, media_type, size, sha256, content) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				aid, id, a.Name, a.MediaType, len(a.Content), sum[:], a.Content)
		}
		detail := map[string]any{"task_id": id, "step": t.StepID}
		if refusal != "" {
			detail["refusal"] = refusal
		}
		if req.Comment != "" {
			detail["comment"] = req.Comment
		}
		queueStep(b, t.ApplicationID, step{Name: "review", Actor: who.Actor(), Start: t.CreatedAt, End: now, Outcome: decision, Detail: detail})
		switch decision {
		case "approve":
			b.Queue(`UPDATE application SET status = 'submitted', cursor = $2, updated_at = $3,
				review = CASE WHEN $5::jsonb IS NULL THEN review ELSE coalesce(review, '{}') || jsonb_build_object($4::text, $5::jsonb) END
				WHERE id = $1`, t.ApplicationID, ps.Next, now, t.StepID, outputsOrNil(req.Outputs))
		case "refuse":
			queueStep(b, t.ApplicationID, step{Name: StatusRefused, Actor: "system", Start: now, End: now, Outcome: "ok"})
			b.Queue(`UPDATE application SET status = 'refused', refusal_code = $2, cursor = -1, decided_at = $3, updated_at = $3 WHERE id = $1`,
				t.ApplicationID, refusal, now)
		case "return":
			queueStep(b, t.ApplicationID, step{Name: StatusReturned, Actor: who.Actor(), Start: now, End: now, Outcome: "ok",
				Detail: map[string]any{"reason": req.Comment}})
			b.Queue(`UPDATE application SET status = 'returned', updated_at = $2 WHERE id = $1`, t.ApplicationID, now)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("record decision: %w", err)
		}
		switch decision {
		case "approve":
			err = e.queue(ctx, tx, t.ApplicationID)
		case "refuse":
			err = emitDecided(ctx, tx, now, t.ApplicationID, serviceID, StatusRefused, refusalCode, nil)
		case "return":
			err = e.emitReturned(ctx, tx, now, t.ApplicationID, req.Comment)
		}
		if err != nil {
			return err
		}
		if err := outbox.Emit(ctx, tx, now, "process.task.decided", id.String(), map[string]any{
			"task_id": id, "application_id": t.ApplicationID, "decision": decision, "refusal_code": refusalCode, "officer": who.Subject,
		}); err != nil {
			return err
		}
		if err := e.officerAudit(ctx, tx, who, "process.task.decide", t.ApplicationID, req.RequestID); err != nil {
			return err
		}
		t.Status, t.ClaimedBy, t.Decision, t.RefusalCode, t.Comment, t.DecidedBy, t.DecidedAt = TaskDone, "", decision, refusal, req.Comment, who.Subject, &now
		out = t
		return nil
	})
	if err == nil && out.Decision == "refuse" {
		e.metrics.decided.WithLabelValues(serviceID, StatusRefused).Inc()
	}
	return out, err
}

// emitReturned tells the citizen what to correct.
func (e *Engine) emitReturned(ctx context.Context, tx pgx.Tx, now time.Time, app uuid.UUID, reason string) error {
	var applicant string
	if err := tx.QueryRow(ctx, `SELECT applicant_iin FROM application WHERE id = $1`, app).Scan(&applicant); err != nil {
		return err
	}
	if err := outbox.Emit(ctx, tx, now, "process.application.returned", app.String(), map[string]any{
		"application_id": app, "reason": reason, "to_iin": applicant,
	}); err != nil {
		return err
	}
	return outbox.Emit(ctx, tx, now, "notify.message.requested", app.String(), map[string]any{
		"application_id": app, "step": "returned", "to_iin": applicant, "template": "application.returned", "reason": reason,
	})
}

// checkDecision validates an officer's decision against the review step.
// outputsOrNil is what to store of an officer's outputs: nothing when none.
func outputsOrNil(o map[string]any) any {
	if len(o) == 0 {
		return nil
	}
	return o
}

func checkDecision(s servicedef.Step, req DecideRequest) (decision, refusal string, fields []apierr.FieldError) {
	switch {
	case req.Decision == "":
		fields = append(fields, apierr.FieldError{Path: "/decision", Code: apierr.FieldRequired})
	case !slices.Contains(s.Decisions, req.Decision):
		fields = append(fields, apierr.FieldError{Path: "/decision", Code: apierr.FieldOneOf})
	case req.Decision != "refuse" && req.Refusal != "":
		fields = append(fields, apierr.FieldError{Path: "/refusal", Code: apierr.FieldUnknown})
	case req.Decision == "refuse" && req.Refusal == "" && len(s.Refusals) != 1:
		fields = append(fields, apierr.FieldError{Path: "/refusal", Code: apierr.FieldRequired})
	case req.Decision == "refuse" && req.Refusal != "" && !slices.Contains(s.Refusals, req.Refusal):
		fields = append(fields, apierr.FieldError{Path: "/refusal", Code: apierr.FieldOneOf})
	default:
		decision, refusal = req.Decision, req.Refusal
		if decision == "refuse" && refusal == "" {
			refusal = s.Refusals[0]
		}
	}
	if decision == "return" && strings.TrimSpace(req.Comment) == "" {
		fields = append(fields, apierr.FieldError{Path: "/comment", Code: apierr.FieldRequired})
	}
	if utf8.RuneCountInString(req.Comment) > maxComment {
		fields = append(fields, apierr.FieldError{Path: "/comment", Code: apierr.FieldTooLong})
	}
	if len(req.Attachments) > maxAttachments {
		fields = append(fields, apierr.FieldError{Path: "/attachments", Code: apierr.FieldTooLong})
	}
	for i, a := range req.Attachments {
		at := fmt.Sprintf("/attachments/%d", i)
		if strings.TrimSpace(a.Name) == "" || utf8.RuneCountInString(a.Name) > 200 || strings.ContainsAny(a.Name, "/\\\x00") {
			fields = append(fields, apierr.FieldError{Path: at + "/name", Code: apierr.FieldFormat})
		}
		if !slices.Contains(attachmentTypes, a.MediaType) {
			fields = append(fields, apierr.FieldError{Path: at + "/media_type", Code: apierr.FieldOneOf})
		}
		if len(a.Content) == 0 {
			fields = append(fields, apierr.FieldError{Path: at + "/content", Code: apierr.FieldRequired})
		} else if len(a.Content) > maxAttachmentBytes {
			fields = append(fields, apierr.FieldError{Path: at + "/content", Code: apierr.FieldTooLong})
		}
	}
	return decision, refusal, fields
}
