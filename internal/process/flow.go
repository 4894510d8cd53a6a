package process

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/service"
)

// FlowAddressCertificate is the built-in flow of the certificate of
// registered address: read the registry, decide, issue. The declarative
// flows of the service constructor replace built-in ones.
const FlowAddressCertificate = "address-certificate"

// flowRun is one run of a flow inside the application's transaction.
type flowRun struct {
	e         *Engine
	tx        pgx.Tx
	id        uuid.UUID
	def       service.Definition
	applicant iin.IIN
	attempt   int
}

// timed runs fn as a timeline step.
func (f *flowRun) timed(ctx context.Context, name string, fn func() (outcome string, detail map[string]any, err error)) error {
	start := f.e.cfg.Clock.Now()
	outcome, detail, err := fn()
	if err != nil {
		return err
	}
	return addStep(ctx, f.tx, f.id, step{Name: name, Actor: "system", Start: start, End: f.e.cfg.Clock.Now(),
		Outcome: outcome, Attempt: f.attempt, Detail: detail})
}

func (f *flowRun) addressCertificate(ctx context.Context) (decision, error) {
	var person registry.Person
	var found bool
	err := f.timed(ctx, "registry.read", func() (string, map[string]any, error) {
		var err error
		person, found, err = f.e.people.Person(ctx, f.tx, f.applicant, registry.Access{
			Actor:   "system:process",
			Purpose: "service:" + f.def.ID,
			Object:  "application:" + f.id.String(),
		})
		if err != nil {
			return "", nil, err
		}
		if !found {
			return "not_found", map[string]any{"registry": "population"}, nil
		}
		return "ok", map[string]any{"registry": "population"}, nil
	})
	if err != nil {
		return decision{}, err
	}

	var refusal string
	err = f.timed(ctx, "decide", func() (string, map[string]any, error) {
		switch {
		case !found:
			refusal = RefusalApplicantNotFound
		case person.Address == nil:
			refusal = RefusalNoAddress
		}
		if refusal != "" {
			return "refuse", map[string]any{"refusal": refusal}, nil
		}
		return "issue", nil, nil
	})
	if err != nil {
		return decision{}, err
	}
	if refusal != "" {
		return decision{status: StatusRefused, refusal: &refusal}, nil
	}

	var doc document.Document
	err = f.timed(ctx, "document.issue", func() (string, map[string]any, error) {
		fields, err := json.Marshal(addressCertificateFields(f.def, person))
		if err != nil {
			return "", nil, err
		}
		doc, err = f.e.docs.Issue(ctx, f.tx, document.Spec{
			Kind:       f.def.ID,
			Issuer:     f.def.OwnerAgency,
			SubjectIIN: f.applicant,
			Source:     "application:" + f.id.String(),
			Fields:     fields,
		})
		if err != nil {
			return "", nil, fmt.Errorf("issue document: %w", err)
		}
		return "ok", map[string]any{"document_id": doc.ID, "number": doc.Number}, nil
	})
	if err != nil {
		return decision{}, err
	}
	return decision{status: StatusCompleted, documentID: &doc.ID}, nil
}

// certificateFields is the content of a certificate of registered address.
type certificateFields struct {
	Title     i18n.Text `json:"title"`
	IIN       string    `json:"iin"`
	FullName  string    `json:"full_name"`
	BirthDate string    `json:"birth_date"`
	Address   i18n.Text `json:"address"`
	KATO      string    `json:"kato"`
	Service   string    `json:"service"`
	Version   int       `json:"service_version"`
}

func addressCertificateFields(def service.Definition, p registry.Person) certificateFields {
	a := *p.Address
	return certificateFields{
		Title:     def.Title,
		IIN:       p.IIN.String(),
		FullName:  p.FullName(),
		BirthDate: p.BirthDate.Format("2006-01-02"),
		Address:   i18n.Text{KK: a.Line(i18n.KK), RU: a.Line(i18n.RU), EN: a.Line(i18n.EN)},
		KATO:      a.KATO,
		Service:   def.ID,
		Version:   def.Version,
	}
}
