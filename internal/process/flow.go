package process

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/servicedef"
)

// flowRun is one run of a service's plan inside the application's
// transaction, from the application's cursor to the next pause or the end.
type flowRun struct {
	e         *Engine
	tx        pgx.Tx
	id        uuid.UUID
	def       service.Definition
	plan      *servicedef.Plan
	applicant iin.IIN
	attempt   int
	// steps are the timeline rows of this run, written with the outcome.
	steps []step
	// data is what the data sources returned, kept with a paused
	// application; result is the last document issued.
	data   map[string]any
	result *uuid.UUID
	// failedAt is the step being worked (stepPrepare while reading data and
	// deriving values): when the run fails, that step is the one retried.
	failedAt int
	// writes are the run's writes whose results nobody reads (events): they
	// go to the database with the run's last batch, in one round trip.
	writes *pgx.Batch
}

// stepPrepare marks the reads and derivations before the first step.
const stepPrepare = -1

// outcome is where a run leaves an application: decided, or paused with
// the step to go on from.
type outcome struct {
	status  string
	refusal *string
	cursor  int
}

// timelineName is the timeline's name of a step type.
func timelineName(stepType string) string {
	switch stepType {
	case servicedef.StepIssue:
		return "document.issue"
	case servicedef.StepReview:
		return "review.assigned"
	case servicedef.StepCall:
		return "exchange.call"
	case servicedef.StepFee:
		return "fee.invoiced"
	case servicedef.StepSign:
		return "sign.requested"
	}
	return stepType
}

// failedStep names the step that failed, for the timeline.
func (f *flowRun) failedStep() string {
	if f.plan == nil || f.failedAt < 0 || f.failedAt >= len(f.plan.Steps) {
		return "registry.read"
	}
	return timelineName(f.plan.Steps[f.failedAt].Step.Type)
}

// timed runs fn as a timeline step.
func (f *flowRun) timed(name string, fn func() (outcome string, detail map[string]any, err error)) error {
	start := f.e.cfg.Clock.Now()
	outcome, detail, err := fn()
	if err != nil {
		return err
	}
	f.steps = append(f.steps, step{Name: name, Actor: "system", Start: start, End: f.e.cfg.Clock.Now(),
		Outcome: outcome, Attempt: f.attempt, Detail: detail})
	return nil
}

// stepTimeout bounds one try of step i (or of the data reads).
func (f *flowRun) stepTimeout(i int) time.Duration {
	if i >= 0 && f.plan.Steps[i].Step.Timeout != nil {
		return f.plan.Steps[i].Step.Timeout.D
	}
	return f.e.cfg.JobTimeout
}

// run reads the plan's data (unless an earlier run did), derives its values
// and walks its steps from cursor.
func (f *flowRun) run(ctx context.Context, inputs map[string]any, cursor int, data, review map[string]any) (outcome, error) {
	a := &servicedef.Activation{Inputs: f.plan.Normalize(inputs), Now: f.e.cfg.Clock.Now(), Data: map[string]any{}, Review: review}
	f.failedAt = stepPrepare
	if data != nil {
		a.Data = data
	} else {
		readCtx, cancel := context.WithTimeout(ctx, f.stepTimeout(stepPrepare))
		defer cancel()
		for _, d := range f.plan.Data {
			if reads, err := d.Reads(a); err != nil {
				return outcome{}, err
			} else if !reads {
				continue
			}
			name := "registry.read"
			if d.Source.Exchange != "" {
				name = "exchange.read"
			}
			if err := f.timed(name, func() (string, map[string]any, error) {
				return f.read(readCtx, d, a)
			}); err != nil {
				return outcome{}, fmt.Errorf("read %s: %w", d.Source.Name, err)
			}
		}
	}
	f.data = a.Data
	if err := f.plan.Derive(a); err != nil {
		return outcome{}, fmt.Errorf("derive: %w", err)
	}
	for i, n := cursor, 0; i >= 0 && i < len(f.plan.Steps); i = f.plan.Steps[i].Next {
		if n++; n > servicedef.MaxStepsPerRun {
			return outcome{}, fmt.Errorf("service %s v%d loops", f.def.ID, f.def.Version)
		}
		f.failedAt = i
		runs, err := f.plan.Runs(i, a)
		if err != nil {
			return outcome{}, err
		}
		if !runs {
			continue
		}
		stepCtx, cancel := context.WithTimeout(ctx, f.stepTimeout(i))
		out, paused, err := f.step(stepCtx, i, a)
		cancel()
		if err != nil {
			return outcome{}, fmt.Errorf("step %s: %w", f.plan.Steps[i].Step.ID, err)
		}
		if paused {
			return out, nil
		}
	}
	if f.result == nil {
		return outcome{}, fmt.Errorf("service %s v%d completed without issuing a document", f.def.ID, f.def.Version)
	}
	return outcome{status: StatusCompleted}, nil
}

