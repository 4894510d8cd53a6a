package citizen

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/portal"
	"github.com/ortaq/ortaq/internal/process"
	"github.com/ortaq/ortaq/internal/web"
)

// citizenOnly sends anonymous visitors to sign in (and back to next) and
// refuses anyone who is not a citizen.
func citizenOnly(w http.ResponseWriter, r *http.Request, pg *portal.Page, next string) (bool, string, int, error) {
	if pg.Who == nil {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
		return false, "", 0, nil
	}
	if pg.Who.Kind != identity.Citizen {
		return false, "", 0, apierr.New(apierr.Forbidden)
	}
	return true, "", 0, nil
}

// posted is the form's values as posted, without the page's own fields.
func posted(r *http.Request) url.Values {
	v := url.Values{}
	for name, vals := range r.PostForm {
		if name != "csrf" && name != "idempotency_key" {
			v[name] = vals
		}
	}
	return v
}

// again shows the service page with the form as posted and the errors.
func (c *Citizen) again(w http.ResponseWriter, r *http.Request, pg *portal.Page, values url.Values, key string, status int, fill func(*form)) (string, int, error) {
	def, plan, err := c.load(r.Context(), r.PathValue("id"))
	if err != nil {
		return "", 0, err
	}
	sum, err := c.deps.Services.Summarise(r.Context(), def, c.deps.Agencies, pg.Lang)
	if err != nil {
		return "", 0, err
	}
	f := &form{Lang: pg.Lang, CSRF: pg.CSRF, Action: "/services/" + def.ID + "/apply", DraftAction: "/services/" + def.ID + "/draft", IdempotencyKey: key, Draft: true, Fields: fields(plan, pg.Who, values)}
	fill(f)
	data := serviceData{Summary: sum, Category: def.Category, Legal: def.LegalDays, Fees: sum.Fees, Data: c.dataNeeds(plan),
		Needs: fields(plan, nil, nil), Form: f, Target: def.TargetDuration}
	if !slices.Contains(categories, data.Category) {
		data.Category = "other"
	}
	pg.Title = sum.Title
	pg.Data = data
	return "service", status, nil
}

func (c *Citizen) apply(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	id := r.PathValue("id")
	if ok, t, s, err := citizenOnly(w, r, pg, "/services/"+id); !ok {
		return t, s, err
	}
	_, plan, err := c.load(r.Context(), id)
	if err != nil {
		return "", 0, err
	}
	key := r.PostFormValue("idempotency_key")
	if !process.ValidIdempotencyKey(key) {
		key = newKey()
	}
	values := posted(r)
	inputs := inputsOf(values, plan)
	inputs["iin"] = pg.Who.Subject // the signed-in citizen applies for themselves
	app, _, err := c.deps.Engine.Submit(r.Context(), process.SubmitRequest{
		ServiceID: id, Inputs: inputs, IdempotencyKey: key, RequestID: web.RequestID(r.Context()),
	})
	var e *apierr.Error
	if errors.As(err, &e) && e.Code == apierr.Validation && len(e.Fields) > 0 {
		return c.again(w, r, pg, values, key, http.StatusUnprocessableEntity, func(f *form) {
			fieldErrors(pg.Lang, e, f.Fields)
			f.Error = i18n.T(pg.Lang, "portal.citizen.form.errors")
		})
	}
	if err != nil {
		return "", 0, err
	}
	if err := c.drafts.delete(r.Context(), pg.Who.Subject, id); err != nil {
		return "", 0, err
	}
	return portal.Redirect(w, r, "/applications/"+app.ID.String())
}

func (c *Citizen) saveDraft(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	id := r.PathValue("id")
	if ok, t, s, err := citizenOnly(w, r, pg, "/services/"+id); !ok {
		return t, s, err
	}
	if _, _, err := c.load(r.Context(), id); err != nil {
		return "", 0, err
	}
	values := posted(r)
	values.Del("iin") // always the signed-in citizen's
	key := r.PostFormValue("idempotency_key")
	if !process.ValidIdempotencyKey(key) {
		key = newKey()
	}
	err := c.drafts.save(r.Context(), pg.Who.Subject, id, values, c.deps.Now())
	if errors.Is(err, errDraftTooLarge) {
		return c.again(w, r, pg, values, key, http.StatusRequestEntityTooLarge, func(f *form) {
			f.Error = i18n.T(pg.Lang, "portal.citizen.draft.too_large")
		})
	}
	if err != nil {
		return "", 0, err
	}
	return portal.Redirect(w, r, "/services/"+id+"?draft=saved")
}
