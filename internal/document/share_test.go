package document_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/agency"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pgtest"
)

// stepClock is a clock the test moves.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time { return c.now }

var _ clock.Clock = (*stepClock)(nil)

const holder, stranger = "900101300017", "850615400026"

// issued starts a store with one agency and issues n documents about holder.
func issued(t *testing.T, n int) (*document.Store, *stepClock, []document.Document, pgtest.DB) {
	t.Helper()
	db := pgtest.New(t)
	ctx := context.Background()
	bin, _ := iin.NewBIN(time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC), '4', '0', 90001)
	if err := agency.NewStore(db.Pool).Save(ctx, agency.Agency{ID: "mia", BIN: bin, Name: i18n.Text{KK: "a", RU: "b", EN: "c"}}); err != nil {
		t.Fatal(err)
	}
	clk := &stepClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	store := document.NewStore(db.Pool, clk)
	if _, err := store.EnsureKey(ctx, "mia"); err != nil {
		t.Fatal(err)
	}
	subject, _ := iin.Parse(holder)
	var docs []document.Document
	for i := range n {
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			d, err := store.Issue(ctx, tx, document.Spec{Kind: "address-certificate", Issuer: "mia", SubjectIIN: subject,
				Source: "application:" + string(rune('a'+i)),
				Fields: json.RawMessage(`{"title":{"kk":"Анықтама","ru":"Справка","en":"Certificate"},"fields":[]}`)})
			docs = append(docs, d)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		clk.now = clk.now.Add(time.Minute)
	}
	return store, clk, docs, db
}

func auditActions(t *testing.T, db pgtest.DB) []string {
	t.Helper()
	evs, err := audit.ForSubject(context.Background(), db.Pool, holder, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Action)
	}
	return out
}

func TestListBySubjectNewestFirstAndAudited(t *testing.T) {
	store, _, docs, db := issued(t, 3)
	ctx := context.Background()
	got, err := store.ListBySubject(ctx, holder, "citizen:"+holder, "r1", 10)
	if err != nil || len(got) != 3 || got[0].ID != docs[2].ID || got[2].ID != docs[0].ID {
		t.Fatalf("list = %d %v; want the three, newest first", len(got), err)
	}
	if got, _ := store.ListBySubject(ctx, stranger, "citizen:"+stranger, "r2", 10); len(got) != 0 {
		t.Errorf("a stranger's list has %d documents", len(got))
	}
	if a := auditActions(t, db); len(a) != 1 || a[0] != "document.list" {
		t.Errorf("audit = %v; want one document.list", a)
	}
}

