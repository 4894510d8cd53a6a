package account

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/notify"
	"github.com/ortaq/ortaq/internal/portal"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// Deps are the capabilities the account pages show.
type Deps struct {
	Documents  *document.Store
	Consents   *consent.Ledger
	Notify     *notify.Notifier
	Registries *registry.Store
	// AgencyName names an issuing agency in three languages.
	AgencyName func(ctx context.Context, id string) (i18n.Text, error)
	// CanRead decides who may see a document (what "document", by id), as
	// for the API: nil, or the error to show.
	CanRead func(ctx context.Context, who identity.Principal, signedIn bool, what, id string) error
	// PublicURL is the platform's public base URL, for the QR code; empty
	// takes the address the visitor used.
	PublicURL string
}

// itemTitle names a consented data item ("registry.attribute") in lang:
// the registry's and the attribute's titles; an item the registries do not
// declare (an exchange service's) stays as it is.
func (d Deps) itemTitle(lang i18n.Lang, item string) string {
	reg, attr, ok := strings.Cut(item, ".")
	if !ok || d.Registries == nil {
		return item
	}
	def, ok := d.Registries.Definition(reg)
	if !ok {
		return item
	}
	a, ok := def.Attr(attr)
	if !ok {
		return item
	}
	return a.Title.In(lang) + " (" + def.Title.In(lang) + ")"
}

// Account serves the citizen's account pages and public verification.
type Account struct {
	deps  Deps
	pages portal.Templates
}

// New parses the templates; a template error is a programming error.
func New(d Deps) *Account {
	return &Account{deps: d, pages: portal.ParseTemplates(templateFS, template.FuncMap{
		"item":      d.itemTitle,
		"shareCode": document.FormatShareCode,
		"active":    func(s document.Share, now time.Time) bool { return s.Active(now) },
		"hasKey":    i18n.Has,
		// dict passes several values to a sub-template.
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return m
		},
	}, "documents", "document", "verify", "facts", "notifications", "consents", "mydata")}
}

// Routes mounts the pages on site and adds the citizen's menu items.
func (a *Account) Routes(site *portal.Site) {
	site.AddNav("/documents", "portal.account.nav.documents", portal.IsCitizen)
	site.AddNav("/notifications", "portal.account.nav.notifications", func(p identity.Principal) bool {
		_, ok := notify.RecipientOf(p)
		return ok
	})
	site.AddNav("/consents", "portal.account.nav.consents", portal.IsCitizen)
	site.AddNav("/my-data", "portal.account.nav.my_data", portal.IsCitizen)
	for pattern, h := range map[string]portal.Handler{
		"GET /documents":                             a.documents,
		"GET /documents/{id}":                        a.document,
		"GET /documents/{id}/jws":                    a.downloadJWS,
		"GET /documents/{id}/json":                   a.downloadJSON,
		"POST /documents/{id}/shares":                a.createShare,
		"POST /documents/{id}/shares/{share}/revoke": a.revokeShare,
		"GET /verify":                                a.verifyForm,
		"POST /verify":                               a.verifyJWS,
		"POST /verify/share":                         a.verifyShare,
		"GET /verify/{id}":                           a.facts,
		"GET /notifications":                         a.notifications,
		"GET /consents":                              a.consents,
		"POST /consents/{id}/approve":                a.approve,
		"POST /consents/{id}/refuse":                 a.refuse,
		"POST /consents/{id}/revoke":                 a.revoke,
		"GET /my-data":                               a.myData,
	} {
		site.Handle(pattern, a.pages, h)
	}
}

// citizen lets only a signed-in citizen through: ok false means the
// handler returns (tmpl, status, err) as they are.
func citizen(w http.ResponseWriter, r *http.Request, pg *portal.Page) (ok bool, tmpl string, status int, err error) {
	if pg.Who == nil {
		tmpl, status, err = portal.ToLogin(w, r)
		return false, tmpl, status, err
	}
	if pg.Who.Kind != identity.Citizen {
		return false, "", 0, apierr.New(apierr.Forbidden)
	}
	return true, "", 0, nil
}

func requestID(r *http.Request) string { return web.RequestID(r.Context()) }

// --- My documents ---------------------------------------------------------

