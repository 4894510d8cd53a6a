package servicedef

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ortaq/ortaq/internal/i18n"
)

// File is a service definition as written: one versioned YAML file.
type File struct {
	Keys       Keys         `yaml:"-"`
	At         Pos          `yaml:"-"`
	APIVersion string       `yaml:"apiVersion"`
	Kind       string       `yaml:"kind"`
	ID         string       `yaml:"id"`
	Version    int          `yaml:"version"`
	Owner      string       `yaml:"owner"`
	Audience   string       `yaml:"audience"`
	Category   string       `yaml:"category"`
	Texts      Texts        `yaml:"texts"`
	Form       Form         `yaml:"form"`
	Data       []DataSource `yaml:"data"`
	Rules      Rules        `yaml:"rules"`
	Steps      []Step       `yaml:"steps"`
	SLA        SLA          `yaml:"sla"`
	Tests      []TestCase   `yaml:"tests"`
}

// Texts are what citizens read about the service, in every language.
type Texts struct {
	At          Pos             `yaml:"-"`
	Title       Text            `yaml:"title"`
	Description Text            `yaml:"description"`
	Result      Text            `yaml:"result"`
	Refusals    map[string]Text `yaml:"refusals"`
}

// Form is what the citizen fills in: a JSON Schema of the inputs and how to
// present each field.
type Form struct {
	At     Pos         `yaml:"-"`
	Schema JSONValue   `yaml:"schema"`
	Fields []FormField `yaml:"fields"`
}

// FormField is the presentation of one input, in form order.
type FormField struct {
	Keys        Keys   `yaml:"-"`
	At          Pos    `yaml:"-"`
	Name        string `yaml:"name"`
	Widget      string `yaml:"widget"`
	Label       Text   `yaml:"label"`
	Hint        *Text  `yaml:"hint"`
	VisibleWhen *Expr  `yaml:"visibleWhen"`
	// Options label each value of an enum input, in the enum's order.
	Options map[string]Text `yaml:"options"`
	// Prefill names a value the state already holds, <registry>.<attribute>
	// of a registry keyed by the applicant's IIN: the portal shows the
	// applicant's own value in the field, marked with its registry, and
	// the applicant may change it (e.g. where to collect a document,
	// defaulting to the registered address). Data the service needs as it
	// is belongs in data:, not in the form.
	Prefill string `yaml:"prefill"`
}

// PrefillSource splits a form field's prefill into its registry and
// attribute.
func (f FormField) PrefillSource() (registry, attribute string) {
	registry, attribute, _ = strings.Cut(f.Prefill, ".")
	return registry, attribute
}

// DataSource is a named read of data the state already holds: from one of
// the platform's registries, or from another agency's system through the
// exchange gateway.
type DataSource struct {
	Keys     Keys   `yaml:"-"`
	At       Pos    `yaml:"-"`
	Name     string `yaml:"name"`
	Registry string `yaml:"registry"`
	// Exchange is the X-Road service id read instead of a registry
	// (INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE), with GET on Path (a CEL
	// string, default "/" + key); Response is the JSON Schema of the answer
	// body, which types the rules that use it. The key is the person the
	// read is about (sent as X-Road-UserId).
	Exchange string    `yaml:"exchange"`
	Path     *Expr     `yaml:"path"`
	Response JSONValue `yaml:"response"`
	Key      Expr      `yaml:"key"`
	// By reads, instead of the record whose key is Key, every current record
	// whose attribute By equals it (e.g. the criminal records of a person):
	// the data source is then a list.
	By      string   `yaml:"by"`
	When    *Expr    `yaml:"when"` // read only when this holds (inputs only)
	Basis   string   `yaml:"basis"`
	Consent bool     `yaml:"consent"`
	Prefill []string `yaml:"prefill"`
}

// Rules are derived values and eligibility conditions, in CEL.
type Rules struct {
	At          Pos           `yaml:"-"`
	Derive      []Derived     `yaml:"derive"`
	Eligibility []Eligibility `yaml:"eligibility"`
}

// Derived is a value computed from inputs, data and earlier derived values.
type Derived struct {
	Keys Keys   `yaml:"-"`
	At   Pos    `yaml:"-"`
	Name string `yaml:"name"`
	Expr Expr   `yaml:"expr"`
}

