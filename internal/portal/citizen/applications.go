package citizen

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/portal"
	"github.com/ortaq/ortaq/internal/process"
	"github.com/ortaq/ortaq/internal/web"
)

// pageSize is how many applications one page of the list shows.
const pageSize = 20

type listData struct {
	Applications []process.Summary
	// Next is the link to older applications, when there may be more.
	Next string
	// First is set on a later page: the link back to the newest.
	First bool
}

func (c *Citizen) list(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if ok, t, s, err := citizenOnly(w, r, pg, "/applications"); !ok {
		return t, s, err
	}
	var before time.Time
	if b := r.URL.Query().Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			return "", 0, apierr.New(apierr.Validation, apierr.FieldError{Path: "/before", Code: apierr.FieldFormat})
		}
		before = t
	}
	apps, err := c.deps.Engine.ListByApplicant(r.Context(), pg.Who.Subject, pg.Lang, before, pageSize)
	if err != nil {
		return "", 0, err
	}
	data := listData{Applications: apps, First: !before.IsZero()}
	if len(apps) == pageSize {
		data.Next = "/applications?before=" + url.QueryEscape(apps[len(apps)-1].SubmittedAt.UTC().Format(time.RFC3339Nano))
	}
	pg.Title = i18n.T(pg.Lang, "portal.citizen.applications.title")
	pg.Data = data
	return "applications", http.StatusOK, nil
}

type applicationData struct {
	process.View
	// Working: automatic steps are running; the page refreshes itself.
	Working bool
	// Mine: the signed-in citizen applied (an officer with the task may see
	// the page too, without the citizen's actions).
	Mine        bool
	CanWithdraw bool
	// Correction is the form to correct a returned application.
	Correction *form
}

// view reads the application the visitor may see; anyone else, and a
// malformed id, get "not found".
func (c *Citizen) view(r *http.Request, pg *portal.Page) (uuid.UUID, process.View, error) {
	if c.deps.CanRead != nil {
		if err := c.deps.CanRead(r.Context(), *pg.Who, true, "application", r.PathValue("id")); err != nil {
			return uuid.Nil, process.View{}, err
		}
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return id, process.View{}, apierr.New(apierr.ApplicationNotFound)
	}
	v, err := c.deps.Engine.View(r.Context(), id, pg.Lang)
	if errors.Is(err, process.ErrNotFound) {
		return id, v, apierr.New(apierr.ApplicationNotFound)
	}
	return id, v, err
}

func (c *Citizen) application(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if pg.Who == nil {
		return portal.ToLogin(w, r)
	}
	id, v, err := c.view(r, pg)
	if err != nil {
		return "", 0, err
	}
	if v.Status == process.StatusSubmitted {
		// Automatic steps take milliseconds: wait for them here rather than
		// make the page refresh itself (a timed refresh fails WCAG 2.2.1).
		if v, err = c.settled(r, pg, id, v); err != nil {
			return "", 0, err
		}
	}
	data := applicationData{View: v, Working: v.Status == process.StatusSubmitted, Mine: pg.Who.Kind == identity.Citizen}
	data.CanWithdraw = data.Mine && !process.Final(v.Status)
	if data.Mine && v.Status == process.StatusReturned {
		f, err := c.correctionForm(r, pg, id, v, nil)
		if err != nil {
			return "", 0, err
		}
		data.Correction = f
	}
	pg.Title = v.Service.Title
	pg.Data = data
	return "application", http.StatusOK, nil
}

// settleWait bounds how long the status page waits for the engine's
// automatic steps before showing "still working" with a link to look again.
const settleWait = 3 * time.Second

// settled waits, up to settleWait, for a submitted application to leave
// the automatic steps, and returns its view then.
func (c *Citizen) settled(r *http.Request, pg *portal.Page, id uuid.UUID, v process.View) (process.View, error) {
	deadline := time.Now().Add(settleWait)
	for time.Now().Before(deadline) {
		select {
		case <-r.Context().Done():
			return v, nil
		case <-time.After(25 * time.Millisecond):
		}
		app, err := c.deps.Engine.Get(r.Context(), id)
		if err != nil {
			return v, err
		}
		if app.Status != process.StatusSubmitted {
			return c.deps.Engine.View(r.Context(), id, pg.Lang)
		}
	}
	return v, nil
}

// correctionForm is the application's form with what was submitted (or,
// after a failed correction, what was posted).
func (c *Citizen) correctionForm(r *http.Request, pg *portal.Page, id uuid.UUID, v process.View, values url.Values) (*form, error) {
	plan, err := c.deps.Services.Plan(r.Context(), v.Service.ID, v.Service.Version)
	if err != nil {
		return nil, err
	}
	if values == nil {
		inputs, err := c.deps.Engine.Inputs(r.Context(), *pg.Who, id, web.RequestID(r.Context()))
		if err != nil {
			return nil, err
		}
		values = valuesOf(inputs)
	}
	return &form{Lang: pg.Lang, CSRF: pg.CSRF, Action: "/applications/" + id.String() + "/correct", Fields: fields(plan, pg.Who, values)}, nil
}

func (c *Citizen) withdraw(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if ok, t, s, err := citizenOnly(w, r, pg, "/applications"); !ok {
		return t, s, err
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return "", 0, apierr.New(apierr.ApplicationNotFound)
	}
	if err := c.deps.Engine.Withdraw(r.Context(), *pg.Who, id, web.RequestID(r.Context())); err != nil {
		return "", 0, err
	}
	return portal.Redirect(w, r, "/applications/"+id.String())
}

func (c *Citizen) correct(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if ok, t, s, err := citizenOnly(w, r, pg, "/applications"); !ok {
		return t, s, err
	}
	id, v, err := c.view(r, pg)
	if err != nil {
		return "", 0, err
	}
	plan, err := c.deps.Services.Plan(r.Context(), v.Service.ID, v.Service.Version)
	if err != nil {
		return "", 0, err
	}
	values := posted(r)
	inputs := inputsOf(values, plan)
	inputs["iin"] = pg.Who.Subject
	err = c.deps.Engine.Correct(r.Context(), *pg.Who, id, inputs, web.RequestID(r.Context()))
	var e *apierr.Error
	if errors.As(err, &e) && e.Code == apierr.Validation && len(e.Fields) > 0 {
		f, ferr := c.correctionForm(r, pg, id, v, values)
		if ferr != nil {
			return "", 0, ferr
		}
		fieldErrors(pg.Lang, e, f.Fields)
		f.Error = i18n.T(pg.Lang, "portal.citizen.form.errors")
		pg.Title = v.Service.Title
		pg.Data = applicationData{View: v, Mine: true, CanWithdraw: true, Correction: f}
		return "application", http.StatusUnprocessableEntity, nil
	}
	if err != nil {
		return "", 0, err
	}
	return portal.Redirect(w, r, "/applications/"+id.String())
}
