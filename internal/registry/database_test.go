package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/registry"
)

// gsCall calls the GovStack API as who (the test principal header; "" for
// anonymous), with the mediator's client header unless client is "-".
func gsCall(t *testing.T, base, who, client, method, path, body string, hdr ...string) (int, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, base+registry.GovStackPrefix+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.Header.Set("X-Test-Principal", who)
	}
	if client != "-" {
		req.Header.Set("Information-Mediator-Client", client)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, string(raw)
}

// modifyBody is a modify request for registry code with the properties
// given (JSON members), ID the key.
func modifyBody(code, properties string, required ...string) string {
	req, _ := json.Marshal(required)
	if required == nil {
		req = []byte("[]")
	}
	return `{"groupName":"Test","catalogName":"Tests","code":"` + code + `","basis":"Test order No. 1",
		"schema":{"type":"object","description":{"kk":"Сынақ","ru":"Тест","en":"Test"},"creationDate":"2026-03-01","filename":"t.json",
		"properties":{"ID":{"type":"string","primaryKey":true,"description":"Number"}` + properties + `},"required":` + string(req) + `}}`
}

func fieldsOf(body map[string]any) map[string]string {
	out := map[string]string{}
	fs, _ := body["fields"].([]any)
	for _, f := range fs {
		m := f.(map[string]any)
		out[m["path"].(string)] = m["code"].(string)
	}
	return out
}

func TestDatabaseReadShowsTheRegistry(t *testing.T) {
	s, base := govStackDBPlatform(t)
	db, ok := s.DatabaseOf("legal_entities")
	if !ok || db.ID <= 0 {
		t.Fatalf("legal_entities has no number: %+v", db)
	}
	path := "/database/" + strconv.FormatInt(db.ID, 10)
	code, info, raw := gsCall(t, base, "", imClient, "GET", path, "")
	if code != 200 {
		t.Fatalf("read: %d %s", code, raw)
	}
	if info["name"] != "legal_entities" || info["version"] != "1" || info["description"] != "Заңды тұлғалардың ұлттық тізілімі" ||
		info["institution"] != "moj (kk)" || info["isArchived"] != false || info["byUserName"] != "file" {
		t.Errorf("info: %s", raw)
	}
	schema := info["schema"].(map[string]any)
	bin := schema["properties"].(map[string]any)["bin"].(map[string]any)
	if bin["type"] != "string" || bin["primaryKey"] != true || bin["description"] != "БСН" {
		t.Errorf("bin property: %v", bin)
	}
	flags, _ := json.Marshal(info["schemaFlags"])
	for _, want := range []string{`{"name":"primaryKey","path":"/bin"}`, `{"name":"mandatory","path":"/name"}`, `{"name":"personal","path":"/director_iin"}`} {
		if !strings.Contains(string(flags), want) {
			t.Errorf("schemaFlags lack %s: %s", want, flags)
		}
	}
	services, _ := json.Marshal(info["genericServices"])
	if !strings.Contains(string(services), `"name":"data-read"`) {
		t.Errorf("genericServices: %s", services)
	}
	// The caller's language.
	if _, info, _ := gsCall(t, base, "", imClient, "GET", path, "", "Accept-Language", "en"); info["description"] != "National register of legal entities" || info["institution"] != "moj (en)" {
		t.Errorf("in English: %v", info["description"])
	}
	// Bad input and the wrong caller.
	if code, body, raw := gsCall(t, base, "", imClient, "GET", "/database/abc", ""); code != 400 || fieldsOf(body)["/id"] != "type" {
		t.Errorf("non-integer id: %d %s", code, raw)
	}
	if code, body, raw := gsCall(t, base, "", imClient, "GET", "/database/999999999", ""); code != 404 || body["code"] != "registry.not_found" {
		t.Errorf("unknown id: %d %s", code, raw)
	}
	if code, body, raw := gsCall(t, base, "", "-", "GET", path, ""); code != 400 || fieldsOf(body)["/Information-Mediator-Client"] != "format" {
		t.Errorf("no client header: %d %s", code, raw)
	}
	if code, _, raw := gsCall(t, base, "", "nonsense", "GET", "/databases", ""); code != 400 {
		t.Errorf("databases with a malformed client header: %d %s", code, raw)
	}
	// Databases are grouped by owner agency.
	_, _, raw = gsCall(t, base, "", imClient, "GET", "/databases", "")
	var groups []registry.GSDatabaseGroup
	if err := json.Unmarshal([]byte(raw), &groups); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range groups {
		for _, d := range g.Databases {
			if d.Owner != g.Code {
				t.Errorf("database %s of %s in group %s", d.Name, d.Owner, g.Code)
			}
			found = found || d.Name == "legal_entities" && g.Code == "moj"
		}
	}
	if !found {
		t.Errorf("legal_entities is not in moj's group: %s", raw)
	}
}