// step works step i. paused is true when the flow stops here: decided
// (refused) or waiting for someone or something.
func (f *flowRun) step(ctx context.Context, i int, a *servicedef.Activation) (out outcome, paused bool, err error) {
	s := f.plan.Steps[i].Step
	switch s.Type {
	case servicedef.StepDecide:
		var refusal string
		err := f.timed("decide", func() (string, map[string]any, error) {
			var err error
			refusal, err = f.plan.Decide(a)
			if err != nil {
				return "", nil, err
			}
			if refusal != "" {
				return "refuse", map[string]any{"refusal": refusal, "step": s.ID}, nil
			}
			return "eligible", map[string]any{"step": s.ID}, nil
		})
		if err != nil || refusal == "" {
			return outcome{}, false, err
		}
		return outcome{status: StatusRefused, refusal: &refusal}, true, nil
	case servicedef.StepReview:
		err := f.timed("review.assigned", func() (string, map[string]any, error) {
			t, err := f.e.openTask(ctx, f.tx, f.id, i, s, f.def.OwnerAgency)
			if err != nil {
				return "", nil, err
			}
			return "open", map[string]any{"step": s.ID, "task_id": t.ID, "role": s.Role, "due_at": t.DueAt}, nil
		})
		return outcome{status: StatusInReview, cursor: i}, err == nil, err
	case servicedef.StepWait:
		var due time.Time
		if s.Until != nil {
			v, err := f.plan.Steps[i].Until.Eval(a)
			if err != nil {
				return outcome{}, false, err
			}
			due, _ = v.(time.Time)
		} else {
			due = a.Now.Add(s.After.D)
		}
		if !due.After(f.e.cfg.Clock.Now()) {
			return outcome{}, false, f.timed("wait", func() (string, map[string]any, error) {
				return "passed", map[string]any{"step": s.ID, "until": due}, nil
			})
		}
		err := f.timed("wait", func() (string, map[string]any, error) {
			_, err := f.tx.Exec(ctx, `INSERT INTO process_timer (application_id, kind, due_at) VALUES ($1, 'resume', $2)`, f.id, due)
			return "waiting", map[string]any{"step": s.ID, "until": due}, err
		})
		return outcome{status: StatusWaiting, cursor: f.plan.Steps[i].Next}, err == nil, err
	case servicedef.StepFee:
		var paid bool
		err := f.timed("fee.invoiced", func() (string, map[string]any, error) {
			inv, alreadyPaid, err := f.e.invoice(ctx, f.tx, f.id, f.applicant.String(), s, f.def.OwnerAgency)
			if err != nil {
				return "", nil, err
			}
			paid = alreadyPaid
			detail := map[string]any{"step": s.ID, "invoice": inv.Number, "amount_tiyn": inv.AmountTiyn, "due_at": inv.DueAt}
			if paid {
				return "paid", detail, nil // paid before a correction: not charged again
			}
			return "open", detail, nil
		})
		if err != nil || paid {
			return outcome{}, false, err
		}
		return outcome{status: StatusAwaitingPayment, cursor: i}, true, nil
	case servicedef.StepSign:
		var signed bool
		err := f.timed("sign.requested", func() (string, map[string]any, error) {
			due, alreadySigned, err := f.requestSignature(ctx, s, a)
			if err != nil {
				return "", nil, err
			}
			signed = alreadySigned
			if signed {
				return "signed", map[string]any{"step": s.ID}, nil
			}
			return "open", map[string]any{"step": s.ID, "due_at": due}, nil
		})
		if err != nil || signed {
			return outcome{}, false, err
		}
		return outcome{status: StatusAwaitingSignature, cursor: i}, true, nil
	case servicedef.StepCall:
		return outcome{}, false, f.timed("exchange.call", func() (string, map[string]any, error) {
			return f.call(ctx, i, a)
		})
	case servicedef.StepIssue:
		return outcome{}, false, f.timed("document.issue", func() (string, map[string]any, error) {
			doc, err := f.issue(ctx, i, a)
			if err != nil {
				return "", nil, err
			}
			// The last issued document is the application's result.
			f.result = &doc.ID
			return "ok", map[string]any{"document_id": doc.ID, "number": doc.Number, "step": s.ID}, nil
		})
	case servicedef.StepNotify:
		return outcome{}, false, f.timed("notify", func() (string, map[string]any, error) {
			// Delivery belongs to the notification outbox's consumers.
			err := outbox.Queue(f.writes, f.e.cfg.Clock.Now(), "notify.message.requested", f.id.String(), map[string]any{
				"application_id": f.id, "step": s.ID, "to_iin": f.applicant.String(), "message": s.Message.Text,
			})
			return "queued", map[string]any{"step": s.ID}, err
		})
	}
	return outcome{}, false, fmt.Errorf("type %s is not supported by this engine", s.Type)
}

