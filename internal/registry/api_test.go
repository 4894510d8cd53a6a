package registry_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/web"
)

// apiServer serves the store's routes; the caller is named by the test
// header X-Test-Principal (kind:subject:agency:role).
func apiServer(t *testing.T, s *registry.Store) http.Handler {
	srv := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	srv.Use(testPrincipal)
	s.Routes(srv)
	s.CatalogueRoutes(srv)
	return srv.Handler()
}

const (
	miaWriter  = "officer:mia-1:mia:registry-officer"
	mlspReader = "officer:mlsp-1:mlsp:benefits-officer"
	moeReader  = "officer:moe-1:moe:preschool-officer"
	mfOfficer  = "officer:mf-1:mf:tax-officer"
)

func call(t *testing.T, h http.Handler, who, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.Header.Set("X-Test-Principal", who)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out, rec.Body.String()
}

func auditCount(t *testing.T, s *registry.Store) int {
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM audit_event`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAPIWritesNeedTheOwnerAgency(t *testing.T) {
	s, _ := newStore(t)
	h := apiServer(t, s)
	ids := testIINs(2)
	body := `{"data":` + mustJSON(person(ids[0], "Сейітов")) + `,"basis":"registration at birth"}`
	if code, _, _ := call(t, h, "", "POST", "/api/v1/registries/population/records", body); code != 401 {
		t.Errorf("anonymous create: %d", code)
	}
	if code, _, _ := call(t, h, mlspReader, "POST", "/api/v1/registries/population/records", body); code != 403 {
		t.Errorf("create by another agency: %d", code)
	}
	if code, out, _ := call(t, h, miaWriter, "POST", "/api/v1/registries/population/records", body); code != 201 || out["version"] != 1.0 {
		t.Errorf("create: %d %v", code, out)
	}
	if code, out, _ := call(t, h, miaWriter, "POST", "/api/v1/registries/population/records", body); code != 409 || out["code"] != "registry.record_exists" {
		t.Errorf("second create: %d %v", code, out)
	}
	bad := `{"data":{"iin":"900101300018","last_name":"","sex":"robot"}}`
	code, out, raw := call(t, h, miaWriter, "POST", "/api/v1/registries/population/records", bad)
	for _, want := range []string{`"/basis"`, `"/data/iin","code":"iin.checksum"`, `"/data/first_name","code":"required"`, `"/data/sex","code":"one_of"`} {
		if !strings.Contains(raw, want) {
			t.Errorf("bad create: %d, no %s in %s", code, want, raw)
		}
	}
	_ = out
	if code, out, _ := call(t, h, miaWriter, "PUT", "/api/v1/registries/population/records/"+ids[1], body); code != 404 || out["code"] != "registry.record_not_found" {
		t.Errorf("update of a missing record: %d %v", code, out)
	}
	upd := `{"data":` + mustJSON(person(ids[0], "Ахметов")) + `,"basis":"change of name","correction":true,"reason":"typo"}`
	if code, out, _ := call(t, h, miaWriter, "PUT", "/api/v1/registries/population/records/"+ids[0], upd); code != 200 || out["op"] != "correct" {
		t.Errorf("correction: %d %v", code, out)
	}
	if code, out, _ := call(t, h, miaWriter, "PUT", "/api/v1/registries/population/records/"+ids[0], `{"data":`+mustJSON(person(ids[1], "X"))+`,"basis":"b"}`); code != 422 || !strings.Contains(mustJSON(out), "key.mismatch") {
		t.Errorf("update with another key: %d %v", code, out)
	}
	if code, out, _ := call(t, h, miaWriter, "POST", "/api/v1/registries/population/records/"+ids[0]+"/cancel", `{"basis":"death","reason":"act D-2026-000001"}`); code != 200 || out["cancelled"] != true {
		t.Errorf("cancel: %d %v", code, out)
	}
	if code, out, _ := call(t, h, "", "GET", "/api/v1/registries", ""); code != 200 || len(out["registries"].([]any)) != 8 {
		t.Errorf("list: %d %v", code, out)
	}
	if code, out, _ := call(t, h, "", "GET", "/api/v1/registries/civil_acts", ""); code != 200 || out["owner"] != "moj" {
		t.Errorf("definition: %d %v", code, out)
	}
	if code, out, _ := call(t, h, "", "GET", "/api/v1/classifiers/kato", ""); code != 200 || len(out["codes"].([]any)) < 30 {
		t.Errorf("classifier: %d", code)
	}
	if code, out, _ := call(t, h, "", "GET", "/api/v1/classifiers/planets", ""); code != 404 || out["code"] != "registry.classifier_not_found" {
		t.Errorf("unknown classifier: %d %v", code, out)
	}
	if code, out, _ := call(t, h, miaWriter, "GET", "/api/v1/registries/nothing/records/1?purpose=x", ""); code != 404 || out["code"] != "registry.not_found" {
		t.Errorf("unknown registry: %d %v", code, out)
	}
}

// TestEveryReadPathIsAudited reads through each read route and checks that
// each read wrote one audit event per record read, naming the reader, the
// person and the purpose.
func TestEveryReadPathIsAudited(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h := apiServer(t, s)
	ids := testIINs(3)
	for _, id := range ids {
		if _, err := s.ApplyNow(ctx, registry.Change{Registry: "population", Key: id, Op: registry.OpCreate, Data: person(id, "Сейітов"), Actor: "a", Basis: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	base := "/api/v1/registries/population"
	for _, c := range []struct {
		path  string
		reads int
	}{
		{base + "/records/" + ids[0] + "?purpose=benefit+check", 1},
		{base + "/records/" + ids[0] + "?purpose=benefit+check&as_of=2026-03-01", 1},
		{base + "/records/" + ids[0] + "/history?purpose=benefit+check", 1},
		{base + "/records?purpose=benefit+check&last_name=Сейітов", 3},
		{base + "/records?purpose=benefit+check&limit=2", 2},
		{base + "/export?purpose=benefit+check", 3},
	} {
		before := auditCount(t, s)
		code, _, raw := call(t, h, mlspReader, "GET", c.path, "")
		if code != 200 {
			t.Errorf("%s: %d %s", c.path, code, raw)
			continue
		}
		if got := auditCount(t, s) - before; got != c.reads {
			t.Errorf("%s: %d audit events, want %d", c.path, got, c.reads)
		}
	}
	var actor, purpose, subject string
	s.Pool().QueryRow(ctx, `SELECT actor, purpose, subject_iin FROM audit_event ORDER BY id LIMIT 1`).Scan(&actor, &purpose, &subject)
	if actor != "officer:mlsp-1" || purpose != "benefit check" || subject != ids[0] {
		t.Errorf("audit event: %s %s %s", actor, purpose, subject)
	}

	// No purpose, no read; an agency that is not a reader is refused;
	// neither leaves data behind.
	if code, out, _ := call(t, h, mlspReader, "GET", base+"/records/"+ids[0], ""); code != 422 || !strings.Contains(mustJSON(out), `"/purpose"`) {
		t.Errorf("read without purpose: %d %v", code, out)
	}
	if code, _, _ := call(t, h, "officer:mdai-1:mdai:platform-administrator", "GET", base+"/records/"+ids[0]+"?purpose=x", ""); code != 403 {
		t.Errorf("read by a non-reader: %d", code)
	}
	// A citizen reads their own record, not another's.
	if code, _, _ := call(t, h, "citizen:"+ids[1], "GET", base+"/records/"+ids[1], ""); code != 200 {
		t.Errorf("citizen's own record: %d", code)
	}
	before := auditCount(t, s)
	if code, _, _ := call(t, h, "citizen:"+ids[1], "GET", base+"/records/"+ids[0], ""); code != 403 {
		t.Errorf("citizen reads another's record: %d", code)
	}
	if code, out, _ := call(t, h, "citizen:"+ids[1], "GET", base+"/records?last_name=Сейітов", ""); code != 200 || len(out["records"].([]any)) != 1 {
		t.Errorf("citizen's search: %d %v", code, out)
	}
	if got := auditCount(t, s) - before; got != 1 {
		t.Errorf("citizen's refused read and own search: %d audit events, want 1", got)
	}
	// The citizen sees who read their data and why.
	code, out, _ := call(t, h, "citizen:"+ids[0], "GET", "/api/v1/registries/my-data-usage", "")
	if reads, _ := out["reads"].([]any); code != 200 || len(reads) < 6 || reads[len(reads)-1].(map[string]any)["purpose"] != "benefit check" {
		t.Errorf("my data usage: %d %v", code, out)
	}
	if code, _, _ := call(t, h, mlspReader, "GET", "/api/v1/registries/my-data-usage", ""); code != 403 {
		t.Errorf("an officer's data usage: %d", code)
	}
	// The Go method the portal uses answers the same.
	usage, err := s.DataUsage(ctx, identity.Principal{Kind: identity.Citizen, Subject: ids[0]}, 1000)
	if reads, _ := out["reads"].([]any); err != nil || len(usage) != len(reads) || usage[len(usage)-1].Purpose != "benefit check" {
		t.Errorf("DataUsage = %d events, %v; the API gave %d", len(usage), err, len(reads))
	}
	if _, err := s.DataUsage(ctx, identity.Principal{Kind: identity.Officer, Subject: "mlsp-1", Agency: "mlsp"}, 10); err == nil {
		t.Errorf("an officer's DataUsage answered")
	}
	// Search filters are checked.
	if code, out, _ := call(t, h, mlspReader, "GET", base+"/records?purpose=x&shoe_size=4&limit=0", ""); code != 422 || !strings.Contains(mustJSON(out), "/shoe_size") || !strings.Contains(mustJSON(out), "/limit") {
		t.Errorf("bad filters: %d %v", code, out)
	}
	// Cursor pagination walks every record once.
	seen := map[string]bool{}
	next := ""
	for range 5 {
		_, out, _ := call(t, h, mlspReader, "GET", base+"/records?purpose=x&limit=1&after="+next, "")
		for _, r := range out["records"].([]any) {
			seen[r.(map[string]any)["key"].(string)] = true
		}
		next, _ = out["next"].(string)
		if next == "" {
			break
		}
	}
	if len(seen) != 3 {
		t.Errorf("pagination saw %d records", len(seen))
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestCatalogueWhereAndDuplicates(t *testing.T) {
	s, _ := newStore(t)
	s.SetConsumers(func(context.Context) ([]registry.Consumer, error) {
		return []registry.Consumer{{Service: "address-certificate", Version: 1, Registry: "addresses", DataSource: "residence", Basis: "law"}}, nil
	})
	h := apiServer(t, s)
	if code, out, _ := call(t, h, "", "GET", "/api/v1/catalogue/attributes?q=IIN+of+the+person", ""); code != 200 || len(out["attributes"].([]any)) != 2 {
		t.Errorf("catalogue API: %d %v", code, out)
	}
	if code, out, _ := call(t, h, "", "GET", "/api/v1/catalogue/duplicates", ""); code != 200 || len(out["duplicates"].([]any)) != 1 {
		t.Errorf("duplicates API: %d %v", code, out)
	}
	got, err := s.Where(context.Background(), "residential address")
	if err != nil {
		t.Fatal(err)
	}
	var masters []string
	for _, e := range got {
		masters = append(masters, e.Master+"/"+strings.Join(e.Copies, "+")+"/"+itoa(len(e.Consumers)))
	}
	if !slices.Contains(masters, "addresses.kato/population.address_kato/1") || !slices.Contains(masters, "individual_entrepreneurs.address_kato//0") {
		t.Errorf("where residential address: %v", masters)
	}
	dups := s.Duplicates()
	if len(dups) != 1 || dups[0].Fact != "residential address" ||
		strings.Join(dups[0].Masters, ",") != "addresses.flat,addresses.house,addresses.kato,addresses.street,individual_entrepreneurs.address_kato" {
		t.Errorf("duplicates: %+v", dups)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestConcurrentReadsEachCommitTheirAuditEvent: point reads share audit
// transactions, and every one of them is answered only with its event
// committed.
func TestConcurrentReadsEachCommitTheirAuditEvent(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h := apiServer(t, s)
	ids := testIINs(20)
	for _, id := range ids {
		if _, err := s.ApplyNow(ctx, registry.Change{Registry: "population", Key: id, Op: registry.OpCreate, Data: person(id, "Сейітов"), Actor: "a", Basis: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	before := auditCount(t, s)
	const n = 300
	errs := make(chan string, n)
	for i := range n {
		go func() {
			code, _, raw := call(t, h, mlspReader, "GET", "/api/v1/registries/population/records/"+ids[i%len(ids)]+"?purpose=p", "")
			if code != 200 {
				errs <- raw
				return
			}
			errs <- ""
		}()
	}
	for range n {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
	if got := auditCount(t, s) - before; got != n {
		t.Errorf("%d audit events for %d reads", got, n)
	}
}

func TestAPIImport(t *testing.T) {
	s, _ := newStore(t)
	h := apiServer(t, s)
	ids := testIINs(2)
	post := func(who, query, body string) (int, string) {
		req := httptest.NewRequest("POST", "/api/v1/registries/population/import?"+query, strings.NewReader(body))
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("X-Test-Principal", who)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	csv := "iin,last_name,first_name,birth_date,sex\n" + ids[0] + ",А,Б,1980-01-01,male\n" + ids[1] + ",А,Б,1980-13-01,male\n"
	if code, body := post(mlspReader, "format=csv&basis=x", csv); code != 403 {
		t.Errorf("import by a reader: %d %s", code, body)
	}
	if code, body := post(miaWriter, "format=xml", csv); code != 422 || !strings.Contains(body, `"/format"`) || !strings.Contains(body, `"/basis"`) {
		t.Errorf("bad parameters: %d %s", code, body)
	}
	if code, body := post(miaWriter, "format=csv&basis=x", "iin,shoe_size\n"); code != 400 || !strings.Contains(body, `"/header/shoe_size","code":"unknown_field"`) {
		t.Errorf("bad header: %d %s", code, body)
	}
	code, body := post(miaWriter, "format=csv&basis=initial+load", csv)
	if code != 200 || !strings.Contains(body, `"imported":1`) || !strings.Contains(body, `{"row":2,"key":"`+ids[1]+`","field":"/birth_date","code":"format"}`) {
		t.Errorf("import: %d %s", code, body)
	}
}