type documentRow struct {
	ID, Number string
	Title      any
	Issuer     i18n.Text
	IssuedAt   time.Time
}

func (a *Account) issuer(ctx context.Context, id string) i18n.Text {
	if a.deps.AgencyName != nil {
		if t, err := a.deps.AgencyName(ctx, id); err == nil && t.Complete() {
			return t
		}
	}
	return i18n.Text{KK: id, RU: id, EN: id}
}

func titleOf(fields json.RawMessage) any {
	var f struct {
		Title any `json:"title"`
	}
	_ = json.Unmarshal(fields, &f)
	return f.Title
}

const maxDocuments = 200

func (a *Account) documents(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if ok, t, s, err := citizen(w, r, pg); !ok {
		return t, s, err
	}
	docs, err := a.deps.Documents.ListBySubject(r.Context(), pg.Who.Subject, pg.Who.Actor(), requestID(r), maxDocuments)
	if err != nil {
		return "", 0, err
	}
	rows := make([]documentRow, 0, len(docs))
	for _, d := range docs {
		rows = append(rows, documentRow{ID: d.ID.String(), Number: d.Number, Title: titleOf(d.Fields),
			Issuer: a.issuer(r.Context(), d.Issuer), IssuedAt: d.IssuedAt})
	}
	pg.Title = i18n.T(pg.Lang, "portal.account.documents.title")
	pg.Data = rows
	return "documents", http.StatusOK, nil
}

type documentData struct {
	View      document.View
	Fields    map[string]any
	Issuer    i18n.Text
	Owner     bool
	VerifyURL string
	QR        template.HTML
	// NewCode is a share code just created: shown this once.
	NewCode    string
	NewExpires time.Time
	Shares     []document.Share
	Now        time.Time
	MaxUses    int
}

// readDocument reads the document the path names for the visitor, audited;
// a stranger's or a malformed id is document.not_found.
func (a *Account) readDocument(w http.ResponseWriter, r *http.Request, pg *portal.Page) (document.Document, bool, string, int, error) {
	if pg.Who == nil {
		t, s, err := portal.ToLogin(w, r)
		return document.Document{}, false, t, s, err
	}
	if a.deps.CanRead != nil {
		if err := a.deps.CanRead(r.Context(), *pg.Who, true, "document", r.PathValue("id")); err != nil {
			return document.Document{}, false, "", 0, err
		}
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return document.Document{}, false, "", 0, apierr.New(apierr.DocumentNotFound)
	}
	d, err := a.deps.Documents.Read(r.Context(), id, pg.Who.Actor(), requestID(r))
	if errors.Is(err, document.ErrNotFound) {
		return document.Document{}, false, "", 0, apierr.New(apierr.DocumentNotFound)
	}
	if err != nil {
		return document.Document{}, false, "", 0, err
	}
	if a.deps.CanRead == nil && !pg.Who.IsCitizen(d.SubjectIIN) {
		return document.Document{}, false, "", 0, apierr.New(apierr.DocumentNotFound)
	}
	return d, true, "", 0, nil
}

// verifyURL is the public address of a document's check, which its QR
// code carries.
func (a *Account) verifyURL(r *http.Request, id string) string {
	base := strings.TrimRight(a.deps.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/verify/" + id
}

func (a *Account) showDocument(w http.ResponseWriter, r *http.Request, pg *portal.Page, d document.Document, data documentData, status int) (string, int, error) {
	data.View = document.ViewOf(d)
	if err := json.Unmarshal(d.Fields, &data.Fields); err != nil {
		return "", 0, err
	}
	data.Issuer = a.issuer(r.Context(), d.Issuer)
	data.Owner = pg.Who.IsCitizen(d.SubjectIIN)
	data.VerifyURL = a.verifyURL(r, d.ID.String())
	qr, err := qrSVG(data.VerifyURL, "document-qr", i18n.T(pg.Lang, "portal.account.doc.qr.label", d.Number))
	if err != nil {
		return "", 0, err
	}
	data.QR = qr
	data.Now, data.MaxUses = time.Now(), document.ShareMaxUses
	if data.Owner {
		if data.Shares, err = a.deps.Documents.Shares(r.Context(), d.ID, pg.Who.Subject); err != nil {
			return "", 0, err
		}
	}
	pg.Title = i18n.T(pg.Lang, "portal.account.doc.title")
	pg.Data = data
	return "document", status, nil
}

func (a *Account) document(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	d, ok, t, s, err := a.readDocument(w, r, pg)
	if !ok {
		return t, s, err
	}
	return a.showDocument(w, r, pg, d, documentData{}, http.StatusOK)
}

func attachment(w http.ResponseWriter, contentType, name string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	// Document numbers are letters, digits and dashes: no quoting needed.
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body)
}

