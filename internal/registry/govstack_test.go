package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cucumber/godog"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/web"
)

const imClient = "eGovStack/GOV/90000009/digitalregistries"

// govStackPlatform serves the GovStack API on the registries, with the
// scenarios' registries seeded from the fixture (the "id" of a fixture
// record is its "ID" field) and the two records the read scenarios expect
// though the fixture lacks them.
func govStackPlatform(t *testing.T) (*registry.Store, string) {
	t.Helper()
	ctx := context.Background()
	s, _ := newStore(t)
	set, bad, err := registry.LoadSet(os.DirFS("testdata/govstack"), nil)
	if err != nil || len(bad) > 0 {
		t.Fatalf("govstack registries: %v %v", err, bad)
	}
	if err := s.Install(ctx, set); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/govstack/test-data.json")
	if err != nil {
		t.Fatal(err)
	}
	var fixture struct {
		Registries struct {
			Records []map[string]any `json:"records"`
		} `json:"registries"`
	}
	if err := json.Unmarshal(raw, &fixture); err != nil {
		t.Fatal(err)
	}
	recs := append(fixture.Registries.Records,
		map[string]any{"uuid": "0190f7a0-0000-7000-8000-000000000001", "id": "EE378627340001", "FirstName": "John Helmut", "LastName": "Smith Carry", "BirthCertificateID": "RR-1234567889"},
		map[string]any{"uuid": "0190f7a0-0000-7000-8000-000000000002", "id": "EE6546273487866", "FirstName": "Mary", "LastName": "Smith", "BirthCertificateID": "EE6546273487865"},
	)
	var nd bytes.Buffer
	for _, r := range recs {
		r["ID"] = r["id"]
		delete(r, "id")
		b, _ := json.Marshal(r)
		nd.Write(append(b, '\n'))
	}
	d, _ := s.Definition("registryname")
	rows, _ := registry.NewRowReader(&nd, registry.FormatNDJSON, d)
	rep, err := s.Import(ctx, "registryname", rows, registry.ImportOptions{Actor: "system:test", Basis: "GovStack fixture"})
	if err != nil || rep.Rejected > 0 {
		t.Fatalf("seed: %+v %v", rep, err)
	}
	srv := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	s.GovStackRoutes(srv)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// TestGovStackScenarios runs the GovStack Digital Registries data scenarios
// with this package's own step implementations.
func TestGovStackScenarios(t *testing.T) {
	_, base := govStackPlatform(t)
	params := map[string]string{}
	raw, _ := os.ReadFile("testdata/govstack/testDefaultParameters.json")
	if err := json.Unmarshal(raw, &params); err != nil {
		t.Fatal(err)
	}
	spec, err := jsonschema.UnmarshalJSON(mustOpen(t, "testdata/govstack/data-api.json"))
	if err != nil {
		t.Fatal(err)
	}
	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft2020)
	if err := compiler.AddResource("file:///data-api.json", spec); err != nil {
		t.Fatal(err)
	}
	runFeatures(t, "testdata/govstack/features", func(sc *godog.ScenarioContext) {
		st := &gsScenario{base: base + registry.GovStackPrefix, params: params, compiler: compiler}
		st.readTags(sc)
		st.register(sc)
	})
}

