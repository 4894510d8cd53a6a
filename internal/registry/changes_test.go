package registry_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/registry"
)

// TestChangeFeed: a reading agency's system follows a registry's changes
// (records created, updated, cancelled, imported) in commit order with a
// cursor, each change audited as a read of the person; others may not.
func TestChangeFeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	h := apiServer(t, s)
	ids := testIINs(4)
	for _, c := range []registry.Change{
		{Registry: "population", Key: ids[0], Op: registry.OpCreate, Data: person(ids[0], "Сейітов"), Actor: "a", Basis: "birth"},
		{Registry: "population", Key: ids[0], Op: registry.OpUpdate, Data: person(ids[0], "Ахметов"), Actor: "a", Basis: "marriage"},
		{Registry: "population", Key: ids[1], Op: registry.OpCreate, Data: person(ids[1], "Оспанов"), Actor: "a", Basis: "birth"},
		{Registry: "population", Key: ids[1], Op: registry.OpCancel, Actor: "a", Basis: "death"},
	} {
		if _, err := s.ApplyNow(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := s.Definition("population")
	rows, _ := registry.NewRowReader(strings.NewReader(mustJSON(person(ids[2], "Нұрланов"))+"\n"+mustJSON(person(ids[3], "Бекова"))+"\n"), registry.FormatNDJSON, d)
	if rep, err := s.Import(ctx, "population", rows, registry.ImportOptions{Actor: "a", Basis: "census"}); err != nil || rep.Rejected > 0 {
		t.Fatalf("import: %+v %v", rep, err)
	}

	// The feed shows a change once no older transaction is still open
	// anywhere in the cluster (other tests run beside this one): poll.
	var changes []map[string]any
	next := ""
	for deadline := time.Now().Add(20 * time.Second); len(changes) < 6; {
		code, out, raw := call(t, h, mlspReader, "GET", "/api/v1/registries/population/changes?purpose=benefit+check&limit=2&after="+next, "")
		if code != 200 {
			t.Fatalf("feed: %d %s", code, raw)
		}
		for _, c := range out["changes"].([]any) {
			changes = append(changes, c.(map[string]any))
		}
		next = out["next"].(string)
		if time.Now().After(deadline) {
			t.Fatalf("feed gave %d changes in 20 s", len(changes))
		}
		time.Sleep(10 * time.Millisecond)
	}
	var got []string
	for _, c := range changes {
		got = append(got, fmt.Sprintf("%s %s", c["key"], c["op"]))
	}
	want := []string{ids[0] + " create", ids[0] + " update", ids[1] + " create", ids[1] + " cancel", ids[2] + " create", ids[3] + " create"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("changes\n got %v\nwant %v", got, want)
	}
	if changes[4]["imported"] != true || changes[0]["imported"] != nil {
		t.Errorf("imported marks: %v %v", changes[4], changes[0])
	}
	if changes[1]["basis"] != "marriage" || fmt.Sprint(changes[1]["changed"]) != "[last_name]" || changes[1]["version"] != 2.0 {
		t.Errorf("update: %v", changes[1])
	}
	// Nothing new from the cursor on; each change was audited as a read.
	if code, out, _ := call(t, h, mlspReader, "GET", "/api/v1/registries/population/changes?purpose=x&after="+next, ""); code != 200 || len(out["changes"].([]any)) != 0 || out["next"] != next {
		t.Errorf("from the end: %d %v", code, out)
	}
	var audited int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = 'registry.population.changes' AND actor = 'officer:mlsp-1'`).Scan(&audited); err != nil || audited != 6 {
		t.Errorf("audited %d changes (%v); want 6", audited, err)
	}
	var subject string
	s.Pool().QueryRow(ctx, `SELECT subject_iin FROM audit_event WHERE action = 'registry.population.changes' ORDER BY id LIMIT 1`).Scan(&subject)
	if subject != ids[0] {
		t.Errorf("the first change's audit names %q", subject)
	}

	// Who may follow it, and bad input.
	for _, c := range []struct {
		who, query string
		status     int
		field      string
	}{
		{"", "purpose=x", 401, ""},
		{"officer:mdai-1:mdai:platform-administrator", "purpose=x", 403, ""},
		{"citizen:" + ids[0], "", 403, ""},
		{mlspReader, "", 422, "/purpose"},
		{mlspReader, "purpose=x&after=nope", 422, "/after"},
		{mlspReader, "purpose=x&after=1.-1", 422, "/after"},
		{mlspReader, "purpose=x&limit=0", 422, "/limit"},
		{mlspReader, "purpose=x&limit=1001", 422, "/limit"},
	} {
		code, _, raw := call(t, h, c.who, "GET", "/api/v1/registries/population/changes?"+c.query, "")
		if code != c.status || !strings.Contains(raw, c.field) {
			t.Errorf("%s ?%s: %d %s; want %d %s", c.who, c.query, code, raw, c.status, c.field)
		}
	}
	if code, _, _ := call(t, h, mlspReader, "GET", "/api/v1/registries/nothing/changes?purpose=x", ""); code != 404 {
		t.Errorf("unknown registry: %d", code)
	}
}