// Eligibility is a condition the application must meet; when it is false the
// application is refused with the named refusal.
type Eligibility struct {
	Keys    Keys   `yaml:"-"`
	At      Pos    `yaml:"-"`
	Name    string `yaml:"name"`
	Expr    Expr   `yaml:"expr"`
	Refusal string `yaml:"refusal"`
}

// Step kinds.
const (
	StepDecide = "decide" // evaluate the eligibility rules
	StepReview = "review" // a human decision by an agency role
	StepIssue  = "issue"  // issue the signed result document
	StepNotify = "notify" // tell the applicant
	StepWait   = "wait"   // pause until a time or for a while
	StepFee    = "fee"    // the applicant pays a state fee
	StepSign   = "sign"   // the applicant signs the application with an electronic signature
	StepCall   = "call"   // send data to another agency's system through the exchange gateway
)

// SignerApplicant is the only signer a sign step has for now: the person
// who applies, identified by the IIN in their certificate.
const SignerApplicant = "applicant"

// Step is one step of the process. Steps run in order unless one names its
// successor with next; a step with when runs only if its condition holds.
type Step struct {
	Keys Keys   `yaml:"-"`
	At   Pos    `yaml:"-"`
	ID   string `yaml:"id"`
	Type string `yaml:"type"`
	When *Expr  `yaml:"when"`
	Next string `yaml:"next"`
	// Attempts is how often an automatic step is tried before the
	// application stops as failed for an operator; Timeout bounds one try.
	// Both default to the engine's settings.
	Attempts int       `yaml:"attempts"`
	Timeout  *Duration `yaml:"timeout"`
	// review, fee and sign. A deadline in whole days counts working days of
	// the platform's calendar; one with hours or minutes counts clock time.
	// When a review's passes, the task goes to EscalateTo (or stays with
	// Role) and the supervisors are told; when a fee's or a signature's
	// passes unpaid or unsigned, the application is refused with Refusal.
	Role       string    `yaml:"role"`
	Deadline   *Duration `yaml:"deadline"`
	Decisions  []string  `yaml:"decisions"`
	EscalateTo string    `yaml:"escalateTo"`
	// Refusals are the codes of texts.refusals an officer may give when
	// refusing.
	Refusals []string `yaml:"refusals"`
	// Outputs is the JSON Schema (an object) of what the officer records
	// when approving, e.g. a queue number or an amount; later steps and
	// rules read it as review.<step id>.<field>.
	Outputs JSONValue `yaml:"outputs"`
	// wait: until a time (a CEL timestamp) or for a duration.
	Until *Expr     `yaml:"until"`
	After *Duration `yaml:"after"`
	// fee: the amount, and sign: who signs (applicant). Refusal (fee and
	// sign) is the code of texts.refusals given when the deadline passes.
	Amount  *Amount `yaml:"amount"`
	Signer  string  `yaml:"signer"`
	Refusal string  `yaml:"refusal"`
	// call: POST Body (fields, each a CEL expression) to Path (a CEL
	// string, default "/") of the exchange service Service. The request's
	// X-Road-Id is the same on every try, so a provider that keeps message
	// ids acts once however often the step is retried.
	Service  string     `yaml:"service"`
	CallPath *Expr      `yaml:"path"`
	Body     NamedExprs `yaml:"body"`
	// issue
	Document *DocumentSpec `yaml:"document"`
	// notify
	Message *Text `yaml:"message"`
}

// Amount is a fee: in monthly calculation indices (MRP, whose value in
// tenge the budget law sets each year, resolved on the day the fee is due)
// or in tenge. Exactly one is given.
type Amount struct {
	Keys Keys    `yaml:"-"`
	At   Pos     `yaml:"-"`
	MRP  float64 `yaml:"mrp"`
	KZT  float64 `yaml:"kzt"`
}

// String shows the amount as declared, e.g. "0.5 MRP" or "1500 KZT".
func (a Amount) String() string {
	if a.MRP != 0 {
		return strconv.FormatFloat(a.MRP, 'f', -1, 64) + " MRP"
	}
	return strconv.FormatFloat(a.KZT, 'f', -1, 64) + " KZT"
}

