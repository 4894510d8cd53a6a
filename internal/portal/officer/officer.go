package officer

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/portal"
	"github.com/ortaq/ortaq/internal/process"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// Pages are the officer's pages on the engine.
type Pages struct {
	engine   *process.Engine
	services *service.Catalogue
	pages    portal.Templates
}

// New parses the templates; a template error is a programming error. The
// catalogue gives the application's fields and refusals their texts.
func New(engine *process.Engine, services *service.Catalogue) *Pages {
	return &Pages{engine: engine, services: services, pages: portal.ParseTemplates(templateFS, funcs, "inbox", "task")}
}

// Routes mounts the pages on site, and the Inbox menu item for officers.
func (p *Pages) Routes(site *portal.Site) {
	site.AddNav("/officer", "portal.officer.nav.inbox", portal.IsOfficer)
	site.Handle("GET /officer", p.pages, p.inbox)
	site.Handle("GET /officer/tasks/{id}", p.pages, p.task)
	site.Handle("POST /officer/tasks/{id}/claim", p.pages, p.claim)
	site.Handle("POST /officer/tasks/{id}/release", p.pages, p.release)
	site.Handle("POST /officer/tasks/{id}/decision", p.pages, p.decide)
	site.Handle("GET /officer/tasks/{id}/attachments/{attachment}", p.pages, p.attachment)
}

var almaty = time.FixedZone("Asia/Almaty", 5*60*60)

var funcs = template.FuncMap{
	// show renders a value of an application or a registry record as text:
	// a {kk, ru, en} text in the page's language, lists and objects inline.
	"show": show,
	"keys": func(m map[string]any) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	},
	"actor": func(lang i18n.Lang, actor string) string {
		if i18n.Has("actor." + actor) {
			return i18n.T(lang, "actor."+actor)
		}
		return actor
	},
	"inc":  func(i int) int { return i + 1 },
	"date": func(t time.Time) string { return t.In(almaty).Format("02.01.2006 15:04") },
}