func mustOpen(t *testing.T, name string) io.Reader {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

// gsScenario is one scenario's request, built from its steps' "value" as
// name pairs, and its response.
type gsScenario struct {
	gsExchange
	base     string
	params   map[string]string
	compiler *jsonschema.Compiler

	path, queryArgs map[string]string
	query, write    map[string]any
	sent            bool
}

var pairRE = regexp.MustCompile(`"([^"]*)" as (?:invalid )?"?([A-Za-z]+)"?`)

func (g *gsScenario) value(v string) string {
	if name, ok := strings.CutPrefix(v, "${"); ok {
		if p, ok := g.params[strings.TrimSuffix(name, "}")]; ok {
			return p
		}
	}
	return v
}

func (g *gsScenario) pairs(text string) map[string]any {
	out := map[string]any{}
	for _, m := range pairRE.FindAllStringSubmatch(text, -1) {
		out[m[2]] = g.value(m[1])
	}
	return out
}

// request takes the pairs of a When/And step.
func (g *gsScenario) request(text string) error {
	if g.path == nil {
		g.path, g.queryArgs = map[string]string{}, map[string]string{}
	}
	all := g.pairs(text)
	if len(all) == 0 {
		return godog.ErrUndefined
	}
	content := map[string]any{}
	for k, v := range all {
		s := v.(string)
		switch k {
		case "registryname", "versionnumber", "uuid", "field", "ext":
			g.path[k] = s
		case "search", "filter", "ordering":
			g.queryArgs[k] = s
		case "userID":
			g.queryArgs["userId"] = s
		case "DatabaseID":
			g.queryArgs["databaseId"] = s
		case "ID":
			if strings.Contains(g.endpoint, "{id}") {
				g.path["id"] = s
				continue
			}
			content[k] = s
		default:
			content[k] = s
		}
	}
	if len(content) == 0 {
		return nil
	}
	switch {
	case strings.HasSuffix(g.endpoint, "/create"):
		g.write = content
	case strings.Contains(g.endpoint, "update"):
		if strings.Contains(text, "both contain") {
			g.query, g.write = content, content
			break
		}
		cut := strings.Index(text, "write object")
		if i := strings.Index(text, "overwrites"); i >= 0 {
			cut = i
		}
		if cut < 0 {
			return fmt.Errorf("cannot tell query from write in %q", text)
		}
		g.query, g.write = g.pairs(text[:cut]), g.pairs(text[cut:])
	default:
		g.query = content
	}
	return nil
}

func (g *gsScenario) send() error {
	if g.sent {
		return nil
	}
	g.sent = true
	p := g.endpoint
	for k, v := range g.path {
		p = strings.ReplaceAll(p, "{"+k+"}", url.PathEscape(v))
	}
	if strings.Contains(p, "{") {
		return fmt.Errorf("path %s lacks parameters", p)
	}
	u := g.base + p
	if len(g.queryArgs) > 0 {
		v := url.Values{}
		for k, x := range g.queryArgs {
			v.Set(k, x)
		}
		u += "?" + v.Encode()
	}
	var body io.Reader
	if g.query != nil || g.write != nil {
		b := map[string]any{}
		if g.query != nil {
			b["query"] = map[string]any{"content": g.query}
		}
		if g.write != nil {
			b["write"] = map[string]any{"content": g.write}
		}
		raw, _ := json.Marshal(b)
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(g.method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Information-Mediator-Client", imClient)
	req.Header.Set("Content-Type", "application/json")
	return g.do(req)
}

func (g *gsScenario) json() (map[string]any, error) {
	var out map[string]any
	if err := json.Unmarshal(g.body, &out); err != nil {
		return nil, fmt.Errorf("response is not a JSON object: %s", g.body)
	}
	return out, nil
}

// specPath maps a scenario endpoint to the OpenAPI path and method.
func (g *gsScenario) specPointer(status int) string {
	p := strings.NewReplacer("{registryname}", "{registryName}", "{versionnumber}", "{versionNumber}", "update-entries", "updateEntries",
		"update-or-create", "updateOrCreate", "read-value", "readValue", "/MyPersonalDataUsage/1.0", "/mypersonalDataUsage").Replace(g.endpoint)
	p = strings.TrimSuffix(p, "/")
	esc := strings.NewReplacer("~", "~0", "/", "~1").Replace(p)
	return "file:///data-api.json#/paths/" + url.PathEscape(esc) + "/" + strings.ToLower(g.method) + "/responses/" + strconv.Itoa(status) + "/content/application~1json/schema"
}

func (g *gsScenario) register(sc *godog.ScenarioContext) {
	sc.Step(`^(?:[Tt]he user|User|user) wants .*$`, func() {})
	sc.Step(`^search for a specific value and the searched value does not exist.*$`, func() {})
	sc.Step(`(?:receives? a response from|is received)`, g.send)
	g.registerResponseSteps(sc, g.send)
	sc.Step(`should match json schema(?: with error message)?$`, func() error {
		var v any
		if err := json.Unmarshal(g.body, &v); err != nil {
			return fmt.Errorf("not JSON: %s", g.body)
		}
		schema, err := g.compiler.Compile(g.specPointer(g.status))
		if err != nil {
			return fmt.Errorf("no schema for %s %s %d: %v", g.method, g.endpoint, g.status, err)
		}
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(g.body))
		return schema.Validate(inst)
	})
	sc.Step(`should have body "([^"]*)"$`, func(want string) error {
		if strings.Trim(string(g.body), "\"\n") != want {
			return fmt.Errorf("body %s", g.body)
		}
		return nil
	})
	sc.Step(`response should contain "([^"]+)" property equals "([^"]*)"$`, func(name, want string) error {
		out, err := g.json()
		if err != nil {
			return err
		}
		content, _ := out["content"].(map[string]any)
		if got := fmt.Sprint(content[name]); got != g.value(want) {
			return fmt.Errorf("%s = %q, want %q (%s)", name, got, want, g.body)
		}
		return nil
	})
	sc.Step(`^results array length is consistent with count field value$`, func() error {
		out, err := g.json()
		if err != nil {
			return err
		}
		results, _ := out["results"].([]any)
		if out["count"] != float64(len(results)) {
			return fmt.Errorf("count %v, %d results", out["count"], len(results))
		}
		return nil
	})
	sc.Step(`^results field should be an empty array$`, func() error {
		out, err := g.json()
		if err != nil {
			return err
		}
		if r, ok := out["results"].([]any); !ok || len(r) != 0 {
			return fmt.Errorf("results %v", out["results"])
		}
		return nil
	})
	sc.Step(`is filtered by "([^"]*)" and "([^"]*)" provided in the query parameter$`, func(search, filter string) error {
		out, err := g.json()
		if err != nil {
			return err
		}
		results, _ := out["results"].([]any)
		if len(results) == 0 {
			return fmt.Errorf("no results for %s=%s", filter, search)
		}
		for _, r := range results {
			if r.(map[string]any)[filter] != search {
				return fmt.Errorf("result %v does not have %s=%s", r, filter, search)
			}
		}
		return nil
	})
	sc.Step(`should return status (true|false) for`, func(want string) error {
		out, err := g.json()
		if err != nil {
			return err
		}
		ans, _ := out["answer"].(map[string]any)
		if fmt.Sprint(ans["status"]) != want {
			return fmt.Errorf("answer %v, want status %s", ans, want)
		}
		return nil
	})
	sc.Step(`^(.*"[^"]*" as .*)$`, g.request)
}

// TestGovStackClientAndAudit: the mediator's client header is required and
// checked against the registry's systems; every read through the GovStack
// API is audited under that client.
func TestGovStackClientAndAudit(t *testing.T) {
	s, base := govStackPlatform(t)
	do := func(method, path, client, body string) (int, string) {
		req, _ := http.NewRequest(method, base+registry.GovStackPrefix+path, strings.NewReader(body))
		if client != "" {
			req.Header.Set("Information-Mediator-Client", client)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	read := `{"query":{"content":{"FirstName":"Eva"}}}`
	if code, body := do("POST", "/data/registryname/111/read", "", read); code != 400 || !strings.Contains(body, "detail") {
		t.Errorf("no client header: %d %s", code, body)
	}
	if code, _ := do("POST", "/data/registryname/111/read", "not-a-client", read); code != 400 {
		t.Errorf("malformed client header: %d", code)
	}
	if code, _ := do("POST", "/data/registryname/111/read", "eGovStack/GOV/1/other", read); code != 403 {
		t.Errorf("unknown client: %d", code)
	}
	if code, _ := do("POST", "/data/population/1/read", imClient, `{"query":{"content":{"last_name":"X"}}}`); code != 403 {
		t.Errorf("population through GovStack without being a reader: %d", code)
	}
	if code, body := do("POST", "/data/registryname/112/read", imClient, read); code != 404 || !strings.Contains(body, `"detail"`) {
		t.Errorf("wrong version: %d %s", code, body)
	}
	before := auditCount(t, s)
	if code, body := do("POST", "/data/registryname/111/read", imClient, read); code != 200 {
		t.Fatalf("read: %d %s", code, body)
	}
	if code, body := do("GET", "/data/registryname/111?search=Smith&filter=LastName", imClient, ""); code != 200 || !strings.Contains(body, `"count":4`) {
		t.Errorf("list: %d %s", code, body)
	}
	if got := auditCount(t, s) - before; got != 5 {
		t.Errorf("%d audit events for 1 read and a list of 4, want 5", got)
	}
	var actor string
	s.Pool().QueryRow(context.Background(), `SELECT actor FROM audit_event ORDER BY id DESC LIMIT 1`).Scan(&actor)
	if actor != "system:"+imClient {
		t.Errorf("audit actor %q", actor)
	}
	// Deleting cancels: the history stays.
	if code, _ := do("DELETE", "/data/registryname/111/EE654627348834/delete", imClient, ""); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if code, body := do("POST", "/data/registryname/111/read", imClient, read); code != 404 || body != "{\"detail\":\"no record found\"}\n" {
		t.Errorf("read after delete: %d %q", code, body)
	}
	var versions int
	s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM registry_record_version WHERE registry = 'registryname' AND data->>'ID' = 'EE654627348834'`).Scan(&versions)
	if versions != 2 {
		t.Errorf("%d versions after delete, want 2 (create, cancel)", versions)
	}
	// Who read the person's data: the reads of their record, from the audit trail.
	code, body := do("GET", "/data/MyPersonalDataUsage/1.0?userId=EE654627348834&databaseId=MCTS", imClient, "")
	if code != 200 || !strings.Contains(body, `"readerId":"system:`+imClient) {
		t.Errorf("personal data usage: %d %s", code, body)
	}
}