// read performs one data source's read, audited, into a.Data.
func (f *flowRun) read(ctx context.Context, d servicedef.PlanData, a *servicedef.Activation) (string, map[string]any, error) {
	detail := map[string]any{"registry": d.Source.Registry, "source": d.Source.Name}
	v, err := d.Key.Eval(a)
	if err != nil {
		return "", nil, err
	}
	key, _ := v.(string)
	purpose := "service:" + f.def.ID
	if d.Source.Basis != "" {
		purpose += "; basis: " + d.Source.Basis
	} else {
		purpose += "; consent"
		if err := f.checkConsent(ctx, d, key); err != nil {
			return "", nil, err
		}
	}
	if d.Source.Exchange != "" {
		return f.readExchange(ctx, d, a, key, purpose)
	}
	switch d.Source.Registry {
	case registry.PopulationRegistry:
		// A person: the population record with the registered address of
		// the addresses registry, both reads audited.
		id, err := iin.Parse(key)
		if err != nil {
			return "not_found", detail, nil
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
	return f.readRecords(ctx, d, a, key, registry.Access{Actor: "system:process", Purpose: purpose, Object: "application:" + f.id.String()}, detail)
}

// checkConsent makes sure a data source that rests on consent may read
// key's data: the applicant's own data needs none (applying is asking);
// another person's needs their consent to the service's agency for the
// service, checked in the run's transaction so that its use commits with
// the read. A missing consent stops the application for an operator at
// once: trying again would only repeat the refusal and its alert.
func (f *flowRun) checkConsent(ctx context.Context, d servicedef.PlanData, key string) error {
	if key == f.applicant.String() {
		return nil
	}
	if f.e.cfg.Consents == nil {
		return stop(fmt.Errorf("data source %s needs the consent of the person it reads, and this engine has no consent ledger", d.Source.Name))
	}
	items := []string{"service:" + d.Source.Exchange}
	if d.Source.Exchange == "" {
		items = f.plan.Attributes(d.Source.Registry)
	}
	_, err := f.e.cfg.Consents.Check(ctx, f.tx, consent.Need{Subject: key, Requester: "agency:" + f.def.OwnerAgency, Items: items,
		Purpose: "service:" + f.def.ID, At: f.e.cfg.Clock.Now(), Actor: "system:process", Channel: "process", Object: "application:" + f.id.String()})
	if err != nil {
		return stop(fmt.Errorf("data source %s: %w", d.Source.Name, err))
	}
	return nil
}

// readRecords reads a declarative registry (internal/registry): the record
// with the key, or with by: every current record whose attribute is the
// key. The store audits each record read in the run's transaction.
func (f *flowRun) readRecords(ctx context.Context, d servicedef.PlanData, a *servicedef.Activation, key string, access registry.Access, detail map[string]any) (string, map[string]any, error) {
	if f.e.cfg.Registries == nil {
		return "", nil, fmt.Errorf("registry %q cannot be read: this engine has no registry store", d.Source.Registry)
	}
	if d.Source.By != "" {
		recs, next, err := f.e.cfg.Registries.Search(ctx, f.tx, d.Source.Registry,
			registry.Query{Equal: map[string]any{d.Source.By: key}, Limit: registry.MaxPage}, access)
		if err != nil {
			return "", nil, err
		}
		if next != "" {
			return "", nil, fmt.Errorf("registry %s holds more than %d records with %s = the key: too many for one application", d.Source.Registry, registry.MaxPage, d.Source.By)
		}
		list := make([]any, len(recs))
		for i, r := range recs {
			list[i] = r.Data
		}
		a.Data[d.Source.Name] = list
		detail["records"] = len(list)
		return "ok", detail, nil
	}
	rec, found, err := f.e.cfg.Registries.Get(ctx, f.tx, d.Source.Registry, key, nil, access)
	if err != nil {
		return "", nil, err
	}
	if !found || rec.Cancelled {
		return "not_found", detail, nil
	}
	a.Data[d.Source.Name] = rec.Data
	return "ok", detail, nil
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
