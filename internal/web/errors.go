package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
)

var (
	errRouteNotFound    = apierr.New(apierr.RouteNotFound)
	errMethodNotAllowed = apierr.New(apierr.MethodNotAllowed)
	errPanic            = apierr.Wrap(apierr.Internal, errors.New("handler panicked"))
)

// ErrorBody is the JSON every API error is answered with.
type ErrorBody struct {
	Code      apierr.Code `json:"code"`
	Message   string      `json:"message"`
	Fields    []FieldBody `json:"fields,omitempty"`
	Details   any         `json:"details,omitempty"`
	RequestID string      `json:"request_id"`
}

// FieldBody is one field's problem, with its message in the caller's language.
type FieldBody struct {
	Path    string      `json:"path"`
	Code    apierr.Code `json:"code"`
	Message string      `json:"message"`
}

// LangCookie is the cookie that stores a visitor's language choice.
const LangCookie = "lang"

// Lang is the language for r: the ?lang= parameter, then the language cookie,
// then Accept-Language, then Kazakh.
func Lang(r *http.Request) i18n.Lang {
	if l, ok := i18n.Parse(r.URL.Query().Get("lang")); ok {
		return l
	}
	choice := ""
	if c, err := r.Cookie(LangCookie); err == nil {
		choice = c.Value
	}
	return i18n.Negotiate(choice, r.Header.Get("Accept-Language"))
}

// ErrorMessage is the safe, localized text for a public error code.
func ErrorMessage(lang i18n.Lang, code apierr.Code) string {
	if apierr.IsFieldCode(code) {
		return i18n.T(lang, "field."+string(code))
	}
	return i18n.T(lang, "error."+string(code))
}

// Body builds the public body for err in lang.
func Body(lang i18n.Lang, e *apierr.Error, requestID string) ErrorBody {
	body := ErrorBody{Code: e.Code, Message: ErrorMessage(lang, e.Code), Details: e.Details, RequestID: requestID}
	for _, f := range e.Fields {
		body.Fields = append(body.Fields, FieldBody{Path: f.Path, Code: f.Code, Message: ErrorMessage(lang, f.Code)})
	}
	return body
}

// WriteError answers with err in the JSON error format. Internal causes are
// logged with the request id and never sent.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := apierr.From(err)
	id := RequestID(r.Context())
	if e.Status() >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "request_id", id, "code", e.Code, "error", err)
	}
	lang := Lang(r)
	w.Header().Set("Content-Language", string(lang))
	WriteJSON(w, e.Status(), Body(lang, e, id))
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// MaxBodyBytes bounds JSON request bodies.
const MaxBodyBytes = 1 << 20

// DecodeJSON reads one JSON object from r's body into v, strictly: the media
// type must be JSON, unknown fields are refused, and every problem comes back
// as a public error naming the field.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return DecodeJSONLimit(w, r, v, MaxBodyBytes)
}

// DecodeJSONLimit is DecodeJSON for bodies up to limit bytes, for the few
// requests that carry files.
func DecodeJSONLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return apierr.New(apierr.UnsupportedMedia)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return apierr.New(apierr.InvalidJSON)
	}
	if _, err := dec.Token(); err != io.EOF {
		return apierr.New(apierr.InvalidJSON)
	}
	return nil
}

func decodeError(err error) error {
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return apierr.New(apierr.BodyTooLarge)
	case errors.As(err, &typeErr):
		path := "/" + strings.ReplaceAll(typeErr.Field, ".", "/")
		if typeErr.Field == "" {
			path = ""
		}
		return apierr.New(apierr.Validation, apierr.FieldError{Path: path, Code: apierr.FieldType})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json exports no error type for unknown fields.
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if len(name) > 100 {
			name = name[:100]
		}
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/" + name, Code: apierr.FieldUnknown})
	default:
		return apierr.Wrap(apierr.InvalidJSON, fmt.Errorf("decode body: %w", err))
	}
}
