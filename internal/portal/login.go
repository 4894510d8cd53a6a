package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/web"
)

// loginData is what the sign-in page shows: the password step, or the code
// step of a started sign-in.
type loginData struct {
	Code      bool   // the code step
	Continue  string // signed in: where to go on (a relying party)
	External  bool   // citizens may sign in with the external provider
	Officer   bool
	Subject   string
	Next      string
	Challenge string
	PhoneHint string
	// Error is the form's message; the field errors name their field.
	Error         string
	SubjectError  string
	PasswordError string
	CodeError     string
}

func (p *Portal) signInOn() error {
	if p.deps.Logins == nil || p.deps.Sessions == nil {
		return apierr.New(apierr.RouteNotFound)
	}
	return nil
}

func (p *Portal) loginForm(w http.ResponseWriter, r *http.Request, v *Page) (string, int, error) {
	if err := p.signInOn(); err != nil {
		return "", 0, err
	}
	v.Title = i18n.T(v.Lang, "portal.login.title")
	v.Data = loginData{Next: SafeNext(r.URL.Query().Get("next")), Officer: r.URL.Query().Get("kind") == "officer", External: p.deps.ExternalLogin}
	return "login", http.StatusOK, nil
}

// fieldErrors puts an error's field messages next to their fields, and its
// message over the form.
func fieldErrors(lang i18n.Lang, err error, d *loginData) {
	e := apierr.From(err)
	if e.Code != apierr.Validation {
		d.Error = web.ErrorMessage(lang, e.Code)
	}
	for _, f := range e.Fields {
		msg := web.ErrorMessage(lang, f.Code)
		switch f.Path {
		case "/subject":
			d.SubjectError = msg
		case "/password":
			d.PasswordError = msg
		case "/code":
			d.CodeError = web.ErrorMessage(lang, e.Code)
			if e.Code == apierr.Validation {
				d.CodeError = msg
			}
			d.Error = ""
		}
	}
}

func (p *Portal) login(w http.ResponseWriter, r *http.Request, v *Page) (string, int, error) {
	if err := p.signInOn(); err != nil {
		return "", 0, err
	}
	d := loginData{Next: SafeNext(r.PostFormValue("next")), Officer: r.PostFormValue("kind") == "officer",
		Subject: strings.TrimSpace(r.PostFormValue("subject")), External: p.deps.ExternalLogin}
	kind := identity.Citizen
	if d.Officer {
		kind = identity.Officer
	}
	v.Title = i18n.T(v.Lang, "portal.login.title")
	v.Data = &d
	ch, err := p.deps.Logins.Start(r.Context(), identity.Attempt{Kind: kind, Subject: d.Subject, Password: r.PostFormValue("password"),
		IP: identity.ClientIP(r), Lang: v.Lang, RequestID: web.RequestID(r.Context())})
	var e *apierr.Error
	if errors.As(err, &e) && e.Status() < 500 {
		fieldErrors(v.Lang, err, &d)
		return "login", e.Status(), nil
	}
	if err != nil {
		return "", 0, err
	}
	d.Code, d.Challenge, d.PhoneHint = true, ch.Handle, ch.PhoneHint
	return "login", http.StatusOK, nil
}

func (p *Portal) loginCode(w http.ResponseWriter, r *http.Request, v *Page) (string, int, error) {
	if err := p.signInOn(); err != nil {
		return "", 0, err
	}
	d := loginData{Code: true, Next: SafeNext(r.PostFormValue("next")), Challenge: r.PostFormValue("challenge"),
		PhoneHint: r.PostFormValue("phone_hint")}
	v.Title = i18n.T(v.Lang, "portal.login.title")
	v.Data = &d
	who, err := p.deps.Logins.Finish(r.Context(), identity.Attempt{Challenge: d.Challenge, Code: r.PostFormValue("code"),
		IP: identity.ClientIP(r), Lang: v.Lang, RequestID: web.RequestID(r.Context())})
	var e *apierr.Error
	if errors.As(err, &e) && e.Status() < 500 {
		if e.Code == apierr.ChallengeExpired || e.Code == apierr.LoginLocked || e.Code == apierr.LoginFailed {
			// Start again from the password.
			d = loginData{Next: d.Next, Error: web.ErrorMessage(v.Lang, e.Code)}
			return "login", e.Status(), nil
		}
		fieldErrors(v.Lang, err, &d)
		return "login", e.Status(), nil
	}
	if err != nil {
		return "", 0, err
	}
	// A sign-in replaces the browser's earlier session, if any.
	if c, err := r.Cookie(identity.SessionCookie); err == nil {
		if err := p.deps.Sessions.End(r.Context(), c.Value, web.RequestID(r.Context())); err != nil {
			return "", 0, err
		}
	}
	value, expires, err := p.deps.Sessions.Create(r.Context(), who, identity.MethodPasswordSMS, web.RequestID(r.Context()))
	if err != nil {
		return "", 0, err
	}
	identity.SetCookie(w, r, value, expires)
	if strings.HasPrefix(d.Next, "/oidc/") {
		// Back to a relying party: /oidc/authorize redirects to another
		// site, which the Content-Security-Policy's form-action forbids
		// after a form post. A page that moves on by itself (and a link)
		// leaves the form behind.
		v.RefreshURL = d.Next
		d = loginData{Continue: d.Next}
		return "login", http.StatusOK, nil
	}
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
	return "", 0, nil
}

func (p *Portal) logout(w http.ResponseWriter, r *http.Request, v *Page) (string, int, error) {
	if err := p.signInOn(); err != nil {
		return "", 0, err
	}
	if c, err := r.Cookie(identity.SessionCookie); err == nil {
		if err := p.deps.Sessions.End(r.Context(), c.Value, web.RequestID(r.Context())); err != nil {
			return "", 0, err
		}
	}
	identity.ClearCookie(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return "", 0, nil
}
