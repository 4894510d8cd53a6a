package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/servicedef"
)

// ExchangeRead is one read of another agency's service through the
// exchange gateway.
type ExchangeRead struct {
	Service string // X-Road service id INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE
	Path    string // after the service, starting with "/"
	// UserID is the person the read is about; Issue ties it to the
	// application (X-Road-UserId and X-Road-Issue).
	UserID string
	Issue  string
	// Purpose and Basis say why: the service applied for and the data
	// source's legal basis (empty when the read rests on consent).
	Purpose, Basis string
}

// ExchangeCall is one call of a call step: Body POSTed to Path of Service.
// MessageID is the same on every try of the same step of the same
// application, for the provider to recognise a repeat.
type ExchangeCall struct {
	Service, Path string
	Body          map[string]any
	UserID        string
	Issue         string
	MessageID     string
	Purpose       string
}

// ExchangeReader reads exchange services (found is false when the provider
// answers that it has nothing, 404) and calls them.
type ExchangeReader interface {
	Read(ctx context.Context, r ExchangeRead) (body map[string]any, found bool, err error)
	Call(ctx context.Context, c ExchangeCall) (answer map[string]any, err error)
}

// call works call step i: the body goes to the other agency's system, and
// the call is audited as a disclosure of the applicant's data.
func (f *flowRun) call(ctx context.Context, i int, a *servicedef.Activation) (string, map[string]any, error) {
	s := f.plan.Steps[i].Step
	if f.e.cfg.Exchange == nil {
		return "", nil, fmt.Errorf("call step %s calls exchange service %s, but this node has no exchange gateway configured", s.ID, s.Service)
	}
	path, body, err := f.plan.Call(i, a)
	if err != nil {
		return "", nil, err
	}
	issue := "application:" + f.id.String()
	if _, err := f.e.cfg.Exchange.Call(ctx, ExchangeCall{Service: s.Service, Path: path, Body: body, UserID: f.applicant.String(),
		Issue: issue, MessageID: issue + ":" + s.ID, Purpose: "service:" + f.def.ID}); err != nil {
		return "", nil, err
	}
	if err := audit.Record(ctx, f.tx, audit.Event{At: f.e.cfg.Clock.Now(), Actor: "system:process", Action: "exchange.call",
		SubjectIIN: f.applicant.String(), Object: issue, Purpose: "service:" + f.def.ID + "; step: " + s.ID + "; service: " + s.Service}); err != nil {
		return "", nil, err
	}
	return "ok", map[string]any{"step": s.ID, "exchange": s.Service}, nil
}

// readExchange reads data source d through the exchange gateway, audited in
// the run's transaction like a registry read: the person, the purpose and
// the application.
func (f *flowRun) readExchange(ctx context.Context, d servicedef.PlanData, a *servicedef.Activation, key string, purpose string) (string, map[string]any, error) {
	detail := map[string]any{"exchange": d.Source.Exchange, "source": d.Source.Name}
	if f.e.cfg.Exchange == nil {
		return "", nil, fmt.Errorf("data source %s reads exchange service %s, but this node has no exchange gateway configured", d.Source.Name, d.Source.Exchange)
	}
	path, err := d.ExchangePath(a, key)
	if err != nil {
		return "", nil, err
	}
	body, found, err := f.e.cfg.Exchange.Read(ctx, ExchangeRead{Service: d.Source.Exchange, Path: path, UserID: key,
		Issue: "application:" + f.id.String(), Purpose: "service:" + f.def.ID, Basis: d.Source.Basis})
	if err != nil {
		return "", nil, err
	}
	// Whose data it was: the key when it is an IIN (a BIN names an
	// organisation, which is nobody's personal data).
	var subject string
	if n, err := iin.Parse(key); err == nil {
		subject = n.String()
	}
	if err := audit.Record(ctx, f.tx, audit.Event{At: f.e.cfg.Clock.Now(), Actor: "system:process", Action: "exchange.read",
		SubjectIIN: subject, Object: "application:" + f.id.String(), Purpose: purpose + "; service: " + d.Source.Exchange}); err != nil {
		return "", nil, err
	}
	if !found {
		return "not_found", detail, nil
	}
	if err := d.CheckResponse(body); err != nil {
		return "", nil, err
	}
	a.Data[d.Source.Name] = body
	return "ok", detail, nil
}

