package service

import (
	"context"
	"fmt"
	"sync"

	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/servicedef"
)

// FlowPlan marks a declarative service: the engine runs its compiled plan.
const FlowPlan = "plan"

// EnvironmentFunc says what definitions may refer to now: agencies with
// their roles, registries with their record shapes.
type EnvironmentFunc func(ctx context.Context) (servicedef.Environment, error)

// plans caches compiled plans; a published version never changes.
type plans struct {
	env EnvironmentFunc
	mu  sync.Mutex
	m   map[versionKey]*servicedef.Plan
}

// SetEnvironment tells the catalogue how to compile definitions.
func (c *Catalogue) SetEnvironment(env EnvironmentFunc) {
	c.plans.env = env
}

// DefinitionOf builds the catalogue entry of a compiled plan.
func DefinitionOf(p *servicedef.Plan, source []byte) Definition {
	f := p.File
	refusals := map[string]i18n.Text{}
	for code, t := range f.Texts.Refusals {
		refusals[code] = t.Text
	}
	return Definition{
		ID: f.ID, Version: f.Version, OwnerAgency: f.Owner, Audience: f.Audience, Category: f.Category,
		Flow:  FlowPlan,
		Title: f.Texts.Title.Text, Description: f.Texts.Description.Text, Result: f.Texts.Result.Text,
		TargetDuration: f.SLA.Target.D, LegalDays: f.SLA.LegalDays,
		Refusals: refusals,
		Source:   string(source),
	}
}

// Compile checks a definition file against the current environment.
func (c *Catalogue) Compile(ctx context.Context, source []byte) (*servicedef.Plan, []servicedef.Problem, error) {
	if c.plans.env == nil {
		return nil, nil, fmt.Errorf("service catalogue: no environment to compile against")
	}
	env, err := c.plans.env(ctx)
	if err != nil {
		return nil, nil, err
	}
	plan, problems := servicedef.Compile(source, env)
	return plan, problems, nil
}

// PublishSource compiles a definition file and publishes it as the current
// version of its service. Problems mean nothing was published.
func (c *Catalogue) PublishSource(ctx context.Context, source []byte) (Definition, []servicedef.Problem, error) {
	plan, problems, err := c.Compile(ctx, source)
	if err != nil || len(problems) > 0 {
		return Definition{}, problems, err
	}
	d := DefinitionOf(plan, source)
	if err := c.Publish(ctx, d); err != nil {
		return Definition{}, nil, err
	}
	return d, nil, nil
}

// Plan returns the compiled plan of a declarative service version.
func (c *Catalogue) Plan(ctx context.Context, id string, version int) (*servicedef.Plan, error) {
	key := versionKey{id, version}
	c.plans.mu.Lock()
	p, ok := c.plans.m[key]
	c.plans.mu.Unlock()
	if ok {
		return p, nil
	}
	d, err := c.Version(ctx, id, version)
	if err != nil {
		return nil, err
	}
	if d.Flow != FlowPlan {
		return nil, fmt.Errorf("service %s v%d is not declarative", id, version)
	}
	plan, problems, err := c.Compile(ctx, []byte(d.Source))
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		// It compiled when published; the environment has changed since.
		return nil, fmt.Errorf("service %s v%d no longer compiles: %s", id, version, problems[0].Format(id))
	}
	c.plans.mu.Lock()
	c.plans.m[key] = plan
	c.plans.mu.Unlock()
	return plan, nil
}
