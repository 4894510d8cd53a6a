package app

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/process"
	"github.com/ortaq/ortaq/internal/web"
)

// What a guarded route shows.
const (
	readApplication = "application"
	readDocument    = "document"
)

// guarded are the API routes that show one person's application or
// document and are served by capabilities that do not check the caller
// themselves; the guard checks first (Platform.CanRead). The public
// verification of a document (POST /api/v1/documents/verify) stays open, and
// so does POST .../signature, whose signature is its credential.
var guarded = map[string]string{
	"GET /api/v1/applications/{id}":         readApplication,
	"GET /api/v1/applications/{id}/invoice": readApplication,
	"GET /api/v1/applications/{id}/signing": readApplication,
	"GET /api/v1/documents/{id}":            readDocument,
}

// guard refuses a guarded route to a caller who may not read what it shows:
// 401 anonymous, 404 (as if it did not exist) anyone else not entitled.
func (p *Platform) guard(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	for pattern, what := range guarded {
		mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			who, ok := identity.FromContext(r.Context())
			if err := p.CanRead(r.Context(), who, ok, what, r.PathValue("id")); err != nil {
				web.Fail(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		}))
	}
	mux.Handle("/", next)
	return mux
}

// CanRead decides whether who (signedIn false: anonymous) may read an
// application or a document ("application", "document") by id:
//   - an application: its applicant, or an officer holding the agency and
//     role of one of its tasks;
//   - a document: the person it is about, or an officer of the agency that
//     issued it.
//
// It answers nil, auth.unauthorized for anonymous callers, or the thing's
// not_found code for everyone else, so that a stranger learns nothing of
// whether it exists.
func (p *Platform) CanRead(ctx context.Context, who identity.Principal, signedIn bool, what, id string) error {
	notFound := apierr.ApplicationNotFound
	if what == readDocument {
		notFound = apierr.DocumentNotFound
	}
	if !signedIn {
		return apierr.New(apierr.Unauthorized)
	}
	uid, err := uuid.Parse(id)
	if err != nil {
		return apierr.New(notFound)
	}
	switch what {
	case readApplication:
		in, err := p.Engine.Inspect(ctx, uid)
		if errors.Is(err, process.ErrNotFound) {
			return apierr.New(notFound)
		}
		if err != nil {
			return err
		}
		if who.IsCitizen(in.Applicant) {
			return nil
		}
		for _, t := range in.Tasks {
			if who.HasRole(t.Agency, t.Role) {
				return nil
			}
		}
	case readDocument:
		d, err := p.Documents.Get(ctx, uid)
		if errors.Is(err, document.ErrNotFound) {
			return apierr.New(notFound)
		}
		if err != nil {
			return err
		}
		if who.IsCitizen(d.SubjectIIN) || (who.Kind == identity.Officer && who.Agency == d.Issuer) {
			return nil
		}
	}
	return apierr.New(notFound)
}