// downloadJWS gives the signed document as a file: it verifies offline
// with the keys at /api/v1/keys.
func (a *Account) downloadJWS(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	d, ok, t, s, err := a.readDocument(w, r, pg)
	if !ok {
		return t, s, err
	}
	attachment(w, "application/jose", d.Number+".jws", []byte(d.JWS))
	return "", 0, nil
}

func (a *Account) downloadJSON(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	d, ok, t, s, err := a.readDocument(w, r, pg)
	if !ok {
		return t, s, err
	}
	body, err := json.MarshalIndent(document.ViewOf(d), "", "  ")
	if err != nil {
		return "", 0, err
	}
	attachment(w, "application/json", d.Number+".json", body)
	return "", 0, nil
}

// ownDocumentID is the path's document id for the citizen who holds it;
// anything else is document.not_found.
func ownDocumentID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, apierr.New(apierr.DocumentNotFound)
	}
	return id, nil
}

func notFoundDoc(err error) error {
	if errors.Is(err, document.ErrNotFound) {
		return apierr.New(apierr.DocumentNotFound)
	}
	return err
}

// createShare makes a share code and shows it once, on the document page.
func (a *Account) createShare(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if ok, t, s, err := citizen(w, r, pg); !ok {
		return t, s, err
	}
	id, err := ownDocumentID(r)
	if err != nil {
		return "", 0, err
	}
	sh, code, err := a.deps.Documents.CreateShare(r.Context(), id, pg.Who.Subject, pg.Who.Actor(), requestID(r))
	if err != nil {
		return "", 0, notFoundDoc(err)
	}
	d, err := a.deps.Documents.Read(r.Context(), id, pg.Who.Actor(), requestID(r))
	if err != nil {
		return "", 0, notFoundDoc(err)
	}
	return a.showDocument(w, r, pg, d, documentData{NewCode: document.FormatShareCode(code), NewExpires: sh.ExpiresAt}, http.StatusCreated)
}

func (a *Account) revokeShare(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if ok, t, s, err := citizen(w, r, pg); !ok {
		return t, s, err
	}
	id, err := ownDocumentID(r)
	if err != nil {
		return "", 0, err
	}
	share, err := uuid.Parse(r.PathValue("share"))
	if err != nil {
		return "", 0, apierr.New(apierr.DocumentNotFound)
	}
	if err := a.deps.Documents.RevokeShare(r.Context(), id, share, pg.Who.Subject, pg.Who.Actor(), requestID(r)); err != nil {
		return "", 0, notFoundDoc(err)
	}
	return portal.Redirect(w, r, "/documents/"+id.String()+"#shares")
}

// --- Verification -----------------------------------------------------------

type verifyData struct {
	JWS    string
	Result *document.Verification
	Fields map[string]any
	// The share form: its values, its error, and the document it opened.
	Ref, Code, ShareError string
	Shared                *document.View
	SharedFields          map[string]any
	SharedIssuer          i18n.Text
}

func (a *Account) verifyForm(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	pg.Title = i18n.T(pg.Lang, "portal.account.verify.title")
	pg.Data = verifyData{Ref: r.URL.Query().Get("document")}
	return "verify", http.StatusOK, nil
}

// maxJWSForm bounds the pasted text; the document package refuses more.
const maxJWSForm = 256 << 10

func (a *Account) verifyJWS(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	jws := strings.TrimSpace(r.PostFormValue("jws"))
	if len(jws) > maxJWSForm {
		jws = jws[:maxJWSForm] + "…" // Verify answers "malformed"
	}
	res, err := a.deps.Documents.Verify(r.Context(), jws)
	if err != nil {
		return "", 0, err
	}
	data := verifyData{JWS: jws, Result: &res}
	if res.Document != nil {
		_ = json.Unmarshal(res.Document.Fields, &data.Fields)
	}
	pg.Title = i18n.T(pg.Lang, "portal.account.verify.title")
	pg.Data = data
	return "verify", http.StatusOK, nil
}