// mrpTenge is the monthly calculation index (MRP) in tenge, as each year's
// law on the republican budget sets it.
var mrpTenge = map[int]int64{2024: 3692, 2025: 3932, 2026: 4325}

// kazakhstan is the country's one time zone (UTC+5), in which a year begins.
var kazakhstan = time.FixedZone("UTC+5", 5*60*60)

// Tiyn is the amount in tiyn (1/100 tenge) on day at: an amount in MRP at
// that year's value. A year whose MRP is not known here is an error rather
// than a guessed amount.
func (a Amount) Tiyn(at time.Time) (int64, error) {
	if a.KZT > 0 {
		return int64(math.Round(a.KZT * 100)), nil
	}
	year := at.In(kazakhstan).Year()
	tenge, ok := mrpTenge[year]
	if !ok {
		return 0, fmt.Errorf("the MRP of %d is not known to this platform: add it to servicedef's table", year)
	}
	return int64(math.Round(a.MRP * float64(tenge) * 100)), nil
}

// Outcomes of fee and sign steps as a test case gives them.
const (
	Paid     = "paid"
	Unpaid   = "unpaid"
	Signed   = "signed"
	Unsigned = "unsigned"
)

// ParseDecision reads what happens at a step that waits for someone, as
// written in a test case or sent by the API. For a review step, an
// officer's decision: approve, return, refuse or refuse:<refusal> (a bare
// refuse takes the step's only refusal). For a fee step, paid or unpaid;
// for a sign step, signed or unsigned: the first goes on (approve), the
// second is the deadline passing (refuse with the step's refusal).
func (s Step) ParseDecision(v string) (decision, refusal string, err error) {
	switch s.Type {
	case StepFee, StepSign:
		yes, no := Paid, Unpaid
		if s.Type == StepSign {
			yes, no = Signed, Unsigned
		}
		switch v {
		case yes:
			return "approve", "", nil
		case no:
			return "refuse", s.Refusal, nil
		}
		return "", "", fmt.Errorf("step %q is %s or %s, not %q", s.ID, yes, no, v)
	}
	decision, refusal, _ = strings.Cut(v, ":")
	if !slices.Contains(s.Decisions, decision) {
		return "", "", fmt.Errorf("step %q allows the decisions %s, not %q", s.ID, strings.Join(s.Decisions, ", "), decision)
	}
	if decision != "refuse" {
		if refusal != "" {
			return "", "", fmt.Errorf("step %q: only refuse takes a refusal, not %s", s.ID, decision)
		}
		return decision, "", nil
	}
	if refusal == "" {
		if len(s.Refusals) != 1 {
			return "", "", fmt.Errorf("step %q: name the refusal, one of %s (refuse:<refusal>)", s.ID, strings.Join(s.Refusals, ", "))
		}
		return decision, s.Refusals[0], nil
	}
	if !slices.Contains(s.Refusals, refusal) {
		return "", "", fmt.Errorf("step %q offers the refusals %s, not %q", s.ID, strings.Join(s.Refusals, ", "), refusal)
	}
	return decision, refusal, nil
}

// DocumentSpec is the result document: its kind and fields, each a CEL
// expression, in display order, with the label each field shows.
type DocumentSpec struct {
	Keys   Keys            `yaml:"-"`
	At     Pos             `yaml:"-"`
	Kind   string          `yaml:"kind"`
	Fields NamedExprs      `yaml:"fields"`
	Labels map[string]Text `yaml:"labels"`
}

// SLA is the promise: the target delivery time and the legal deadline.
type SLA struct {
	Keys      Keys     `yaml:"-"`
	At        Pos      `yaml:"-"`
	Target    Duration `yaml:"target"`
	LegalDays int      `yaml:"legalDays"`
}

