package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/registry"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, audit.Schema(), outbox.Schema(), registry.Schema())
}

var agencies = map[string][]string{
	"mia":  {"migration-officer", "registry-officer"},
	"mdai": {"platform-administrator"},
	"moj":  {"civil-registry-officer"},
	"mlsp": {"benefits-officer", "pension-officer"},
	"gpo":  {"special-records-officer"},
	"mf":   {"tax-officer"},
	"moe":  {"preschool-officer"},
}

func newStore(t *testing.T) (*registry.Store, *clock.Fake) {
	t.Helper()
	db := pgtest.New(t)
	clk := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	s := registry.NewStore(db.Pool, clk)
	set, bad, err := registry.LoadSet(os.DirFS("../../registries"), agencies)
	if err != nil || len(bad) > 0 {
		t.Fatalf("load definitions: %v %v", err, bad)
	}
	if err := s.Install(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func person(iin, last string) map[string]any {
	return map[string]any{"iin": iin, "last_name": last, "first_name": "Асан", "birth_date": "1990-01-01", "sex": "male", "address_kato": "711110000"}
}

var reader = registry.Access{Actor: "officer:mlsp-1", Purpose: "test", RequestID: "req-1"}

func TestHistoryAsOfCorrectionCancel(t *testing.T) {
	ctx := context.Background()
	s, clk := newStore(t)
	const id = "900101300017"
	ch := func(op string, data map[string]any, valid time.Time) registry.Record {
		t.Helper()
		rec, err := s.ApplyNow(ctx, registry.Change{Registry: "population", Key: id, Op: op, Data: data, ValidFrom: valid,
			Actor: "officer:mia-1", Basis: "test basis"})
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		return rec
	}
	t0 := clk.Now()
	ch(registry.OpCreate, person(id, "Сейітов"), time.Time{})
	clk.Advance(24 * time.Hour)
	t1 := clk.Now()
	ch(registry.OpUpdate, person(id, "Ахметов"), time.Time{})
	clk.Advance(24 * time.Hour)
	// The update misspelled the name: a correction valid from the update.
	ch(registry.OpCorrect, person(id, "Ахметжанов"), t1)
	clk.Advance(24 * time.Hour)
	t3 := clk.Now()
	ch(registry.OpCancel, nil, time.Time{})

	if _, err := s.ApplyNow(ctx, registry.Change{Registry: "population", Key: id, Op: registry.OpUpdate, Data: person(id, "X"), Actor: "a", Basis: "b"}); !errors.Is(err, registry.ErrCancelled) {
		t.Errorf("update of a cancelled record: %v", err)
	}
	if _, err := s.ApplyNow(ctx, registry.Change{Registry: "population", Key: id, Op: registry.OpCreate, Data: person(id, "X"), Actor: "a", Basis: "b"}); !errors.Is(err, registry.ErrExists) {
		t.Errorf("second create: %v", err)
	}
	if _, err := s.ApplyNow(ctx, registry.Change{Registry: "population", Key: "900101300025", Op: registry.OpCreate, Data: person("900101300025", "X"), Actor: "a"}); !errors.Is(err, registry.ErrNoReason) {
		t.Errorf("change without a basis: %v", err)
	}

	err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		at := func(when time.Time) (string, bool) {
			rec, found, err := s.Get(ctx, tx, "population", id, &when, reader)
			if err != nil {
				t.Fatal(err)
			}
			if !found {
				return "", false
			}
			return rec.Data["last_name"].(string) + "/" + rec.Op, true
		}
		if _, found := at(t0.Add(-time.Hour)); found {
			t.Error("found before creation")
		}
		for when, want := range map[time.Time]string{t0: "Сейітов/create", t1.Add(time.Hour): "Ахметжанов/correct", t3: "Ахметжанов/cancel"} {
			if got, _ := at(when); got != want {
				t.Errorf("as of %v: %q, want %q", when, got, want)
			}
		}
		cur, found, err := s.Get(ctx, tx, "population", id, nil, reader)
		if err != nil || !found || !cur.Cancelled || cur.Version != 4 {
			t.Errorf("current: %+v %v %v", cur, found, err)
		}
		hist, err := s.History(ctx, tx, "population", id, reader)
		if err != nil {
			t.Fatal(err)
		}
		var ops []string
		for _, h := range hist {
			ops = append(ops, h.Op+":"+h.Actor+":"+h.Basis)
		}
		if got := strings.Join(ops, ","); got != "create:officer:mia-1:test basis,update:officer:mia-1:test basis,correct:officer:mia-1:test basis,cancel:officer:mia-1:test basis" {
			t.Errorf("history %s", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Nothing is overwritten in place: the trigger refuses it.
	for _, sql := range []string{
		`UPDATE registry_record_version SET data = '{}'`,
		`DELETE FROM registry_record_version`,
		`TRUNCATE registry_record_version`,
	} {
		if _, err := s.Pool().Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", sql, err)
		}
	}

	// Each change emitted one event, in order.
	evs, err := outbox.After(ctx, s.Pool(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		var ce registry.ChangeEvent
		if err := json.Unmarshal(e.Payload, &ce); err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Topic+":"+ce.Op+":"+strings.Join(ce.Changed, "+"))
	}
	want := "registry.population.changed:create:address_kato+birth_date+first_name+iin+last_name+sex," +
		"registry.population.changed:update:last_name,registry.population.changed:correct:last_name,registry.population.changed:cancel:"
	if strings.Join(got, ",") != want {
		t.Errorf("events\n got %s\nwant %s", strings.Join(got, ","), want)
	}
	// Every read was audited under the person.
	evts, err := audit.ForSubject(ctx, s.Pool(), id, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evts) != 6 {
		t.Errorf("%d audit events, want 6 (4 as-of reads, a read, a history)", len(evts))
	}
}

func TestInvalidChangeWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	bad := person("900101300018", "A")
	_, err := s.ApplyNow(ctx, registry.Change{Registry: "population", Key: "900101300018", Op: registry.OpCreate, Data: bad, Actor: "a", Basis: "b"})
	var inv *registry.InvalidError
	if !errors.As(err, &inv) || inv.Problems[0].Path != "/iin" || inv.Problems[0].Code != "iin.checksum" {
		t.Fatalf("got %v", err)
	}
	var n int
	s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM registry_record_version) + (SELECT count(*) FROM outbox_event)`).Scan(&n)
	if n != 0 {
		t.Errorf("%d rows written", n)
	}
}

func mustDate(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}