// verifyShare opens a document with its number (or id) and a share code,
// for whoever holds them, signed in or not.
func (a *Account) verifyShare(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	ref := strings.TrimSpace(r.PostFormValue("document"))
	code := strings.TrimSpace(r.PostFormValue("code"))
	if len(ref) > 100 {
		ref = ref[:100]
	}
	if len(code) > 40 {
		code = code[:40]
	}
	pg.Title = i18n.T(pg.Lang, "portal.account.verify.title")
	data := verifyData{Ref: ref, Code: code}
	actor := "anonymous"
	if pg.Who != nil {
		actor = pg.Who.Actor()
	}
	d, err := a.deps.Documents.OpenShare(r.Context(), ref, code, actor, requestID(r))
	var e *apierr.Error
	if errors.As(err, &e) && (e.Code == apierr.DocumentShareInvalid || e.Code == apierr.DocumentShareLocked) {
		data.ShareError = web.ErrorMessage(pg.Lang, e.Code)
		pg.Data = data
		return "verify", e.Status(), nil
	}
	if err != nil {
		return "", 0, err
	}
	v := document.ViewOf(d)
	data.Shared, data.Code = &v, ""
	_ = json.Unmarshal(d.Fields, &data.SharedFields)
	data.SharedIssuer = a.issuer(r.Context(), d.Issuer)
	pg.Data = data
	return "verify", http.StatusOK, nil
}

type factsData struct {
	Facts  document.Facts
	Issuer i18n.Text
}

// facts is the page the QR code opens: genuine or not, and nothing
// personal.
func (a *Account) facts(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return "", 0, apierr.New(apierr.DocumentNotFound)
	}
	f, err := a.deps.Documents.PublicFacts(r.Context(), id)
	if err != nil {
		return "", 0, notFoundDoc(err)
	}
	pg.Title = i18n.T(pg.Lang, "portal.account.facts.title")
	pg.Data = factsData{Facts: f, Issuer: a.issuer(r.Context(), f.Issuer)}
	return "facts", http.StatusOK, nil
}

// --- Notifications ----------------------------------------------------------

const notificationsPage = 20

type notificationsData struct {
	Citizen  bool // links to the citizen's applications
	Messages []notify.InboxMessage
	Next     string
	First    bool
}

// notifications is the in-app inbox of a citizen or of an officer (what
// was sent to the roles they hold: escalated tasks, alerts).
func (a *Account) notifications(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if pg.Who == nil {
		return portal.ToLogin(w, r)
	}
	to, ok := notify.RecipientOf(*pg.Who)
	if !ok {
		return "", 0, apierr.New(apierr.Forbidden)
	}
	var after uuid.UUID
	if s := r.URL.Query().Get("after"); s != "" {
		var err error
		if after, err = uuid.Parse(s); err != nil {
			return "", 0, apierr.New(apierr.Validation, apierr.FieldError{Path: "/after", Code: apierr.FieldFormat})
		}
	}
	msgs, err := a.deps.Notify.Inbox(r.Context(), to, after, notificationsPage+1)
	if errors.Is(err, notify.ErrBadCursor) {
		return "", 0, apierr.New(apierr.Validation, apierr.FieldError{Path: "/after", Code: apierr.FieldFormat})
	}
	if err != nil {
		return "", 0, err
	}
	data := notificationsData{First: after == uuid.Nil, Citizen: to.IIN != ""}
	if len(msgs) > notificationsPage {
		msgs = msgs[:notificationsPage]
		data.Next = msgs[notificationsPage-1].ID.String()
	}
	data.Messages = msgs
	pg.Title = i18n.T(pg.Lang, "portal.account.notifications.title")
	pg.Data = data
	return "notifications", http.StatusOK, nil
}

// --- Consents ---------------------------------------------------------------

type consentRow struct {
	consent.Consent
	Receipts []consent.Receipt
	// CodeError is the refusal of the code just typed for this request.
	CodeError string
}

type consentsData struct {
	Pending, Active, Ended []consentRow
}

const maxConsents = 200