// TestCase is registry fixtures and inputs with the expected outcome.
type TestCase struct {
	Keys Keys   `yaml:"-"`
	At   Pos    `yaml:"-"`
	Name string `yaml:"name"`
	// Now fixes the clock for the case (RFC 3339 or YYYY-MM-DD), so that
	// rules about ages and deadlines give the same answer every year.
	Now      string                 `yaml:"now"`
	Registry map[string][]JSONValue `yaml:"registry"`
	// Exchange holds the answers of exchange services: by data source, by
	// key, the answer's body. A key not listed answers "not found".
	Exchange map[string]map[string]JSONValue `yaml:"exchange"`
	// Outputs are what the officer records when approving, by review step.
	Outputs   map[string]JSONValue `yaml:"outputs"`
	Inputs    JSONValue            `yaml:"inputs"`
	Decisions map[string]string    `yaml:"decisions"`
	Expect    Expect               `yaml:"expect"`
}

// Expect is a test case's expected outcome.
type Expect struct {
	Keys     Keys                 `yaml:"-"`
	At       Pos                  `yaml:"-"`
	Outcome  string               `yaml:"outcome"`
	Refusal  string               `yaml:"refusal"`
	Document map[string]JSONValue `yaml:"document"`
}

// Text is a text in Kazakh, Russian and English.
type Text struct {
	At Pos
	i18n.Text
}

func (t *Text) decodeNode(d *decoder, n *yaml.Node) {
	t.At = posOf(n)
	if n.Kind != yaml.MappingNode {
		d.problem(posOf(n), "field.type", "expected a text in kk, ru and en, found %s", describe(n))
		return
	}
	var raw struct {
		KK string `yaml:"kk"`
		RU string `yaml:"ru"`
		EN string `yaml:"en"`
	}
	d.decodeStruct(n, reflectValue(&raw))
	t.Text = i18n.Text{KK: raw.KK, RU: raw.RU, EN: raw.EN}
}

// Expr is a CEL expression with where it stands in the file.
type Expr struct {
	Src string
	At  Pos
	// Inline is true when the expression sits on the key's line (plain or
	// quoted), so that a column inside it maps onto the file.
	Inline bool
	Quoted bool
}

func (e *Expr) decodeNode(d *decoder, n *yaml.Node) {
	e.At = posOf(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.problem(posOf(n), "field.type", "expected a CEL expression, found %s", describe(n))
		return
	}
	e.Src = n.Value
	e.Inline = n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0
	e.Quoted = n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
}

// Duration is an ISO 8601 duration such as PT5M or P3D.
type Duration struct {
	D  time.Duration
	At Pos
	// Days is set when the duration is whole days only (P3D): a deadline
	// then counts working days.
	Days int
}

var isoDuration = regexp.MustCompile(`^P(?:(\d{1,4})D)?(?:T(?:(\d{1,5})H)?(?:(\d{1,6})M)?(?:(\d{1,7})S)?)?$`)

func (du *Duration) decodeNode(d *decoder, n *yaml.Node) {
	du.At = posOf(n)
	s, ok := d.scalar(n, "an ISO 8601 duration such as PT5M")
	if !ok {
		return
	}
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || s == "PT" {
		d.problem(posOf(n), "duration.invalid", "%q is not an ISO 8601 duration such as PT5M, PT1H30M or P3D", s)
		return
	}
	if m[1] != "" && m[2] == "" && m[3] == "" && m[4] == "" {
		du.Days, _ = strconv.Atoi(m[1])
	}
	units := []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second}
	for i, u := range units {
		if m[i+1] != "" {
			v, _ := strconv.Atoi(m[i+1])
			du.D += time.Duration(v) * u
		}
	}
}

// JSONValue is a YAML subtree kept as JSON-like data (a schema, test data).
type JSONValue struct {
	Value any
	At    Pos
	Set   bool
}

func (j *JSONValue) decodeNode(d *decoder, n *yaml.Node) {
	j.At = posOf(n)
	j.Value, j.Set = d.toJSONValue(n)
}

// NamedExpr is one entry of an ordered mapping of names to expressions.
type NamedExpr struct {
	Name string
	Expr Expr
}

// NamedExprs is an ordered mapping of names to CEL expressions.
type NamedExprs []NamedExpr

func (ne *NamedExprs) decodeNode(d *decoder, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		d.problem(posOf(n), "field.type", "expected a mapping of names to expressions, found %s", describe(n))
		return
	}
	d.entries(n, func(k, val *yaml.Node) {
		var e Expr
		e.decodeNode(d, d.resolve(val))
		*ne = append(*ne, NamedExpr{Name: k.Value, Expr: e})
	})
}