func TestShareCodeOpensTheDocumentAFewTimes(t *testing.T) {
	store, clk, docs, db := issued(t, 2)
	ctx := context.Background()
	doc := docs[0]
	if _, _, err := store.CreateShare(ctx, doc.ID, stranger, "citizen:"+stranger, ""); !errors.Is(err, document.ErrNotFound) {
		t.Fatalf("a stranger shares = %v; want not found", err)
	}
	sh, code, err := store.CreateShare(ctx, doc.ID, holder, "citizen:"+holder, "")
	if err != nil || len(code) != document.ShareCodeLength || !sh.Active(clk.now) {
		t.Fatalf("share = %+v %q %v", sh, code, err)
	}
	// By number, grouped and in lower case as a person may type it.
	typed := strings.ToLower(document.FormatShareCode(code))
	got, err := store.OpenShare(ctx, doc.Number, typed, "anonymous", "")
	if err != nil || got.ID != doc.ID {
		t.Fatalf("open by number = %v, %v", got.ID, err)
	}
	// Not on another document of the same holder.
	if _, err := store.OpenShare(ctx, docs[1].ID.String(), code, "anonymous", ""); !errors.Is(err, document.ErrShareInvalid) {
		t.Errorf("the code on another document = %v; want share invalid", err)
	}
	for i := 1; i < document.ShareMaxUses; i++ {
		if _, err := store.OpenShare(ctx, doc.ID.String(), code, "anonymous", ""); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	if _, err := store.OpenShare(ctx, doc.ID.String(), code, "anonymous", ""); !errors.Is(err, document.ErrShareInvalid) {
		t.Errorf("use past the limit = %v; want share invalid", err)
	}
	shares, err := store.Shares(ctx, doc.ID, holder)
	if err != nil || len(shares) != 1 || shares[0].Uses != document.ShareMaxUses || shares[0].Active(clk.now) {
		t.Errorf("shares = %+v %v", shares, err)
	}
	if _, err := store.Shares(ctx, doc.ID, stranger); !errors.Is(err, document.ErrNotFound) {
		t.Errorf("a stranger lists shares: %v", err)
	}
	// Expiry.
	_, code2, _ := store.CreateShare(ctx, doc.ID, holder, "citizen:"+holder, "")
	clk.now = clk.now.Add(document.ShareTTL)
	if _, err := store.OpenShare(ctx, doc.ID.String(), code2, "anonymous", ""); !errors.Is(err, document.ErrShareInvalid) {
		t.Errorf("an expired code = %v; want share invalid", err)
	}
	a := strings.Join(auditActions(t, db), ",")
	if strings.Count(a, "document.shared_read") != document.ShareMaxUses || strings.Count(a, "document.share_created") != 2 ||
		strings.Count(a, "document.share_refused") != 3 {
		t.Errorf("audit = %s", a)
	}
}

func TestRevokedShareRefused(t *testing.T) {
	store, _, docs, db := issued(t, 1)
	ctx := context.Background()
	doc := docs[0]
	sh, code, err := store.CreateShare(ctx, doc.ID, holder, "citizen:"+holder, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.RevokeShare(ctx, doc.ID, sh.ID, stranger, "citizen:"+stranger, ""); !errors.Is(err, document.ErrNotFound) {
		t.Errorf("a stranger revokes = %v; want not found", err)
	}
	if err := store.RevokeShare(ctx, doc.ID, sh.ID, holder, "citizen:"+holder, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenShare(ctx, doc.ID.String(), code, "anonymous", ""); !errors.Is(err, document.ErrShareInvalid) {
		t.Errorf("a revoked code = %v; want share invalid", err)
	}
	if a := strings.Join(auditActions(t, db), ","); !strings.Contains(a, "document.share_revoked") {
		t.Errorf("audit = %s", a)
	}
}

// TestWrongCodesLockTheDocument: after ShareMaxFailures wrong codes in an
// hour even the right code is refused, until the hour has passed.
func TestWrongCodesLockTheDocument(t *testing.T) {
	store, clk, docs, _ := issued(t, 1)
	ctx := context.Background()
	doc := docs[0]
	_, code, err := store.CreateShare(ctx, doc.ID, holder, "citizen:"+holder, "")
	if err != nil {
		t.Fatal(err)
	}
	for i, wrong := range []string{"", "x", strings.Repeat("A", 500), "AAAAAAAAAA", "BBBBB-BBBBB", "CCCCCCCCCC", "DDDDDDDDDD", "EEEEEEEEEE", "FFFFFFFFFF", "GGGGGGGGGG"} {
		if _, err := store.OpenShare(ctx, doc.ID.String(), wrong, "anonymous", ""); !errors.Is(err, document.ErrShareInvalid) {
			t.Fatalf("wrong code %d = %v; want share invalid", i, err)
		}
	}
	if _, err := store.OpenShare(ctx, doc.ID.String(), code, "anonymous", ""); !errors.Is(err, document.ErrShareLocked) {
		t.Fatalf("the right code after %d wrong ones = %v; want locked", document.ShareMaxFailures, err)
	}
	clk.now = clk.now.Add(document.ShareFailureWindow + time.Second)
	if _, err := store.OpenShare(ctx, doc.ID.String(), code, "anonymous", ""); err != nil {
		t.Errorf("after the window: %v", err)
	}
	// Unknown documents and malformed references answer alike.
	for _, ref := range []string{"0193a000-0000-7000-8000-000000000000", "D-0000-0000-0000", "not a number", strings.Repeat("9", 200)} {
		if _, err := store.OpenShare(ctx, ref, code, "anonymous", ""); !errors.Is(err, document.ErrShareInvalid) {
			t.Errorf("ref %.20q = %v; want share invalid", ref, err)
		}
	}
}

func TestPublicFacts(t *testing.T) {
	store, _, docs, _ := issued(t, 1)
	f, err := store.PublicFacts(context.Background(), docs[0].ID)
	if err != nil || !f.Valid || f.Number != docs[0].Number || f.Title.EN != "Certificate" || f.Issuer != "mia" {
		t.Errorf("facts = %+v %v", f, err)
	}
	if _, err := store.PublicFacts(context.Background(), [16]byte{1}); !errors.Is(err, document.ErrNotFound) {
		t.Errorf("unknown document: %v", err)
	}
}
