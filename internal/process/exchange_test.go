package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/process"
)

// debtChecked is the address certificate refused to anyone with a tax
// debt, which the tax authority's system answers through the exchange.
func debtChecked(t testing.TB) []byte {
	src := string(variant(t, "debt-checked-certificate", 1))
	src = strings.Replace(src, `  refusals:
`, `  refusals:
    tax_debt: {kk: Салық берешегі бар, ru: Есть налоговая задолженность, en: There is a tax debt}
`, 1)
	src = strings.Replace(src, `rules:
`, `  - name: taxes
    exchange: KZ/GOV/KGD/tax/debts-v1
    key: inputs.iin
    path: '"/debts/" + inputs.iin'
    basis: Tax Code, art. 25
    response:
      type: object
      required: [total_tiyn]
      properties:
        total_tiyn: {type: integer, minimum: 0}
rules:
`, 1)
	src = strings.Replace(src, `  eligibility:
`, `  eligibility:
    - name: no_debt
      expr: '!has(data.taxes) || data.taxes.total_tiyn == 0'
      refusal: tax_debt
`, 1)
	src = strings.Replace(src, `  - id: certificate
    type: issue`, `  - id: tell_tax
    type: call
    service: KZ/GOV/KGD/tax/certificates-v1
    path: '"/issued"'
    body:
      iin: inputs.iin
      kind: '"address-certificate"'
  - id: certificate
    type: issue`, 1)
	return []byte(src)
}

// provider is another agency's gateway as the engine sees it: it answers
// X-Road REST reads and remembers the headers.
type provider struct {
	mu      sync.Mutex
	answers map[string]string // path -> JSON body; a missing path answers 404
	seen    []http.Header
	// posts are the calls received: X-Road-Id and body; failPosts makes
	// that many calls fail first.
	posts     []string
	failPosts int
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(r.Body)
		p.posts = append(p.posts, r.URL.Path+" "+r.Header.Get("X-Road-Id")+" "+string(body))
		if p.failPosts > 0 {
			p.failPosts--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
		return
	}
	p.seen = append(p.seen, r.Header.Clone())
	body, ok := p.answers[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(body))
}

func TestExchangeDataSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prov := &provider{answers: map[string]string{}}
	srv := httptest.NewServer(prov)
	t.Cleanup(srv.Close)
	b, engines := setupWith(t, 1, options{services: [][]byte{debtChecked(t)}, config: func(c *process.Config) {
		c.Exchange = process.XRoadClient{Gateway: srv.URL, Client: "KZ/GOV/ORTAQ/services"}
		c.MaxAttempts, c.RetryBase = 2, time.Millisecond
	}})
	e := engines[0]
	debtPath := "/r1/KZ/GOV/KGD/tax/debts-v1/debts/"
	prov.answers[debtPath+b.withAddress.String()] = `{"total_tiyn": 0}`

	prov.failPosts = 1 // the first call fails; the retry sends the same message id
	clean := waitDecided(t, e, submitTo(t, e, "debt-checked-certificate", b.withAddress, "k1"))
	if clean.Status != process.StatusCompleted {
		t.Fatalf("no debt: %s %s", clean.Status, clean.RefusalCode)
	}
	prov.mu.Lock()
	posts := prov.posts
	prov.mu.Unlock()
	want := fmt.Sprintf(`/r1/KZ/GOV/KGD/tax/certificates-v1/issued application:%s:tell_tax {"iin":"%s","kind":"address-certificate"}`, clean.ID, b.withAddress)
	if len(posts) != 2 || posts[0] != want || posts[1] != want {
		t.Errorf("calls:\n%s\nwant twice:\n%s", strings.Join(posts, "\n"), want)
	}
	prov.mu.Lock()
	h := prov.seen[0]
	prov.mu.Unlock()
	if h.Get("X-Road-Client") != "KZ/GOV/ORTAQ/services" || h.Get("X-Road-UserId") != "KZ"+b.withAddress.String() ||
		h.Get("X-Road-Issue") != "application:"+clean.ID.String() || h.Get("X-Road-Id") == "" {
		t.Errorf("X-Road headers: %v", h)
	}
	var audited int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = 'exchange.read' AND subject_iin = $1 AND object = $2 AND purpose LIKE '%Tax Code%'`,
		b.withAddress.String(), "application:"+clean.ID.String()).Scan(&audited); err != nil || audited != 1 {
		t.Errorf("exchange reads audited: %d %v", audited, err)
	}

	prov.mu.Lock()
	prov.answers[debtPath+b.withAddress.String()] = `{"total_tiyn": 150000}`
	prov.mu.Unlock()
	if a := waitDecided(t, e, submitTo(t, e, "debt-checked-certificate", b.withAddress, "k2")); a.Status != process.StatusRefused || a.RefusalCode != "tax_debt" {
		t.Fatalf("a debt: %s %s", a.Status, a.RefusalCode)
	}

	// The provider knows nothing of this person (404): no debt on record.
	if a := waitDecided(t, e, submitTo(t, e, "debt-checked-certificate", b.withoutAddress, "k3")); a.RefusalCode != "no_registered_address" {
		t.Fatalf("nothing on record: %s %s", a.Status, a.RefusalCode)
	}

	// An answer of another shape never reaches the rules: the read fails,
	// is retried, and the application stops as failed for an operator.
	prov.mu.Lock()
	prov.answers[debtPath+b.withAddress.String()] = `{"total_tiyn": "a lot"}`
	prov.mu.Unlock()
	bad := waitDecided(t, e, submitTo(t, e, "debt-checked-certificate", b.withAddress, "k4"))
	if bad.Status != process.StatusFailed {
		t.Fatalf("a malformed answer: %s", bad.Status)
	}
	var errs []string
	for _, s := range bad.Timeline {
		if msg, _ := s.Detail["error"].(string); msg != "" {
			errs = append(errs, msg)
		}
	}
	if joined, _ := json.Marshal(errs); !strings.Contains(string(joined), "does not match the response schema") {
		t.Errorf("the failure does not say why: %s", joined)
	}
}
