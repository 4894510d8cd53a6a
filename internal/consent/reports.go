package consent

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/web"
)

// MaxAccessReports is the most reports one request may carry.
const MaxAccessReports = 500

// AccessReport is one personal-data call an exchange gateway passed or
// refused, as it shipped it from its message log: the citizen's access log
// and the data-protection officer's alerts are written from it.
type AccessReport struct {
	MessageID  string    `json:"message_id"`
	Side       string    `json:"side"` // "in": the provider's gateway; "out": the client's
	At         time.Time `json:"at"`
	Client     string    `json:"client"`  // INSTANCE/CLASS/MEMBER/SUBSYSTEM
	Service    string    `json:"service"` // INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE
	SubjectIIN string    `json:"subject_iin"`
	Purpose    string    `json:"purpose"`
	LegalBasis string    `json:"legal_basis,omitempty"`
	ConsentID  string    `json:"consent_id,omitempty"`
	// Refused is why the gateway refused the call (consent.missing,
	// consent.expired, consent.revoked); empty for a call it passed.
	Refused string `json:"refused,omitempty"`
}

// AccessReports is the body of POST /api/v1/consents/access-reports.
type AccessReports struct {
	Reports []AccessReport `json:"reports"`
}

func validReport(i int, r *AccessReport) []apierr.FieldError {
	var fields []apierr.FieldError
	at := func(field string, code apierr.Code) {
		fields = append(fields, apierr.FieldError{Path: fmt.Sprintf("/reports/%d/%s", i, field), Code: code})
	}
	switch {
	case r.MessageID == "":
		at("message_id", apierr.FieldRequired)
	case len(r.MessageID) > 200:
		at("message_id", apierr.FieldTooLong)
	}
	if r.Side != "in" && r.Side != "out" {
		at("side", apierr.FieldOneOf)
	}
	if r.At.IsZero() {
		at("at", apierr.FieldRequired)
	}
	if !clientID.MatchString(r.Client) {
		at("client", apierr.FieldFormat)
	}
	if !serviceItem.MatchString("service:" + r.Service) {
		at("service", apierr.FieldFormat)
	}
	if _, err := iin.Parse(r.SubjectIIN); err != nil {
		fields = append(fields, iinFieldError(fmt.Sprintf("/reports/%d/subject_iin", i), err))
	}
	r.Purpose = strings.TrimSpace(r.Purpose)
	if len(r.Purpose) > maxPurpose {
		at("purpose", apierr.FieldTooLong)
	}
	if len(r.LegalBasis) > maxPurpose {
		at("legal_basis", apierr.FieldTooLong)
	}
	if r.ConsentID != "" {
		if _, err := uuid.Parse(r.ConsentID); err != nil {
			at("consent_id", apierr.FieldFormat)
		}
	}
	switch r.Refused {
	case "", string(apierr.ConsentMissing), string(apierr.ConsentExpired), string(apierr.ConsentRevoked):
	default:
		at("refused", apierr.FieldOneOf)
	}
	if r.Refused == "" && r.ConsentID == "" && strings.TrimSpace(r.LegalBasis) == "" {
		// A passed call had a basis: a report without one is a bug.
		at("legal_basis", apierr.FieldRequired)
	}
	return fields
}

// RecordAccess writes what reporter (the gateway's system account) reports:
// for each call not reported before (by reporter, message id and side),
// consent.used for a call on a consent, exchange.personal_data for one on
// a legal basis, consent.denied and the officer's alert for a refused one.
// It returns how many reports were new.
func (l *Ledger) RecordAccess(ctx context.Context, reporter string, reports []AccessReport) (int, error) {
	var added int
	var denied []AccessReport
	err := pg.InTx(ctx, l.pool, func(tx pgx.Tx) error {
		added, denied = 0, nil
		now := l.clock.Now()
		for _, r := range reports {
			tag, err := tx.Exec(ctx, `INSERT INTO consent_access_report (reporter, message_id, side, received_at)
				VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, reporter, r.MessageID, r.Side, now)
			if err != nil {
				return fmt.Errorf("record access report: %w", err)
			}
			if tag.RowsAffected() == 0 {
				continue // sent again after a lost answer
			}
			added++
			if err := recordReport(ctx, tx, r); err != nil {
				return err
			}
			if r.Refused != "" {
				denied = append(denied, r)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, r := range denied {
		l.log.Warn("personal data access denied", "code", r.Refused, "requester", "exchange:"+r.Client, "channel", "exchange", "request_id", r.MessageID)
	}
	return added, nil
}

func recordReport(ctx context.Context, tx pgx.Tx, r AccessReport) error {
	who := "exchange:" + r.Client
	n := Need{Subject: r.SubjectIIN, Requester: who, Items: []string{"service:" + r.Service}, Purpose: r.Purpose, Actor: who,
		Channel: "exchange", RequestID: r.MessageID}
	switch {
	case r.Refused != "":
		return recordDenial(ctx, tx, r.At, n, r.Refused, r.ConsentID)
	case r.ConsentID != "":
		return recordUse(ctx, tx, r.At, n, r.ConsentID)
	}
	return audit.Record(ctx, tx, audit.Event{At: r.At, Actor: who, Action: "exchange.personal_data", SubjectIIN: r.SubjectIIN,
		Object: "service:" + r.Service, Purpose: r.Purpose + " (legal basis: " + r.LegalBasis + ")", RequestID: r.MessageID})
}

// handleAccessReports takes an exchange gateway's batch of access reports
// (systems with the exchange-gateway scope); sending a batch again records
// nothing twice.
func (l *Ledger) handleAccessReports(w http.ResponseWriter, r *http.Request) error {
	p, err := identity.Require(r)
	if err != nil {
		return err
	}
	if !p.HasScope(identity.ScopeExchangeGateway) {
		return apierr.New(apierr.Forbidden)
	}
	var req AccessReports
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	switch {
	case len(req.Reports) == 0:
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/reports", Code: apierr.FieldRequired})
	case len(req.Reports) > MaxAccessReports:
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/reports", Code: apierr.FieldOutOfRange})
	}
	var fields []apierr.FieldError
	for i := range req.Reports {
		fields = append(fields, validReport(i, &req.Reports[i])...)
	}
	if len(fields) > 0 {
		return apierr.New(apierr.Validation, fields...)
	}
	added, err := l.RecordAccess(r.Context(), p.Subject, req.Reports)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]int{"recorded": added, "repeated": len(req.Reports) - added})
	return nil
}