// XRoadClient reads exchange services through a gateway's X-Road REST
// client interface, as any agency's system would.
type XRoadClient struct {
	// Gateway is the base URL of the member's own gateway, e.g.
	// http://127.0.0.1:8181; Client is the platform's subsystem id
	// INSTANCE/CLASS/MEMBER/SUBSYSTEM (X-Road-Client).
	Gateway string
	Client  string
	HTTP    *http.Client
}

// Call POSTs the body as JSON; any 2xx answer is success.
func (c XRoadClient) Call(ctx context.Context, call ExchangeCall) (map[string]any, error) {
	body, err := json.Marshal(call.Body)
	if err != nil {
		return nil, err
	}
	req, err := c.request(ctx, http.MethodPost, call.Service, call.Path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Road-Id", call.MessageID)
	setPerson(req, call.UserID, call.Issue, call.Purpose, "")
	status, answer, err := c.do(req, call.Service)
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return nil, fmt.Errorf("exchange %s: %d %s", call.Service, status, firstLine(answer))
	}
	var out map[string]any
	_ = json.Unmarshal(answer, &out) // an answer need not be an object
	return out, nil
}

// maxExchangeBody bounds an answer the engine reads into memory.
const maxExchangeBody = 4 << 20

// Read GETs the service's path.
func (c XRoadClient) Read(ctx context.Context, r ExchangeRead) (map[string]any, bool, error) {
	req, err := c.request(ctx, http.MethodGet, r.Service, r.Path, nil)
	if err != nil {
		return nil, false, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("X-Road-Id", id.String())
	setPerson(req, r.UserID, r.Issue, r.Purpose, r.Basis)
	status, body, err := c.do(req, r.Service)
	switch {
	case err != nil:
		return nil, false, err
	case status == http.StatusNotFound:
		return nil, false, nil // the provider has nothing on the person
	case status != http.StatusOK:
		return nil, false, fmt.Errorf("exchange %s: %d %s", r.Service, status, firstLine(body))
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil || out == nil {
		return nil, false, errors.New("exchange " + r.Service + ": the answer is not a JSON object")
	}
	return out, true, nil
}

// setPerson says whom a request is about and why: X-Road's user id and
// issue, and the purpose and legal basis a gateway asks of every call to a
// service that returns personal data.
func setPerson(req *http.Request, userID, issue, purpose, basis string) {
	req.Header.Set("X-Road-UserId", "KZ"+userID)
	req.Header.Set("X-Road-Issue", issue)
	if purpose != "" {
		req.Header.Set("Ortaq-Purpose", purpose)
	}
	if basis != "" {
		req.Header.Set("Ortaq-Legal-Basis", basis)
	}
}

// request builds a request to path of service at the gateway.
func (c XRoadClient) request(ctx context.Context, method, service, path string, body io.Reader) (*http.Request, error) {
	if strings.Contains(path, "..") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("exchange path %q: no '..', query or fragment", path)
	}
	segments := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	target := strings.TrimRight(c.Gateway, "/") + "/r1/" + service + "/" + strings.Join(segments, "/")
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Road-Client", c.Client)
	return req, nil
}

// do sends req and reads the answer, bounded. An answer carrying
// X-Road-Error is the gateway's own refusal, an error whatever its status.
func (c XRoadClient) do(req *http.Request, service string) (int, []byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("exchange %s: %w", service, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxExchangeBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("exchange %s: read the answer: %w", service, err)
	}
	if len(body) > maxExchangeBody {
		return 0, nil, fmt.Errorf("exchange %s: the answer is larger than %d bytes", service, maxExchangeBody)
	}
	if xe := res.Header.Get("X-Road-Error"); xe != "" {
		return 0, nil, fmt.Errorf("exchange %s: the gateway refused (%d %s): %s", service, res.StatusCode, xe, firstLine(body))
	}
	return res.StatusCode, body, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
