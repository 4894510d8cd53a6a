package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/internal/web"
)

// AgencyNames finds an agency's name; the agency capability satisfies it.
type AgencyNames interface {
	Name(ctx context.Context, id string) (i18n.Text, error)
}

// Summary is a service as the catalogue API shows it, in one language.
type Summary struct {
	ID             string `json:"id"`
	Version        int    `json:"version"`
	Title          string `json:"title"`
	Description    string `json:"description"`
	Result         string `json:"result"`
	Owner          Owner  `json:"owner"`
	Audience       string `json:"audience"`
	Category       string `json:"category"`
	TargetDuration string `json:"target_duration"`
	LegalDays      int    `json:"legal_deadline_working_days"`
	// FeeTiyn is what every applicant pays today (fees without a
	// condition); Fees lists each fee, conditional ones included.
	FeeTiyn int64 `json:"fee_tiyn"`
	Fees    []Fee `json:"fees"`
	// SignatureRequired: the applicant signs the application with an
	// electronic signature.
	SignatureRequired bool   `json:"signature_required"`
	Language          string `json:"language"`
	// Accepting is false while the service needs a step the engine cannot
	// run yet (a human review, until officers' task lists exist).
	Accepting bool `json:"accepting"`
}

// Fee is a state fee a service charges.
type Fee struct {
	Step string `json:"step"`
	// Declared is the amount as the service declares it, e.g. "0.2 MRP".
	Declared string `json:"declared"`
	// AmountTiyn is the amount today; 0 when it cannot be known (an MRP of
	// a year the platform does not know yet).
	AmountTiyn int64 `json:"amount_tiyn"`
	// Condition is when the fee applies (a CEL expression), empty when
	// always.
	Condition string `json:"condition,omitempty"`
}

// Owner is the agency that provides a service.
type Owner struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Summarise renders d in lang.
func (c *Catalogue) Summarise(ctx context.Context, d Definition, names AgencyNames, lang i18n.Lang) (Summary, error) {
	owner, err := names.Name(ctx, d.OwnerAgency)
	if err != nil {
		return Summary{}, fmt.Errorf("owner of %s: %w", d.ID, err)
	}
	// Every compiled service runs on the engine, review steps included.
	accepting := d.Flow == FlowPlan
	fees, feeTiyn, signature := []Fee{}, d.FeeTiyn, false
	if d.Flow == FlowPlan {
		plan, err := c.Plan(ctx, d.ID, d.Version)
		if err != nil {
			return Summary{}, err
		}
		now := c.clock.Now()
		for _, s := range plan.Steps {
			switch s.Step.Type {
			case servicedef.StepSign:
				signature = true
			case servicedef.StepFee:
				tiyn, _ := s.Step.Amount.Tiyn(now)
				f := Fee{Step: s.Step.ID, Declared: s.Step.Amount.String(), AmountTiyn: tiyn}
				if s.When != nil {
					f.Condition = strings.TrimSpace(s.When.Src.Src)
				} else {
					feeTiyn += tiyn
				}
				fees = append(fees, f)
			}
		}
	}
	return Summary{
		ID: d.ID, Version: d.Version,
		Title: d.Title.In(lang), Description: d.Description.In(lang), Result: d.Result.In(lang),
		Owner:    Owner{ID: d.OwnerAgency, Name: owner.In(lang)},
		Audience: d.Audience, Category: d.Category,
		TargetDuration: ISODuration(d.TargetDuration),
		LegalDays:      d.LegalDays, FeeTiyn: feeTiyn, Fees: fees, SignatureRequired: signature,
		Language:  string(lang),
		Accepting: accepting,
	}, nil
}

// Routes mounts the catalogue API. adminToken guards publishing; empty
// switches publishing through the API off.
func (c *Catalogue) Routes(s *web.Server, names AgencyNames, adminToken string) {
	s.HandleFunc("POST /api/v1/services", func(w http.ResponseWriter, r *http.Request) error {
		return c.handlePublish(w, r, names, adminToken)
	})
	s.HandleFunc("GET /api/v1/services/{id}/versions", func(w http.ResponseWriter, r *http.Request) error {
		defs, err := c.Versions(r.Context(), r.PathValue("id"))
		if errors.Is(err, ErrNotFound) {
			return apierr.New(apierr.ServiceNotFound)
		}
		if err != nil {
			return err
		}
		lang := web.Lang(r)
		out := make([]VersionSummary, 0, len(defs))
		current, _ := c.Current(r.Context(), r.PathValue("id"))
		for _, d := range defs {
			sum, err := c.Summarise(r.Context(), d, names, lang)
			if err != nil {
				return err
			}
			out = append(out, VersionSummary{Summary: sum, PublishedAt: d.PublishedAt, Current: d.Version == current.Version})
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"versions": out})
		return nil
	})
	s.HandleFunc("GET /api/v1/services", func(w http.ResponseWriter, r *http.Request) error {
		defs, err := c.List(r.Context())
		if err != nil {
			return err
		}
		lang := web.Lang(r)
		out := make([]Summary, 0, len(defs))
		for _, d := range defs {
			sum, err := c.Summarise(r.Context(), d, names, lang)
			if err != nil {
				return err
			}
			out = append(out, sum)
		}
		w.Header().Set("Content-Language", string(lang))
		web.WriteJSON(w, http.StatusOK, map[string]any{"services": out})
		return nil
	})
	s.HandleFunc("GET /api/v1/services/{id}", func(w http.ResponseWriter, r *http.Request) error {
		d, err := c.Current(r.Context(), r.PathValue("id"))
		if errors.Is(err, ErrNotFound) {
			return apierr.New(apierr.ServiceNotFound)
		}
		if err != nil {
			return err
		}
		lang := web.Lang(r)
		sum, err := c.Summarise(r.Context(), d, names, lang)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Language", string(lang))
		web.WriteJSON(w, http.StatusOK, sum)
		return nil
	})
}

// ISODuration writes d as an ISO 8601 duration ("PT5M", "PT1H30M", "PT0S").
func ISODuration(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("P")
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d == 0 {
		return b.String()
	}
	b.WriteString("T")
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	if s := d / time.Second; s > 0 {
		fmt.Fprintf(&b, "%dS", s)
	}
	return b.String()
}

// VersionSummary is one published version of a service.
type VersionSummary struct {
	Summary
	PublishedAt time.Time `json:"published_at"`
	Current     bool      `json:"current"`
}

// maxDefinition bounds a published definition file.
const maxDefinition = 4 << 20

func (c *Catalogue) handlePublish(w http.ResponseWriter, r *http.Request, names AgencyNames, adminToken string) error {
	if err := web.RequireBearer(r, adminToken); err != nil {
		return err
	}
	switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt {
	case "application/yaml", "application/x-yaml", "text/yaml":
	default:
		return apierr.New(apierr.UnsupportedMedia)
	}
	src, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDefinition))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return apierr.New(apierr.BodyTooLarge)
	}
	if err != nil {
		return apierr.Wrap(apierr.InvalidJSON, err)
	}
	d, problems, err := c.PublishSource(r.Context(), src)
	if errors.Is(err, ErrVersionConflict) {
		return apierr.New(apierr.ServiceConflict)
	}
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		e := apierr.New(apierr.ServiceInvalid)
		e.Details = map[string]any{"problems": problems}
		return e
	}
	sum, err := c.Summarise(r.Context(), d, names, web.Lang(r))
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/services/%s/versions", d.ID))
	web.WriteJSON(w, http.StatusCreated, sum)
	return nil
}