func TestDatabaseModifyAuthorisation(t *testing.T) {
	s, base := govStackDBPlatform(t)
	body := modifyBody("TESTS", `,"Name":{"type":"string"}`)
	for _, c := range []struct {
		who  string
		want int
	}{
		{"", 401},
		{"citizen:900101300017", 403},
		{"officer:mia-1:mia:registry-officer", 403},
		{"system:bank", 403},
	} {
		if code, _, raw := gsCall(t, base, c.who, imClient, "POST", "/database/modify", body); code != c.want {
			t.Errorf("%q: %d %s, want %d", c.who, code, raw, c.want)
		}
	}
	if _, ok := s.Definition("tests"); ok {
		t.Fatal("a refused caller created the registry")
	}
	// mia's registry administrator creates it, owned by mia.
	code, schema, raw := gsCall(t, base, registryAdmin, imClient, "POST", "/database/modify", body)
	if code != 200 || schema["type"] != "object" {
		t.Fatalf("create: %d %s", code, raw)
	}
	d, ok := s.Definition("tests")
	if !ok || d.Owner != "mia" || d.Version != 1 || d.Key.Attribute != "ID" || d.Basis != "Test order No. 1" {
		t.Fatalf("created: %+v", d)
	}
	// Another agency's registry administrator may not change it; a
	// platform administrator may.
	if code, _, raw := gsCall(t, base, "officer:moe-ra:moe:registry-administrator", imClient, "POST", "/database/modify", body); code != 403 {
		t.Errorf("another agency's administrator: %d %s", code, raw)
	}
	if code, _, raw := gsCall(t, base, "officer:mdai-1:mdai:platform-administrator", imClient, "POST", "/database/modify", modifyBody("tests", `,"Name":{"type":"string"},"Note":{"type":"string"}`)); code != 200 {
		t.Errorf("platform administrator: %d %s", code, raw)
	}
	if d, _ := s.Definition("tests"); d.Version != 2 || d.Owner != "mia" {
		t.Errorf("after the administrator's change: version %d owner %s", d.Version, d.Owner)
	}
	// The publication is audited and announced.
	ctx := context.Background()
	var actor, object string
	if err := s.Pool().QueryRow(ctx, `SELECT actor, object FROM audit_event WHERE action = 'registry.definition.published' ORDER BY id DESC LIMIT 1`).Scan(&actor, &object); err != nil {
		t.Fatal(err)
	}
	db, _ := s.DatabaseOf("tests")
	if actor != "officer:mdai-1" || !strings.HasPrefix(object, "registry:tests@2 (database "+strconv.FormatInt(db.ID, 10)) {
		t.Errorf("audit: %s %s", actor, object)
	}
	var payload []byte
	if err := s.Pool().QueryRow(ctx, `SELECT payload FROM outbox_event WHERE topic = 'registry.definition.changed' ORDER BY id DESC LIMIT 1`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var ev registry.DefinitionChanged
	_ = json.Unmarshal(payload, &ev)
	if ev != (registry.DefinitionChanged{Registry: "tests", ID: db.ID, Version: 2, Change: "published", Actor: "officer:mdai-1"}) {
		t.Errorf("event: %+v", ev)
	}
	// The mediator's client named at creation uses the data API.
	if code, _, raw := gsCall(t, base, "", imClient, "POST", "/data/tests/2/create", `{"write":{"content":{"ID":"T-1","Name":"x"}}}`); code != 200 {
		t.Errorf("data API on the new registry: %d %s", code, raw)
	}
}

func TestDatabaseModifyBadInput(t *testing.T) {
	_, base := govStackDBPlatform(t)
	for _, c := range []struct {
		name, body string
		path, code string
	}{
		{"bad code", modifyBody("9lives", ``), "/code", "format"},
		{"no code", strings.Replace(modifyBody("x", ``), `"code":"x",`, "", 1), "/code", "required"},
		{"unknown type", modifyBody("t1", `,"A":{"type":"date"}`), "/schema/properties/A/type", "one_of"},
		{"no type", modifyBody("t2", `,"A":{"description":"a"}`), "/schema/properties/A/type", "required"},
		{"unknown member", modifyBody("t3", `,"A":{"type":"string","colour":"red"}`), "/schema/properties/A/colour", "unknown_field"},
		{"two keys", modifyBody("t4", `,"A":{"type":"string","primaryKey":true}`), "/schema/properties/A/primaryKey", "duplicate"},
		{"required unknown", modifyBody("t5", ``, "Nope"), "/schema/required/0", "unknown_field"},
		{"wrong JSON type", modifyBody("t6", `,"A":{"type":"string","maxLength":"ten"}`), "/schema/properties/A/maxLength", "type"},
		{"integer key", strings.Replace(modifyBody("t7", ``), `"ID":{"type":"string"`, `"ID":{"type":"integer"`, 1), "/schema/properties/ID/type", "type"},
		{"bad pattern", modifyBody("t8", `,"A":{"type":"string","pattern":"("}`), "/schema/properties/A", "format"},
		{"unknown classifier", modifyBody("t9", `,"A":{"type":"string","classifier":"nope"}`), "/schema/properties/A", "unknown_field"},
		{"personal without subject", modifyBody("t10", `,"A":{"type":"string","personal":true}`), "/schema/properties", "required"},
		{"bad personal", modifyBody("t11", `,"A":{"type":"string","personal":"very"}`), "/schema/properties/A/personal", "one_of"},
		{"no description", strings.Replace(modifyBody("t12", ``), `"description":{"kk":"Сынақ","ru":"Тест","en":"Test"},`, "", 1), "/schema/description", "required"},
	} {
		code, body, raw := gsCall(t, base, registryAdmin, imClient, "POST", "/database/modify", c.body)
		if code != 422 || body["code"] != "registry.definition_invalid" || fieldsOf(body)[c.path] != c.code {
			t.Errorf("%s: %d %s, want 422 with %s %s", c.name, code, raw, c.path, c.code)
		}
	}
	if code, _, raw := gsCall(t, base, registryAdmin, imClient, "POST", "/database/modify", `{"code":1}`); code != 422 {
		t.Errorf("code as a number: %d %s", code, raw)
	}
	if code, _, raw := gsCall(t, base, registryAdmin, imClient, "POST", "/database/modify", `{"nope":1}`); code != 422 && code != 400 {
		t.Errorf("unknown member: %d %s", code, raw)
	}
	if code, _, raw := gsCall(t, base, registryAdmin, "bad header", "POST", "/database/modify", modifyBody("ok", ``)); code != 400 {
		t.Errorf("malformed client header: %d %s", code, raw)
	}
}

// TestDatabaseModifyKeepsRecordsValid: a version may not drop or retype an
// attribute records hold, nor require one current records lack.
func TestDatabaseModifyKeepsRecordsValid(t *testing.T) {
	s, base := govStackDBPlatform(t)
	if code, _, raw := gsCall(t, base, registryAdmin, imClient, "POST", "/database/modify",
		modifyBody("pets", `,"Name":{"type":"string"},"Age":{"type":"integer"},"Note":{"type":"string"}`)); code != 200 {
		t.Fatalf("create: %d %s", code, raw)
	}
	if _, err := s.ApplyNow(context.Background(), registry.Change{Registry: "pets", Key: "P-1", Op: registry.OpCreate,
		Data: map[string]any{"ID": "P-1", "Name": "Rex", "Age": 3}, Actor: "officer:mia-1", Basis: "test"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, props string
		required    []string
		path        string
	}{
		{"drop", `,"Age":{"type":"integer"},"Note":{"type":"string"}`, nil, "/schema/properties/Name"},
		{"retype", `,"Name":{"type":"string"},"Age":{"type":"string"},"Note":{"type":"string"}`, nil, "/schema/properties/Age/type"},
		{"require lacking", `,"Name":{"type":"string"},"Age":{"type":"integer"},"Note":{"type":"string"}`, []string{"Note"}, "/schema/required"},
	} {
		code, body, raw := gsCall(t, base, registryAdmin, imClient, "POST", "/database/modify", modifyBody("pets", c.props, c.required...))
		if code != 422 || fieldsOf(body)[c.path] != "attribute.in_use" || !strings.Contains(raw, "valid") && !strings.Contains(raw, "lack") {
			t.Errorf("%s: %d %s", c.name, code, raw)
		}
	}
	// Dropping an attribute no record holds, and adding one, is fine.
	if code, _, raw := gsCall(t, base, registryAdmin, imClient, "POST", "/database/modify",
		modifyBody("pets", `,"Name":{"type":"string"},"Age":{"type":"integer"},"Colour":{"type":"string"}`, "Name")); code != 200 {
		t.Errorf("compatible version: %d %s", code, raw)
	}
	if d, _ := s.Definition("pets"); d.Version != 2 {
		t.Errorf("version %d, want 2", d.Version)
	}
}

func TestDatabaseDeleteArchives(t *testing.T) {
	s, base := govStackDBPlatform(t)
	ctx := context.Background()
	if code, _, raw := gsCall(t, base, registryAdmin, imClient, "POST", "/database/modify", modifyBody("cars", `,"Plate":{"type":"string"}`)); code != 200 {
		t.Fatalf("create: %d %s", code, raw)
	}
	if _, err := s.ApplyNow(ctx, registry.Change{Registry: "cars", Key: "C-1", Op: registry.OpCreate, Data: map[string]any{"Plate": "001AAA02"}, Actor: "officer:mia-1", Basis: "test"}); err != nil {
		t.Fatal(err)
	}
	db, _ := s.DatabaseOf("cars")
	path := "/database/" + strconv.FormatInt(db.ID, 10)
	for _, c := range []struct {
		who  string
		want int
	}{
		{"", 401}, {"citizen:900101300017", 403}, {"officer:mia-1:mia:registry-officer", 403},
		{"officer:moe-ra:moe:registry-administrator", 403},
	} {
		if code, _, raw := gsCall(t, base, c.who, imClient, "DELETE", path, ""); code != c.want {
			t.Errorf("%q: %d %s, want %d", c.who, code, raw, c.want)
		}
	}
	if code, body, raw := gsCall(t, base, registryAdmin, imClient, "DELETE", "/database/x1", ""); code != 400 || fieldsOf(body)["/id"] != "type" {
		t.Errorf("non-integer id: %d %s", code, raw)
	}
	if code, _, raw := gsCall(t, base, registryAdmin, imClient, "DELETE", "/database/99999999", ""); code != 404 {
		t.Errorf("unknown id: %d %s", code, raw)
	}
	for i := range 2 { // archiving twice is fine
		if code, _, raw := gsCall(t, base, registryAdmin, imClient, "DELETE", path, ""); code != 200 || raw != "\"Success\"\n" {
			t.Fatalf("delete %d: %d %q", i, code, raw)
		}
	}
	var events int
	s.Pool().QueryRow(ctx, `SELECT count(*) FROM outbox_event WHERE topic = 'registry.definition.changed' AND payload->>'change' = 'archived'`).Scan(&events)
	if events != 1 {
		t.Errorf("%d archive events, want 1", events)
	}
	// Writes are refused with a stable code; reads and history go on.
	_, err := s.ApplyNow(ctx, registry.Change{Registry: "cars", Key: "C-2", Op: registry.OpCreate, Data: map[string]any{}, Actor: "officer:mia-1", Basis: "test"})
	if !errors.Is(err, registry.ErrArchived) {
		t.Errorf("write to an archived registry: %v", err)
	}
	cars, _ := s.Definition("cars")
	rows, _ := registry.NewRowReader(strings.NewReader(`{"ID":"C-4","Plate":"002AAA02"}`+"\n"), registry.FormatNDJSON, cars)
	if _, err := s.Import(ctx, "cars", rows, registry.ImportOptions{Actor: "officer:mia-1", Basis: "test"}); !errors.Is(err, registry.ErrArchived) {
		t.Errorf("import into an archived registry: %v", err)
	}
	if code, _, raw := gsCall(t, base, "", imClient, "POST", "/data/cars/1/create", `{"write":{"content":{"ID":"C-3"}}}`); code != 409 {
		t.Errorf("GovStack write to an archived registry: %d %s", code, raw)
	}
	if code, _, raw := gsCall(t, base, "", imClient, "POST", "/data/cars/1/read", `{"query":{"content":{"ID":"C-1"}}}`); code != 200 {
		t.Errorf("read of an archived registry: %d %s", code, raw)
	}
	if _, info, raw := gsCall(t, base, "", imClient, "GET", path, ""); info["isArchived"] != true || info["byUserName"] != "officer:mia-ra" {
		t.Errorf("archived info: %s", raw)
	}
	if code, body, raw := gsCall(t, base, registryAdmin, imClient, "POST", "/database/modify", modifyBody("cars", `,"Plate":{"type":"string"}`)); code != 409 || body["code"] != "registry.archived" {
		t.Errorf("modify an archived registry: %d %s", code, raw)
	}
	var versions int
	s.Pool().QueryRow(ctx, `SELECT count(*) FROM registry_record_version WHERE registry = 'cars'`).Scan(&versions)
	if versions != 1 {
		t.Errorf("%d record versions, want 1: the one written before archiving", versions)
	}
}

// TestDefinitionsReachEveryNode: two stores on one database, as two
// `ortaq serve` processes: a definition published on one is served by the
// other within two seconds, and by a store started afterwards; a newer
// file version still installs.
func TestDefinitionsReachEveryNode(t *testing.T) {
	a, base := govStackDBPlatform(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	files, _, err := registry.LoadSet(os.DirFS("../../registries"), agencies)
	if err != nil {
		t.Fatal(err)
	}
	b := registry.NewStore(a.Pool(), clock.Real{})
	if err := b.Install(ctx, files); err != nil {
		t.Fatal(err)
	}
	go b.Watch(ctx, registry.WatchEvery)

	// A new registry, a new version of a file's registry and an archive on
	// a, all seen by b.
	if code, _, raw := gsCall(t, base, registryAdmin, imClient, "POST", "/database/modify", modifyBody("boats", `,"Hull":{"type":"string"}`)); code != 200 {
		t.Fatalf("publish: %d %s", code, raw)
	}
	pop, _ := a.Definition("identity_documents")
	if code, _, raw := gsCall(t, base, "officer:mdai-1:mdai:platform-administrator", imClient, "POST", "/database/modify", populationModify(t, pop)); code != 200 {
		t.Fatalf("modify identity_documents: %d %s", code, raw)
	}
	scenario, _ := a.DatabaseOf("scenario_1")
	if code, _, raw := gsCall(t, base, registryAdmin, imClient, "DELETE", "/database/"+strconv.FormatInt(scenario.ID, 10), ""); code != 200 {
		t.Fatalf("archive: %d %s", code, raw)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		boats, ok := b.Definition("boats")
		docs, _ := b.Definition("identity_documents")
		arch, _ := b.DatabaseOf("scenario_1")
		if ok && boats.Version == 1 && docs.Version == pop.Version+1 && arch.ArchivedAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2s the other node serves boats=%v identity_documents=%d, scenario_1 archived=%v", ok, docs.Version, arch.ArchivedAt != nil)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The other node refuses writes to the archived registry at once: the
	// database says so.
	if _, err := b.ApplyNow(ctx, registry.Change{Registry: "scenario_1", Key: "S", Op: registry.OpCreate,
		Data: map[string]any{"FirstName": "x"}, Actor: "officer:mia-1", Basis: "test"}); !errors.Is(err, registry.ErrArchived) {
		t.Errorf("write on the other node: %v", err)
	}

	// A restart: the files say the old version, the database the published
	// one.
	c := registry.NewStore(a.Pool(), clock.Real{})
	if err := c.Install(ctx, files); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.Definition("identity_documents"); d.Version != pop.Version+1 {
		t.Errorf("after a restart identity_documents is version %d, want the published %d", d.Version, pop.Version+1)
	}
	if _, ok := c.Definition("boats"); !ok {
		t.Error("after a restart boats is not served")
	}
	// A file version newer than the database's installs as before.
	newer := strings.Replace(string(pop.Source), "version: "+strconv.Itoa(pop.Version), "version: "+strconv.Itoa(pop.Version+2), 1)
	d3, probs := registry.ParseDefinition([]byte(newer), registry.Env{Classifiers: c.Classifiers()})
	if probs != nil {
		t.Fatal(probs)
	}
	files.Registries["identity_documents"] = d3
	if err := c.Install(ctx, files); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.Definition("identity_documents"); d.Version != pop.Version+2 {
		t.Errorf("a newer file: version %d, want %d", d.Version, pop.Version+2)
	}
	// The numbers stay.
	if db, _ := c.DatabaseOf("scenario_1"); db.ID != 1 || db.ArchivedAt == nil {
		t.Errorf("scenario_1 after a restart: %+v", db)
	}
}

// populationModify rewrites a definition as a modify request adding an
// attribute.
func populationModify(t *testing.T, d *registry.Definition) string {
	t.Helper()
	schema := registry.GSSchemaOf(d, i18n.EN)
	props := map[string]any{}
	for name, p := range schema.Properties {
		q := map[string]any{}
		for k, v := range p {
			switch k {
			case "readOnly", "id":
			case "description":
				a, _ := d.Attr(name)
				q[k] = a.Title
			default:
				q[k] = v
			}
		}
		props[name] = q
	}
	props["remark"] = map[string]any{"type": "string", "maxLength": 500, "description": "Remark"}
	body, _ := json.Marshal(map[string]any{"code": d.Name, "schema": map[string]any{"type": "object", "description": d.Title,
		"properties": props, "required": schema.Required}})
	return string(body)
}

// FuzzGovStackDefinition: any modify request gives a checked definition
// or problems naming request members, never a panic.
func FuzzGovStackDefinition(f *testing.F) {
	f.Add(scenarioModify)
	f.Add(modifyBody("x", `,"A":{"type":"object","properties":{"b":{"type":"array","items":{"type":"string"}}}}`))
	f.Add(modifyBody("x", `,"A":{"type":"string","personal":"sensitive","check":"iin"}`))
	f.Add(`{"code":"x","schema":{"properties":{"ID":{"type":"string","primaryKey":true,"check":"iin"}}}}`)
	f.Add(`{"code":"x","schema":{"properties":[]}}`)
	f.Fuzz(func(t *testing.T, body string) {
		var m registry.GSModify
		if json.Unmarshal([]byte(body), &m) != nil {
			return
		}
		d, probs := registry.GovStackDefinition(m, registry.ModifyTarget{Version: 1, Owner: "mia", Write: []string{"registry-administrator"}},
			registry.Env{Agencies: map[string][]string{"mia": {"registry-administrator"}}})
		if (d == nil) == (len(probs) == 0) {
			t.Fatalf("definition %v and problems %v", d, probs)
		}
		for _, p := range probs {
			if p.Code == "" || (p.Path != "" && !strings.HasPrefix(p.Path, "/")) {
				t.Fatalf("problem %+v", p)
			}
		}
		if d != nil {
			_ = d.Check(map[string]any{"ID": "1"}, nil)
		}
	})
}

// TestPublishYAML: POST /api/v1/registries publishes a definition written
// as the files are, for the same officers, problems by line and column.
func TestPublishYAML(t *testing.T) {
	s, _ := govStackDBPlatform(t)
	h := apiServer(t, s)
	post := func(who, ctype, body string) (int, map[string]any, string) {
		req := httptest.NewRequest("POST", "/api/v1/registries", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if who != "" {
			req.Header.Set("X-Test-Principal", who)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out, rec.Body.String()
	}
	kg, _ := s.Definition("kindergarten_places")
	v := func(n int) string { return "version: " + strconv.Itoa(n) }
	next := strings.Replace(string(kg.Source), v(kg.Version), v(kg.Version+1), 1) + `  - name: remark
    title: {kk: "Ескерту", ru: "Примечание", en: "Remark"}
    schema: {type: string, maxLength: 500}
`
	const moeAdmin = "officer:moe-ra:moe:registry-administrator"
	for _, c := range []struct {
		who, ctype, body string
		want             int
	}{
		{"", "application/yaml", next, 401},
		{"citizen:900101300017", "application/yaml", next, 403},
		{"officer:moe-1:moe:preschool-officer", "application/yaml", next, 403},
		{registryAdmin, "application/yaml", next, 403}, // mia's administrator, moe's registry
		{moeAdmin, "application/json", next, 415},
	} {
		if code, _, raw := post(c.who, c.ctype, c.body); code != c.want {
			t.Errorf("%q %s: %d %s, want %d", c.who, c.ctype, code, raw, c.want)
		}
	}
	code, body, raw := post(moeAdmin, "application/yaml", "registry: kindergarten_places\n"+v(kg.Version+1)+"\nnope: 1\n")
	if code != 422 || body["code"] != "registry.definition_invalid" || !strings.Contains(raw, `"line":3`) {
		t.Errorf("bad definition: %d %s", code, raw)
	}
	if code, _, raw := post(moeAdmin, "application/yaml", strings.Replace(next, v(kg.Version+1), v(kg.Version+4), 1)); code != 422 || !strings.Contains(raw, `"code":"version"`) || !strings.Contains(raw, `"line":2`) {
		t.Errorf("skipped version: %d %s", code, raw)
	}
	if code, _, raw := post(moeAdmin, "application/yaml", next); code != 201 {
		t.Fatalf("publish: %d %s", code, raw)
	}
	if d, _ := s.Definition("kindergarten_places"); d.Version != kg.Version+1 {
		t.Errorf("served version %d, want %d", d.Version, kg.Version+1)
	}
	if code, _, raw := post(moeAdmin, "application/yaml", next); code != 422 || !strings.Contains(raw, "version must be "+strconv.Itoa(kg.Version+2)) {
		t.Errorf("the same version again: %d %s", code, raw)
	}
}
