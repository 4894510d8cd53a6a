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
	// DocumentShareInvalid: a share code that does not open the document
	// (wrong, expired, used up or revoked: one answer for each).
	DocumentShareInvalid Code = "document.share_invalid"
	// DocumentShareLocked: too many wrong share codes on the document
	// lately; sharing opens again within the hour.
	DocumentShareLocked Code = "document.share_locked"
	// DocumentShareLimit: the document has as many live shares as it may.
	DocumentShareLimit Code = "document.share_limit"
	// ApplicationState: the application's state does not allow the action
	// (withdrawing a decided application, correcting one nobody returned).
	ApplicationState    Code = "application.state_conflict"
	TaskNotFound        Code = "task.not_found"
	TaskClaimed         Code = "task.claimed_by_another"
	TaskNotClaimed      Code = "task.not_claimed"
	TaskClosed          Code = "task.closed"
	CalendarDayNotFound Code = "calendar.day_not_found"
	// State fees and the applicant's signature (internal/process).
	InvoiceNotFound Code = "payment.invoice_not_found"
	// InvoiceClosed: the invoice is paid (with another reference), expired
	// or cancelled with its application.
	InvoiceClosed        Code = "payment.invoice_closed"
	PaymentReferenceUsed Code = "payment.reference_reused"
	SigningNotFound      Code = "signature.not_requested"
	// SignerNotApplicant: a valid signature, but not by the person who
	// applied.
	SignerNotApplicant Code = "signature.not_applicant"
	// Registries.
	RegistryNotFound   Code = "registry.not_found"
	ClassifierNotFound Code = "registry.classifier_not_found"
	RecordNotFound     Code = "registry.record_not_found"
	RecordExists       Code = "registry.record_exists"
	RecordCancelled    Code = "registry.record_cancelled"
	// ImportBroken: an import whose input cannot be read at all (a CSV
	// header naming unknown attributes, an unreadable stream); bad rows are
	// reported in the import's answer instead.
	ImportBroken Code = "registry.import_unreadable"
	// RegistryArchived: the registry is archived; its records and history
	// stay readable, nothing new is written.
	RegistryArchived Code = "registry.archived"
	// RegistryDefinitionInvalid: a registry definition published through
	// the API is refused; fields name each problem and details explain it.
	RegistryDefinitionInvalid Code = "registry.definition_invalid"
	// InvalidParameter: a path or query parameter of the wrong form (fields
	// name it).
	InvalidParameter Code = "request.invalid_parameter"
	// Exchange (central authority of the exchange gateway).
	ExchangeMemberNotFound      Code = "exchange.member_not_found"
	ExchangeSubsystemNotFound   Code = "exchange.subsystem_not_found"
	ExchangeServiceNotFound     Code = "exchange.service_not_found"
	ExchangeAccessNotFound      Code = "exchange.access_not_found"
	ExchangeCertificateNotFound Code = "exchange.certificate_not_found"
	ExchangeConflict            Code = "exchange.conflict"
	ExchangeEnrolmentInvalid    Code = "exchange.enrolment_invalid"
	// Electronic signatures (internal/esign). Each names the field at fault
	// (/signature/value, /signature/chain/0, ...) in its Fields.
	SignatureMalformed            Code = "signature.malformed"
	SignatureAlgorithmUnsupported Code = "signature.algorithm_unsupported"
	SignatureInvalid              Code = "signature.invalid"
	SignatureCertUntrusted        Code = "signature.certificate_untrusted"
	SignatureCertExpired          Code = "signature.certificate_expired"
	SignatureCertRevoked          Code = "signature.certificate_revoked"
	SignatureKeyUsage             Code = "signature.key_usage"
	SignatureNoSubjectIIN         Code = "signature.no_subject_iin"
	TrustRootNotFound             Code = "esign.root_not_found"
	// Consents (internal/consent).
	ConsentNotFound Code = "consent.not_found"
	// ConsentState: the consent's status does not allow the action
	// (approving a granted one, revoking a refused one).
	ConsentState Code = "consent.state_conflict"
	// ConsentMissing, ConsentExpired, ConsentRevoked: a use of personal
	// data with no legal basis and no valid consent covering its items and
	// purpose; fields name the uncovered items (/items/<i>) or /purpose.
	ConsentMissing Code = "consent.missing"
	ConsentExpired Code = "consent.expired"
	ConsentRevoked Code = "consent.revoked"
	// The one-time code of a consent request (field /code).
	ConsentCodeInvalid Code = "consent.code_invalid"
	ConsentCodeExpired Code = "consent.code_expired"
	// ConsentCodeSpent: the code was used, or too many wrong codes were
	// tried; ask for a new one.
	ConsentCodeSpent Code = "consent.code_spent"
	// ConsentCodeLimit: the request has sent as many codes as it may.
	ConsentCodeLimit Code = "consent.code_limit"
	// Sign-in (internal/identity). LoginFailed never says whether the
	// account exists or which of its credentials was wrong.
	LoginFailed      Code = "auth.login_failed"
	LoginLocked      Code = "auth.locked"
	CodeInvalid      Code = "auth.code_invalid"
	ChallengeExpired Code = "auth.challenge_expired"
	ClientInvalid    Code = "auth.client_invalid"
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
	DocumentShareInvalid:  http.StatusUnprocessableEntity,
	DocumentShareLocked:   http.StatusTooManyRequests,
	DocumentShareLimit:    http.StatusConflict,
	ApplicationState:      http.StatusConflict,
	TaskNotFound:          http.StatusNotFound,
	TaskClaimed:           http.StatusConflict,
	TaskNotClaimed:        http.StatusConflict,
	TaskClosed:            http.StatusConflict,
	CalendarDayNotFound:   http.StatusNotFound,
	InvoiceNotFound:       http.StatusNotFound,
	InvoiceClosed:         http.StatusConflict,
	PaymentReferenceUsed:  http.StatusConflict,
	SigningNotFound:       http.StatusNotFound,
	SignerNotApplicant:    http.StatusUnprocessableEntity,

	RegistryNotFound:          http.StatusNotFound,
	ClassifierNotFound:        http.StatusNotFound,
	RecordNotFound:            http.StatusNotFound,
	RecordExists:              http.StatusConflict,
	RecordCancelled:           http.StatusConflict,
	ImportBroken:              http.StatusBadRequest,
	RegistryArchived:          http.StatusConflict,
	RegistryDefinitionInvalid: http.StatusUnprocessableEntity,
	InvalidParameter:          http.StatusBadRequest,

	ExchangeMemberNotFound:      http.StatusNotFound,
	ExchangeSubsystemNotFound:   http.StatusNotFound,
	ExchangeServiceNotFound:     http.StatusNotFound,
	ExchangeAccessNotFound:      http.StatusNotFound,
	ExchangeCertificateNotFound: http.StatusNotFound,
	ExchangeConflict:            http.StatusConflict,
	// A token that is unknown, used or expired: the same answer for each.
	ExchangeEnrolmentInvalid: http.StatusForbidden,

	SignatureMalformed:            http.StatusUnprocessableEntity,
	SignatureAlgorithmUnsupported: http.StatusUnprocessableEntity,
	SignatureInvalid:              http.StatusUnprocessableEntity,
	SignatureCertUntrusted:        http.StatusUnprocessableEntity,
	SignatureCertExpired:          http.StatusUnprocessableEntity,
	SignatureCertRevoked:          http.StatusUnprocessableEntity,
	SignatureKeyUsage:             http.StatusUnprocessableEntity,
	SignatureNoSubjectIIN:         http.StatusUnprocessableEntity,
	TrustRootNotFound:             http.StatusNotFound,

	ConsentNotFound:    http.StatusNotFound,
	ConsentState:       http.StatusConflict,
	ConsentMissing:     http.StatusForbidden,
	ConsentExpired:     http.StatusForbidden,
	ConsentRevoked:     http.StatusForbidden,
	ConsentCodeInvalid: http.StatusUnprocessableEntity,
	ConsentCodeExpired: http.StatusUnprocessableEntity,
	ConsentCodeSpent:   http.StatusTooManyRequests,
	ConsentCodeLimit:   http.StatusTooManyRequests,

	LoginFailed:      http.StatusUnauthorized,
	LoginLocked:      http.StatusTooManyRequests,
	CodeInvalid:      http.StatusUnauthorized,
	ChallengeExpired: http.StatusUnauthorized,
	ClientInvalid:    http.StatusUnauthorized,
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
	// FieldAmountMismatch: a payment of another amount than the invoice's.
	FieldAmountMismatch Code = "amount.mismatch"
	// Registry records and imports.
	FieldCodeUnknown  Code = "code.unknown"  // not a code of the attribute's classifier
	FieldKeyDuplicate Code = "key.duplicate" // the key is already in the registry or earlier in the input
	FieldKeyMismatch  Code = "key.mismatch"  // the record's key attribute differs from the key addressed
	FieldEncoding     Code = "encoding"      // not valid UTF-8
	FieldCSV          Code = "csv"           // a CSV record that cannot be parsed (a stray quote)
	FieldCount        Code = "field_count"   // a CSV record with more or fewer fields than the header
	FieldDuplicate    Code = "duplicate"     // a column named twice
	// FieldAttributeInUse: a registry definition would drop, retype or
	// require an attribute its records hold or lack.
	FieldAttributeInUse Code = "attribute.in_use"
	FieldBINEmpty       Code = "bin.empty"
	FieldBINLength      Code = "bin.length"
	FieldBINDigits      Code = "bin.not_digits"
	FieldBINChecksum    Code = "bin.checksum"
	FieldBINKind        Code = "bin.kind"
	// Notification contacts (internal/notify).
	FieldPhoneFormat Code = "phone.format" // not a phone in the form +7XXXXXXXXXX
	FieldEmailFormat Code = "email.format" // not a bare e-mail address
	// Consents (internal/consent).
	FieldConsentItemUnknown Code = "item.unknown"     // no registry attribute or exchange service of that name
	FieldConsentNotCovered  Code = "item.not_covered" // no valid consent covers the item
	FieldConsentPurpose     Code = "purpose.mismatch" // a consent covers the items, for another purpose
	FieldConsentCodeInvalid Code = "otp.invalid"      // not the code that was sent
	FieldConsentCodeExpired Code = "otp.expired"      // the code's five minutes are over
	FieldConsentCodeSpent   Code = "otp.spent"        // used, or too many wrong tries
)

var fieldCodes = []Code{
	FieldRequired, FieldType, FieldUnknown, FieldTooLong,
	FieldIINEmpty, FieldIINLength, FieldIINDigits, FieldIINChecksum, FieldFormat,
	FieldOneOf, FieldOutOfRange, FieldCalendarNotWeekend, FieldAmountMismatch,
	FieldCodeUnknown, FieldKeyDuplicate, FieldKeyMismatch, FieldEncoding, FieldCSV, FieldCount, FieldDuplicate, FieldAttributeInUse,
	FieldBINEmpty, FieldBINLength, FieldBINDigits, FieldBINChecksum, FieldBINKind,
	FieldPhoneFormat, FieldEmailFormat,
	FieldConsentItemUnknown, FieldConsentNotCovered, FieldConsentPurpose,
	FieldConsentCodeInvalid, FieldConsentCodeExpired, FieldConsentCodeSpent,
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
