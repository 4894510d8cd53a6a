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
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/servicedef"
)

// flowRun is one run of a service's plan inside the application's
// transaction.
type flowRun struct {
	e         *Engine
	tx        pgx.Tx
	id        uuid.UUID
	def       service.Definition
	plan      *servicedef.Plan
	applicant iin.IIN
	attempt   int
	// steps are the timeline rows of this run, written with the decision.
	steps []step
}

// timed runs fn as a timeline step.
func (f *flowRun) timed(_ context.Context, name string, fn func() (outcome string, detail map[string]any, err error)) error {
	start := f.e.cfg.Clock.Now()
	outcome, detail, err := fn()
	if err != nil {
		return err
	}
	f.steps = append(f.steps, step{Name: name, Actor: "system", Start: start, End: f.e.cfg.Clock.Now(),
		Outcome: outcome, Attempt: f.attempt, Detail: detail})
	return nil
}

// run reads the plan's data, derives its values and walks its steps.
func (f *flowRun) run(ctx context.Context, inputs map[string]any) (decision, error) {
	a := &servicedef.Activation{Inputs: f.plan.Normalize(inputs), Now: f.e.cfg.Clock.Now(), Data: map[string]any{}}
	for _, d := range f.plan.Data {
		if reads, err := d.Reads(a); err != nil {
			return decision{}, err
		} else if !reads {
			continue
		}
		if err := f.timed(ctx, "registry.read", func() (string, map[string]any, error) {
			return f.read(ctx, d, a)
		}); err != nil {
			return decision{}, err
		}
	}
	if err := f.plan.Derive(a); err != nil {
		return decision{}, fmt.Errorf("derive: %w", err)
	}
	var result *uuid.UUID
	for i, steps := 0, 0; i >= 0 && i < len(f.plan.Steps); i = f.plan.Steps[i].Next {
		if steps++; steps > 1000 {
			return decision{}, fmt.Errorf("service %s v%d loops", f.def.ID, f.def.Version)
		}
		runs, err := f.plan.Runs(i, a)
		if err != nil {
			return decision{}, err
		}
		if !runs {
			continue
		}
		s := f.plan.Steps[i].Step
		switch s.Type {
		case servicedef.StepDecide:
			var refusal string
			if err := f.timed(ctx, "decide", func() (string, map[string]any, error) {
				var err error
				refusal, err = f.plan.Decide(a)
				if err != nil {
					return "", nil, err
				}
				if refusal != "" {
					return "refuse", map[string]any{"refusal": refusal, "step": s.ID}, nil
				}
				return "eligible", map[string]any{"step": s.ID}, nil
			}); err != nil {
				return decision{}, err
			}
			if refusal != "" {
				return decision{status: StatusRefused, refusal: &refusal}, nil
			}
		case servicedef.StepIssue:
			var doc document.Document
			if err := f.timed(ctx, "document.issue", func() (string, map[string]any, error) {
				var err error
				doc, err = f.issue(ctx, i, a)
				if err != nil {
					return "", nil, err
				}
				return "ok", map[string]any{"document_id": doc.ID, "number": doc.Number, "step": s.ID}, nil
			}); err != nil {
				return decision{}, err
			}
			// The last issued document is the application's result.
			result = &doc.ID
		case servicedef.StepNotify:
			if err := f.timed(ctx, "notify", func() (string, map[string]any, error) {
				// Delivery belongs to the notification outbox's consumers.
				err := outbox.Emit(ctx, f.tx, f.e.cfg.Clock.Now(), "notify.message.requested", f.id.String(), map[string]any{
					"application_id": f.id, "to_iin": f.applicant.String(), "message": s.Message.Text,
				})
				return "queued", map[string]any{"step": s.ID}, err
			}); err != nil {
				return decision{}, err
			}
		default:
			// Submit refuses services with steps the engine cannot run yet.
			return decision{}, fmt.Errorf("step %s: type %s is not supported by this engine", s.ID, s.Type)
		}
	}
	if result == nil {
		return decision{}, fmt.Errorf("service %s v%d completed without issuing a document", f.def.ID, f.def.Version)
	}
	return decision{status: StatusCompleted, documentID: result}, nil
}

// read performs one data source's read, audited, into a.Data.
func (f *flowRun) read(ctx context.Context, d servicedef.PlanData, a *servicedef.Activation) (string, map[string]any, error) {
	detail := map[string]any{"registry": d.Source.Registry, "source": d.Source.Name}
	v, err := d.Key.Eval(a)
	if err != nil {
		return "", nil, err
	}
	key, _ := v.(string)
	switch d.Source.Registry {
	case "population":
		id, err := iin.Parse(key)
		if err != nil {
			return "not_found", detail, nil
		}
		purpose := "service:" + f.def.ID
		if d.Source.Basis != "" {
			purpose += "; basis: " + d.Source.Basis
		} else {
			purpose += "; consent"
		}
		person, found, err := f.e.people.Person(ctx, f.tx, id, registry.Access{
			Actor: "system:process", Purpose: purpose, Object: "application:" + f.id.String(),
		})
		if err != nil {
			return "", nil, err
		}
		if !found {
			return "not_found", detail, nil
		}
		a.Data[d.Source.Name] = person.Record()
		return "ok", detail, nil
	}
	return "", nil, fmt.Errorf("registry %q cannot be read by this engine", d.Source.Registry)
}

// DocumentContent is what a document issued from a plan says: its title and
// its fields in order, each with its label, so that the signed document
// explains itself to any verifier.
type DocumentContent struct {
	Title          i18n.Text       `json:"title"`
	Service        string          `json:"service"`
	ServiceVersion int             `json:"service_version"`
	Fields         []DocumentField `json:"fields"`
}

// DocumentField is one labelled field of a document.
type DocumentField struct {
	Name  string    `json:"name"`
	Label i18n.Text `json:"label"`
	Value any       `json:"value"`
}

func (f *flowRun) issue(ctx context.Context, step int, a *servicedef.Activation) (document.Document, error) {
	fields, err := f.plan.Document(step, a)
	if err != nil {
		return document.Document{}, err
	}
	spec := f.plan.Steps[step].Step.Document
	content := DocumentContent{Title: f.def.Title, Service: f.def.ID, ServiceVersion: f.def.Version}
	for _, fl := range fields {
		label := spec.Labels[fl.Name].Text
		if !label.Complete() {
			label = i18n.Text{KK: fl.Name, RU: fl.Name, EN: fl.Name}
		}
		content.Fields = append(content.Fields, DocumentField{Name: fl.Name, Label: label, Value: fl.Value})
	}
	body, err := json.Marshal(content)
	if err != nil {
		return document.Document{}, err
	}
	return f.e.docs.Issue(ctx, f.tx, document.Spec{
		Kind:       spec.Kind,
		Issuer:     f.def.OwnerAgency,
		SubjectIIN: f.applicant,
		Source:     fmt.Sprintf("application:%s:%s", f.id, f.plan.Steps[step].Step.ID),
		Fields:     body,
	})
}
