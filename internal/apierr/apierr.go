// Package apierr is the public face of errors: a stable machine code, the
// HTTP status it maps to, per-field details, and nothing of the internal cause.
//
// Every code a client can receive is in one catalogue ([Catalogue]), checked by
// a golden test: removing or renaming a code breaks clients and fails CI. The
// human-readable message for a code lives in the i18n catalogue under
// "error.<code>" (and "field.<code>" for field codes), so it exists in Kazakh,
// Russian and English.
//
// May import: the standard library only.
package apierr

import (
	"errors"
	"net/http"
	"sort"
)

// Code is a stable, machine-readable error code.
type Code string

// Request-level codes. Add new ones to the catalogue below.
const (
	Internal              Code = "internal"
	Unavailable           Code = "unavailable"
	RouteNotFound         Code = "route.not_found"
	MethodNotAllowed      Code = "route.method_not_allowed"
	InvalidJSON           Code = "request.invalid_json"
	BodyTooLarge          Code = "request.too_large"
	UnsupportedMedia      Code = "request.unsupported_media_type"
	Validation            Code = "request.validation"
	CSRF                  Code = "request.csrf"
	IdempotencyKeyReused  Code = "idempotency.key_reused"
	IdempotencyKeyMissing Code = "idempotency.key_missing"
	IdempotencyKeyBad     Code = "idempotency.key_invalid"
	ServiceNotFound       Code = "service.not_found"
	ServiceNotAccepting   Code = "service.not_accepting"
	ApplicationNotFound   Code = "application.not_found"
	ServiceInvalid        Code = "service.invalid"
	ServiceConflict       Code = "service.version_conflict"
	Unauthorized          Code = "auth.unauthorized"
	Forbidden             Code = "auth.forbidden"
	TokenInvalid          Code = "auth.token_invalid"
	DocumentNotFound      Code = "document.not_found"
	// ApplicationState: the application's state does not allow the action
	// (withdrawing a decided application, correcting one nobody returned).
	ApplicationState    Code = "application.state_conflict"
	TaskNotFound        Code = "task.not_found"
	TaskClaimed         Code = "task.claimed_by_another"
	TaskNotClaimed      Code = "task.not_claimed"
	TaskClosed          Code = "task.closed"
	CalendarDayNotFound Code = "calendar.day_not_found"
)

var statuses = map[Code]int{
	Internal:         http.StatusInternalServerError,
	Unavailable:      http.StatusServiceUnavailable,
	RouteNotFound:    http.StatusNotFound,
	MethodNotAllowed: http.StatusMethodNotAllowed,
	InvalidJSON:      http.StatusBadRequest,
	BodyTooLarge:     http.StatusRequestEntityTooLarge,
	UnsupportedMedia: http.StatusUnsupportedMediaType,
	Validation:       http.StatusUnprocessableEntity,
	CSRF:             http.StatusForbidden,
	// As the IETF Idempotency-Key draft asks: 422 for a key reused with
	// another payload, 400 for a missing or malformed key.
	IdempotencyKeyReused:  http.StatusUnprocessableEntity,
	IdempotencyKeyMissing: http.StatusBadRequest,
	IdempotencyKeyBad:     http.StatusBadRequest,
	ServiceNotFound:       http.StatusNotFound,
	ServiceNotAccepting:   http.StatusConflict,
	ApplicationNotFound:   http.StatusNotFound,
	ServiceInvalid:        http.StatusUnprocessableEntity,
	ServiceConflict:       http.StatusConflict,
	Unauthorized:          http.StatusUnauthorized,
	Forbidden:             http.StatusForbidden,
	TokenInvalid:          http.StatusUnauthorized,
	DocumentNotFound:      http.StatusNotFound,
	ApplicationState:      http.StatusConflict,
	TaskNotFound:          http.StatusNotFound,
	TaskClaimed:           http.StatusConflict,
	TaskNotClaimed:        http.StatusConflict,
	TaskClosed:            http.StatusConflict,
	CalendarDayNotFound:   http.StatusNotFound,
}

// Field-level codes: what is wrong with one input field.
const (
	FieldRequired    Code = "required"
	FieldType        Code = "type"
	FieldUnknown     Code = "unknown_field"
	FieldTooLong     Code = "too_long"
	FieldIINEmpty    Code = "iin.empty"
	FieldIINLength   Code = "iin.length"
	FieldIINDigits   Code = "iin.not_digits"
	FieldIINChecksum Code = "iin.checksum"
	FieldFormat      Code = "format"
	FieldOneOf       Code = "one_of"
	FieldOutOfRange  Code = "out_of_range"
	// FieldCalendarNotWeekend: only a Saturday or Sunday can be made a
	// working day.
	FieldCalendarNotWeekend Code = "calendar.not_weekend"
)

var fieldCodes = []Code{
	FieldRequired, FieldType, FieldUnknown, FieldTooLong,
	FieldIINEmpty, FieldIINLength, FieldIINDigits, FieldIINChecksum, FieldFormat,
	FieldOneOf, FieldOutOfRange, FieldCalendarNotWeekend,
}

// FieldError says what is wrong with one field, addressed by a JSON pointer.
type FieldError struct {
	Path string `json:"path"`
	Code Code   `json:"code"`
}

// Error is an error a client may see. Its cause stays internal.
type Error struct {
	Code   Code
	Fields []FieldError
	// Details are extra, code-specific facts a client can act on (for
	// service.invalid: the definition's problems with their positions).
	Details any
	cause   error
}

// New returns a public error with the given code and field details.
func New(code Code, fields ...FieldError) *Error {
	return &Error{Code: code, Fields: fields}
}

// Wrap returns a public error that keeps err as its internal cause, for logs.
func Wrap(code Code, err error) *Error {
	return &Error{Code: code, cause: err}
}

func (e *Error) Error() string {
	if e.cause != nil {
		return string(e.Code) + ": " + e.cause.Error()
	}
	return string(e.Code)
}

func (e *Error) Unwrap() error { return e.cause }

// Status is the HTTP status for the error's code.
func (e *Error) Status() int { return Status(e.Code) }

// Status is the HTTP status for code; unknown codes are internal errors.
func Status(code Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// From converts any error into a public one: an *Error anywhere in the chain
// is used as it is; anything else becomes Internal, keeping the cause.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Wrap(Internal, err)
}

// Entry is one line of the catalogue.
type Entry struct {
	Code   Code
	Status int // 0 for field codes
}

// Catalogue lists every request-level and field-level code, sorted by code.
func Catalogue() []Entry {
	var out []Entry
	for c, s := range statuses {
		out = append(out, Entry{Code: c, Status: s})
	}
	for _, c := range fieldCodes {
		out = append(out, Entry{Code: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// IsFieldCode reports whether c is a field-level code.
func IsFieldCode(c Code) bool {
	for _, f := range fieldCodes {
		if f == c {
			return true
		}
	}
	return false
}