func show(lang i18n.Lang, v any) string {
	switch v := v.(type) {
	case nil:
		return "—"
	case string:
		return v
	case bool:
		if v {
			return i18n.T(lang, "portal.officer.yes")
		}
		return i18n.T(lang, "portal.officer.no")
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = show(lang, x)
		}
		return strings.Join(parts, "; ")
	case map[string]any:
		if kk, ok := v["kk"].(string); ok && len(v) <= 3 {
			t := i18n.Text{KK: kk}
			t.RU, _ = v["ru"].(string)
			t.EN, _ = v["en"].(string)
			return t.In(lang)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + show(lang, v[k])
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

// officer returns who may see the officer's pages; anything else answers:
// anonymous visitors go to sign in, others are forbidden.
func officer(w http.ResponseWriter, r *http.Request, pg *portal.Page) (identity.Principal, bool, error) {
	if pg.Who == nil {
		_, _, err := portal.ToLogin(w, r)
		return identity.Principal{}, false, err
	}
	if pg.Who.Kind != identity.Officer {
		return identity.Principal{}, false, apierr.New(apierr.Forbidden)
	}
	return *pg.Who, true, nil
}

// inboxRow is one task of the inbox.
type inboxRow struct {
	process.TaskView
	DueToday bool
}

type inboxData struct {
	Status, Role, Service string
	Overdue               bool
	Roles                 []string
	Statuses              []string
	Rows                  []inboxRow
	// Next is the query of the next page, "" on the last one; First says
	// this is not the first page.
	Next  string
	First string
	// Errors by field (status, role, service, after), and one over the
	// form for the rest.
	Errors    map[string]string
	FormError string
}

// pageSize is the inbox's page: the engine's default.
const pageSize = 50

func (p *Pages) inbox(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	who, ok, err := officer(w, r, pg)
	if !ok {
		return "", 0, err
	}
	q := r.URL.Query()
	d := inboxData{Status: q.Get("status"), Role: q.Get("role"), Service: strings.TrimSpace(q.Get("service")), Overdue: q.Get("overdue") != "",
		Roles: who.Roles, Statuses: []string{process.TaskOpen, process.TaskClaimed, "mine"}, Errors: map[string]string{}}
	pg.Title = i18n.T(pg.Lang, "portal.officer.inbox.title")
	pg.Data = &d
	f := process.InboxFilter{Status: d.Status, Role: d.Role, Service: d.Service, Overdue: d.Overdue, Limit: pageSize}
	if len(d.Service) > 200 {
		d.Errors["service"] = web.ErrorMessage(pg.Lang, apierr.FieldTooLong)
		return "inbox", http.StatusUnprocessableEntity, nil
	}
	if s := q.Get("after"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			d.FormError = web.ErrorMessage(pg.Lang, apierr.FieldFormat)
			return "inbox", http.StatusUnprocessableEntity, nil
		}
		f.After = &id
	}
	tasks, err := p.engine.Inbox(r.Context(), who, f)
	var e *apierr.Error
	if errors.As(err, &e) && e.Code == apierr.Validation {
		for _, fe := range e.Fields {
			name := strings.TrimPrefix(fe.Path, "/")
			if name == "after" {
				d.FormError = web.ErrorMessage(pg.Lang, fe.Code)
				continue
			}
			d.Errors[name] = web.ErrorMessage(pg.Lang, fe.Code)
		}
		return "inbox", http.StatusUnprocessableEntity, nil
	}
	if err != nil {
		return "", 0, err
	}
	now := p.engine.Now().In(almaty)
	for _, t := range tasks {
		v, err := p.engine.DescribeTask(r.Context(), t, pg.Lang)
		if err != nil {
			return "", 0, err
		}
		due := t.DueAt.In(almaty)
		today := !v.Overdue && due.Year() == now.Year() && due.YearDay() == now.YearDay()
		d.Rows = append(d.Rows, inboxRow{TaskView: v, DueToday: today})
	}
	filters := url.Values{}
	for k, v := range map[string]string{"status": d.Status, "role": d.Role, "service": d.Service} {
		if v != "" {
			filters.Set(k, v)
		}
	}
	if d.Overdue {
		filters.Set("overdue", "on")
	}
	if f.After != nil {
		d.First = "/officer?" + filters.Encode()
	}
	if len(tasks) == pageSize {
		filters.Set("after", tasks[len(tasks)-1].ID.String())
		d.Next = "/officer?" + filters.Encode()
	}
	return "inbox", http.StatusOK, nil
}

// outputField is one input of what the step asks the officer to record
// when approving, from the step's outputs schema.
type outputField struct {
	Name     string
	Label    string
	Kind     string // text, number, checkbox, select
	Options  []string
	Required bool
	Value    string
	Error    string
}

// decisionForm is one of the task's decision forms, as posted.
type decisionForm struct {
	Comment   string
	Refusal   string
	Errors    map[string]string // by field: comment, refusal, attachments, decision
	FormError string
}

type taskData struct {
	process.TaskDetail
	Mine, ClaimedByOther bool
	DueToday             bool
	Outputs              []outputField
	// Forms are the decision forms by decision (approve, refuse, return).
	Forms map[string]*decisionForm
	// ActionError is the message of a failed claim, release or decision
	// that is no field's fault (e.g. the task is not claimed).
	ActionError string
	MaxFiles    int
	MaxFileMB   int
	Accept      string
	// Labels are the form's field labels and Refusals' texts the service's
	// refusal messages, in the officer's language, by name and code.
	Labels       map[string]string
	RefusalTexts map[string]string
}

func outputFields(schema map[string]any) []outputField {
	props, _ := schema["properties"].(map[string]any)
	required, _ := schema["required"].([]any)
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []outputField
	for _, n := range names {
		prop, _ := props[n].(map[string]any)
		f := outputField{Name: n, Label: n, Kind: "text", Required: slices.Contains(required, any(n))}
		if t, ok := prop["title"].(string); ok && t != "" {
			f.Label = t
		}
		switch prop["type"] {
		case "integer", "number":
			f.Kind = "number"
		case "boolean":
			f.Kind = "checkbox"
		}
		if enum, ok := prop["enum"].([]any); ok {
			f.Kind = "select"
			for _, v := range enum {
				f.Options = append(f.Options, fmt.Sprint(v))
			}
		}
		out = append(out, f)
	}
	return out
}

// taskID is the task the path names; anything but a UUID names no task.
// officerTask is officer for the pages of one task: it also reads the
// task's id from the path (a malformed one is a task that does not exist).
func officerTask(w http.ResponseWriter, r *http.Request, pg *portal.Page) (identity.Principal, uuid.UUID, bool, error) {
	who, ok, err := officer(w, r, pg)
	if !ok {
		return who, uuid.Nil, false, err
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return who, uuid.Nil, false, apierr.New(apierr.TaskNotFound)
	}
	return who, id, true, nil
}

// load reads the task for its page: the engine audits the read.
func (p *Pages) load(r *http.Request, pg *portal.Page, who identity.Principal, id uuid.UUID) (*taskData, error) {
	d, err := p.engine.TaskDetail(r.Context(), who, id, pg.Lang, web.RequestID(r.Context()))
	if err != nil {
		return nil, err
	}
	now := p.engine.Now().In(almaty)
	due := d.DueAt.In(almaty)
	data := &taskData{TaskDetail: d,
		Mine:           d.Status == process.TaskClaimed && d.ClaimedBy == who.Subject,
		ClaimedByOther: d.Status == process.TaskClaimed && d.ClaimedBy != who.Subject,
		DueToday:       !d.Overdue && d.Status != process.TaskDone && due.Year() == now.Year() && due.YearDay() == now.YearDay(),
		Outputs:        outputFields(d.Outputs),
		Forms:          map[string]*decisionForm{},
		MaxFiles:       process.MaxAttachments, MaxFileMB: process.MaxAttachmentBytes >> 20,
		Accept: strings.Join(process.AttachmentTypes(), ","),
	}
	for _, dec := range d.Decisions {
		data.Forms[dec] = &decisionForm{Errors: map[string]string{}}
	}
	plan, err := p.services.Plan(r.Context(), d.Application.Service.ID, d.Application.Service.Version)
	if err != nil {
		return nil, err
	}
	data.Labels, data.RefusalTexts = map[string]string{}, map[string]string{}
	for _, f := range plan.File.Form.Fields {
		data.Labels[f.Name] = f.Label.Text.In(pg.Lang)
	}
	for code, text := range plan.File.Texts.Refusals {
		data.RefusalTexts[code] = text.Text.In(pg.Lang)
	}
	pg.Title = i18n.T(pg.Lang, "portal.officer.task.title", d.Application.Number)
	pg.Data = data
	return data, nil
}

func (p *Pages) task(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	who, id, ok, err := officerTask(w, r, pg)
	if !ok {
		return "", 0, err
	}
	if _, err := p.load(r, pg, who, id); err != nil {
		return "", 0, err
	}
	return "task", http.StatusOK, nil
}

// actionFailed shows the task again with the message of a failed action
// that is no field's fault; a task the officer may not see stays an error
// page.
func (p *Pages) actionFailed(r *http.Request, pg *portal.Page, who identity.Principal, id uuid.UUID, err error) (string, int, error) {
	e := apierr.From(err)
	if e.Status() >= 500 || e.Code == apierr.TaskNotFound || e.Code == apierr.Forbidden {
		return "", 0, err
	}
	d, lerr := p.load(r, pg, who, id)
	if lerr != nil {
		return "", 0, lerr
	}
	d.ActionError = web.ErrorMessage(pg.Lang, e.Code)
	return "task", e.Status(), nil
}

func (p *Pages) claim(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	return p.act(w, r, pg, p.engine.Claim)
}

func (p *Pages) release(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	return p.act(w, r, pg, p.engine.Release)
}

func (p *Pages) act(w http.ResponseWriter, r *http.Request, pg *portal.Page,
	do func(context.Context, identity.Principal, uuid.UUID, string) (process.Task, error)) (string, int, error) {
	who, id, ok, err := officerTask(w, r, pg)
	if !ok {
		return "", 0, err
	}
	if _, err := do(r.Context(), who, id, web.RequestID(r.Context())); err != nil {
		return p.actionFailed(r, pg, who, id, err)
	}
	return portal.Redirect(w, r, "/officer/tasks/"+id.String())
}

func (p *Pages) decide(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	who, id, ok, err := officerTask(w, r, pg)
	if !ok {
		return "", 0, err
	}
	decision := r.PostFormValue("decision")
	req := process.DecideRequest{Decision: decision, Refusal: r.PostFormValue("refusal"), Comment: r.PostFormValue("comment"),
		RequestID: web.RequestID(r.Context())}
	// The files: the engine checks their number, type and size; the media
	// type is what the content is, not what the browser says.
	var fileErr string
	if r.MultipartForm != nil {
		for _, fh := range r.MultipartForm.File["attachments"] {
			if fh.Filename == "" && fh.Size == 0 {
				continue // the empty part of a file input left empty
			}
			a, err := readAttachment(fh)
			if err != nil {
				fileErr = web.ErrorMessage(pg.Lang, apierr.FieldTooLong)
				break
			}
			req.Attachments = append(req.Attachments, a)
		}
	}
	var outputs []outputField
	if decision == "approve" {
		if d, err := p.engine.TaskDetail(r.Context(), who, id, pg.Lang, web.RequestID(r.Context())); err == nil {
			outputs = outputFields(d.Outputs)
		} else {
			return "", 0, err
		}
		if len(outputs) > 0 {
			req.Outputs = map[string]any{}
		}
		for i := range outputs {
			f := &outputs[i]
			raw := strings.TrimSpace(r.PostFormValue("out." + f.Name))
			f.Value = raw
			switch {
			case f.Kind == "checkbox":
				req.Outputs[f.Name] = raw != ""
			case raw == "":
			case f.Kind == "number":
				if n, err := strconv.ParseFloat(raw, 64); err == nil {
					req.Outputs[f.Name] = n
				} else {
					req.Outputs[f.Name] = raw // the engine names the field
				}
			default:
				req.Outputs[f.Name] = raw
			}
		}
	}
	var t process.Task
	if fileErr == "" {
		t, err = p.engine.Decide(r.Context(), who, id, req)
		if err == nil {
			return portal.Redirect(w, r, "/officer/tasks/"+t.ID.String())
		}
	} else {
		err = apierr.New(apierr.Validation)
	}
	e := apierr.From(err)
	if e.Code != apierr.Validation {
		return p.actionFailed(r, pg, who, id, err)
	}
	// The form again, what was typed kept, each error next to its field.
	d, err := p.load(r, pg, who, id)
	if err != nil {
		return "", 0, err
	}
	form, ok := d.Forms[decision]
	if !ok {
		d.ActionError = web.ErrorMessage(pg.Lang, apierr.FieldOneOf)
		return "task", http.StatusUnprocessableEntity, nil
	}
	form.Comment, form.Refusal = req.Comment, req.Refusal
	if fileErr != "" {
		form.Errors["attachments"] = fileErr
	}
	if decision == "approve" {
		d.Outputs = outputs
	}
	for _, fe := range e.Fields {
		msg := web.ErrorMessage(pg.Lang, fe.Code)
		switch path := fe.Path; {
		case strings.HasPrefix(path, "/outputs/"):
			name, _, _ := strings.Cut(strings.TrimPrefix(path, "/outputs/"), "/")
			found := false
			for i := range d.Outputs {
				if d.Outputs[i].Name == name && d.Outputs[i].Error == "" {
					d.Outputs[i].Error, found = msg, true
				}
			}
			if !found && form.FormError == "" {
				form.FormError = msg
			}
		case strings.HasPrefix(path, "/attachments"):
			if form.Errors["attachments"] == "" {
				form.Errors["attachments"] = msg
			}
		case path == "/comment" || path == "/refusal":
			if form.Errors[path[1:]] == "" {
				form.Errors[path[1:]] = msg
			}
		default:
			if form.FormError == "" {
				form.FormError = msg
			}
		}
	}
	return "task", http.StatusUnprocessableEntity, nil
}

// readAttachment reads one uploaded file, refusing one over the engine's
// limit without reading it all.
func readAttachment(fh *multipart.FileHeader) (process.Attachment, error) {
	if fh.Size > process.MaxAttachmentBytes {
		return process.Attachment{}, errTooLarge
	}
	f, err := fh.Open()
	if err != nil {
		return process.Attachment{}, err
	}
	defer f.Close()
	content, err := io.ReadAll(io.LimitReader(f, process.MaxAttachmentBytes+1))
	if err != nil {
		return process.Attachment{}, err
	}
	if len(content) > process.MaxAttachmentBytes {
		return process.Attachment{}, errTooLarge
	}
	mt := http.DetectContentType(content)
	mt, _, _ = strings.Cut(mt, ";")
	return process.Attachment{Name: fh.Filename, MediaType: mt, Content: content}, nil
}

var errTooLarge = errors.New("attachment too large")

// attachment sends a file of the task's application to an officer
// entitled to the task; the engine audits the read.
func (p *Pages) attachment(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	who, id, ok, err := officerTask(w, r, pg)
	if !ok {
		return "", 0, err
	}
	aid, err := uuid.Parse(r.PathValue("attachment"))
	if err != nil {
		return "", 0, apierr.New(apierr.TaskNotFound)
	}
	a, err := p.engine.TaskAttachment(r.Context(), who, id, aid, web.RequestID(r.Context()))
	if err != nil {
		return "", 0, err
	}
	w.Header().Set("Content-Type", a.MediaType)
	w.Header().Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(a.Name))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(a.Content)
	return "", 0, nil
}