func (a *Account) showConsents(r *http.Request, pg *portal.Page, failed uuid.UUID, codeError string, status int) (string, int, error) {
	cs, err := a.deps.Consents.List(r.Context(), *pg.Who, "", maxConsents)
	if err != nil {
		return "", 0, err
	}
	var data consentsData
	for _, c := range cs {
		row := consentRow{Consent: c}
		if c.ID == failed {
			row.CodeError = codeError
		}
		if c.Status != consent.Pending {
			if row.Receipts, err = a.deps.Consents.Receipts(r.Context(), c); err != nil {
				return "", 0, err
			}
		}
		switch c.Status {
		case consent.Pending:
			data.Pending = append(data.Pending, row)
		case consent.Granted:
			data.Active = append(data.Active, row)
		default:
			data.Ended = append(data.Ended, row)
		}
	}
	pg.Title = i18n.T(pg.Lang, "portal.account.consents.title")
	pg.Data = data
	return "consents", status, nil
}

func (a *Account) consents(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if ok, t, s, err := citizen(w, r, pg); !ok {
		return t, s, err
	}
	return a.showConsents(r, pg, uuid.Nil, "", http.StatusOK)
}

func consentID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, apierr.New(apierr.ConsentNotFound)
	}
	return id, nil
}

// approve grants a pending request with the code from the SMS; a refused
// code is shown next to the request's code field.
func (a *Account) approve(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if ok, t, s, err := citizen(w, r, pg); !ok {
		return t, s, err
	}
	id, err := consentID(r)
	if err != nil {
		return "", 0, err
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	if len(code) > 20 {
		code = code[:20]
	}
	_, err = a.deps.Consents.ApproveByCode(r.Context(), id, code, *pg.Who, requestID(r))
	var e *apierr.Error
	if errors.As(err, &e) && len(e.Fields) > 0 && e.Fields[0].Path == "/code" {
		return a.showConsents(r, pg, id, web.ErrorMessage(pg.Lang, e.Fields[0].Code), e.Status())
	}
	if err != nil {
		return "", 0, err
	}
	return portal.Redirect(w, r, "/consents#consent-"+id.String())
}

func (a *Account) refuse(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if ok, t, s, err := citizen(w, r, pg); !ok {
		return t, s, err
	}
	id, err := consentID(r)
	if err != nil {
		return "", 0, err
	}
	if _, err := a.deps.Consents.Refuse(r.Context(), id, *pg.Who, requestID(r)); err != nil {
		return "", 0, err
	}
	return portal.Redirect(w, r, "/consents#consent-"+id.String())
}

func (a *Account) revoke(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if ok, t, s, err := citizen(w, r, pg); !ok {
		return t, s, err
	}
	id, err := consentID(r)
	if err != nil {
		return "", 0, err
	}
	if _, err := a.deps.Consents.Revoke(r.Context(), id, *pg.Who, "", requestID(r)); err != nil {
		return "", 0, err
	}
	return portal.Redirect(w, r, "/consents#consent-"+id.String())
}

// --- Who used my data -------------------------------------------------------

// The access log shows usagePage events, and "more" a longer list, up to
// maxUsage (the API's own limit).
const (
	usagePage = 50
	maxUsage  = 1000
)

type myDataData struct {
	Events []registry.DataUsageView
	Self   string
	More   int // the limit of the next, longer page; 0: nothing more
}

func (a *Account) myData(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	if ok, t, s, err := citizen(w, r, pg); !ok {
		return t, s, err
	}
	limit := usagePage
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxUsage {
			return "", 0, apierr.New(apierr.Validation, apierr.FieldError{Path: "/limit", Code: apierr.FieldOutOfRange})
		}
		limit = n
	}
	evs, err := a.deps.Registries.DataUsage(r.Context(), *pg.Who, limit+1)
	if err != nil {
		return "", 0, err
	}
	data := myDataData{Self: pg.Who.Actor()}
	if len(evs) > limit {
		evs = evs[:limit]
		data.More = min(limit+usagePage, maxUsage)
		if limit == maxUsage {
			data.More = 0
		}
	}
	data.Events = evs
	pg.Title = i18n.T(pg.Lang, "portal.account.mydata.title")
	pg.Data = data
	return "mydata", http.StatusOK, nil
}
