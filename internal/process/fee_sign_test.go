package process_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/esign"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/process"
)

// signedAndPaid is the address certificate signed by the applicant within
// a day, then paid (0.5 MRP) within three working days.
func signedAndPaid(t testing.TB) []byte {
	src := string(variant(t, "paid-certificate", 1))
	src = strings.Replace(src, `  refusals:
`, `  refusals:
    fee_not_paid: {kk: Баж мерзімінде төленбеді, ru: Пошлина не оплачена в срок, en: The fee was not paid in time}
    not_signed: {kk: Өтінішке қол қойылмады, ru: Заявление не подписано, en: The application was not signed}
`, 1)
	src = strings.Replace(src, `  - id: certificate
    type: issue`, `  - id: sign
    type: sign
    deadline: PT24H
    refusal: not_signed
  - id: pay
    type: fee
    amount: {mrp: 0.5}
    deadline: P3D
    refusal: fee_not_paid
  - id: certificate
    type: issue`, 1)
	return []byte(src)
}

var paymentGateway = identity.Principal{Kind: identity.System, Subject: "pay-gateway", Roles: []string{identity.ScopePayments}}

type feeSignFixture struct {
	*bundle
	e   *process.Engine
	clk *clock.Fake
	ca  *esign.DemoCA
}

func feeSignSetup(t *testing.T) feeSignFixture {
	t.Helper()
	clk := clock.NewFake(monday)
	var verifier *esign.Verifier
	b, engines := setupWith(t, 1, options{clock: clk, services: [][]byte{signedAndPaid(t)}, config: func(c *process.Config) {
		c.TimerInterval = time.Hour // the tests fire timers themselves
	}, signatures: func(v *esign.Verifier) { verifier = v }})
	ca := caAt(t, monday)
	if _, err := verifier.AddRoot(context.Background(), ca.Chain[0], "test"); err != nil {
		t.Fatal(err)
	}
	return feeSignFixture{bundle: b, e: engines[0], clk: clk, ca: ca}
}

// caAt is a demo root CA valid around the fake clock's time (esign's demo
// CA is valid from the real time on).
func caAt(t *testing.T, at time.Time) *esign.DemoCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(at.UnixNano()), Subject: pkix.Name{CommonName: "Ortaq TEST CA"},
		NotBefore: at.AddDate(-1, 0, 0), NotAfter: at.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &esign.DemoCA{Cert: cert, Signer: key, Chain: [][]byte{der}}
}

// sign signs the application's signing request with a key of person iin.
func (f feeSignFixture) sign(t *testing.T, app uuid.UUID, personIIN string) (esign.Signer, error) {
	t.Helper()
	req, err := f.e.SigningRequestOf(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	key, err := f.ca.Issue(personIIN, esign.IssueOptions{NotBefore: monday.Add(-time.Hour), NotAfter: monday.AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := key.Sign(req.Data, "cms")
	if err != nil {
		t.Fatal(err)
	}
	return f.e.Sign(context.Background(), app, sig, "req-sign")
}

func TestSignThenPay(t *testing.T) {
	t.Parallel()
	f := feeSignSetup(t)
	ctx := context.Background()
	app := submitTo(t, f.e, "paid-certificate", f.withAddress, "k1")
	waitUntil(t, f.e, app, "awaits a signature", func(s string) bool { return s == process.StatusAwaitingSignature })

	// What is signed is the application as submitted, fixed when asked.
	req, err := f.e.SigningRequestOf(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	var st process.Statement
	if err := json.Unmarshal(req.Data, &st); err != nil || st.Application.ID != app || st.Applicant != f.withAddress.String() ||
		st.Inputs["iin"] != f.withAddress.String() || st.Type != process.StatementType || len(req.SHA256) != 64 {
		t.Fatalf("statement %s (%v)", req.Data, err)
	}
	// Someone else's valid signature is not the applicant's.
	_, err = f.sign(t, app, f.withoutAddress.String())
	wantCode(t, err, apierr.SignerNotApplicant)
	// A signature over other data does not verify.
	key, _ := f.ca.Issue(f.withAddress.String(), esign.IssueOptions{NotBefore: monday.Add(-time.Hour)})
	other, _ := key.Sign([]byte("something else"), "raw")
	_, err = f.e.Sign(ctx, app, other, "")
	wantCode(t, err, apierr.SignatureInvalid)
	// An untrusted CA's certificate is refused.
	rogue := caAt(t, monday)
	rogueKey, _ := rogue.Issue(f.withAddress.String(), esign.IssueOptions{NotBefore: monday.Add(-time.Hour)})
	forged, _ := rogueKey.Sign(req.Data, "raw")
	_, err = f.e.Sign(ctx, app, forged, "")
	wantCode(t, err, apierr.SignatureCertUntrusted)

	signer, err := f.sign(t, app, f.withAddress.String())
	if err != nil || signer.IIN != f.withAddress.String() {
		t.Fatalf("sign: %+v %v", signer, err)
	}
	_, err = f.sign(t, app, f.withAddress.String())
	wantCode(t, err, apierr.SigningNotFound) // signed already

	a := waitUntil(t, f.e, app, "awaits payment", func(s string) bool { return s == process.StatusAwaitingPayment })
	inv, err := f.e.InvoiceOf(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	// 0.5 MRP of 2026 (4,325 tenge) is 2,162.50 tenge; due in three working days.
	if inv.AmountTiyn != 216250 || inv.Declared != "0.5 MRP" || inv.Status != "open" || inv.Payee != "mia" ||
		!inv.DueAt.Equal(time.Date(2026, 11, 26, 18, 59, 59, 999999000, time.UTC)) {
		t.Fatalf("invoice %+v", inv)
	}
	pay := process.PaymentConfirmation{Invoice: inv.Number, AmountTiyn: inv.AmountTiyn, Reference: "bank-1", PaidAt: monday}
	// Only a payment system confirms.
	for _, who := range []identity.Principal{citizen(f.withAddress), officerA, {Kind: identity.System, Subject: "bank"}} {
		_, err = f.e.ConfirmPayment(ctx, who, pay)
		wantCode(t, err, apierr.Forbidden)
	}
	wrong := pay
	wrong.AmountTiyn--
	_, err = f.e.ConfirmPayment(ctx, paymentGateway, wrong)
	wantCode(t, err, apierr.Validation)
	long := pay
	long.Reference = strings.Repeat("r", 101)
	_, err = f.e.ConfirmPayment(ctx, paymentGateway, long)
	wantField(t, err, "/reference", apierr.FieldTooLong)
	unknown := pay
	unknown.Invoice = "P-0000-0000-0000"
	_, err = f.e.ConfirmPayment(ctx, paymentGateway, unknown)
	wantCode(t, err, apierr.InvoiceNotFound)

	paid, err := f.e.ConfirmPayment(ctx, paymentGateway, pay)
	if err != nil || paid.Status != "paid" {
		t.Fatalf("confirm: %+v %v", paid, err)
	}
	// The same confirmation again is answered the same; another is refused.
	if again, err := f.e.ConfirmPayment(ctx, paymentGateway, pay); err != nil || again.Status != "paid" {
		t.Fatalf("confirm again: %+v %v", again, err)
	}
	second := pay
	second.Reference = "bank-2"
	_, err = f.e.ConfirmPayment(ctx, paymentGateway, second)
	wantCode(t, err, apierr.InvoiceClosed)

	a = waitDecided(t, f.e, app)
	if a.Status != process.StatusCompleted || a.DocumentID == nil {
		t.Fatalf("after payment: %s", a.Status)
	}
	var names []string
	for _, s := range a.Timeline {
		names = append(names, s.Name+"/"+s.Outcome)
	}
	got := strings.Join(names, " ")
	for _, want := range []string{"sign.requested/open", "signed/ok", "fee.invoiced/open", "fee.paid/ok", "document.issue/ok", "completed/ok"} {
		if !strings.Contains(got, want) {
			t.Errorf("timeline lacks %s: %s", want, got)
		}
	}
	var signedBy string
	if err := f.pool.QueryRow(ctx, `SELECT actor FROM audit_event WHERE action = 'process.application.sign' AND object = $1`, "application:"+app.String()).Scan(&signedBy); err != nil || signedBy != "citizen:"+f.withAddress.String() {
		t.Errorf("signature audit: %q %v", signedBy, err)
	}
}

func TestUnpaidFeeRefusesAfterTheDeadline(t *testing.T) {
	t.Parallel()
	f := feeSignSetup(t)
	ctx := context.Background()
	app := submitTo(t, f.e, "paid-certificate", f.withAddress, "k1")
	waitUntil(t, f.e, app, "awaits a signature", func(s string) bool { return s == process.StatusAwaitingSignature })
	if _, err := f.sign(t, app, f.withAddress.String()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, f.e, app, "awaits payment", func(s string) bool { return s == process.StatusAwaitingPayment })
	inv, _ := f.e.InvoiceOf(ctx, app)
	f.clk.Advance(inv.DueAt.Add(-time.Minute).Sub(f.clk.Now()))
	if _, err := f.e.FireTimers(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.e.Get(ctx, app); a.Status != process.StatusAwaitingPayment {
		t.Fatalf("before the deadline: %s", a.Status)
	}
	f.clk.Advance(2 * time.Minute)
	if n, err := f.e.FireTimers(ctx); err != nil || n != 1 {
		t.Fatalf("fire: %d %v", n, err)
	}
	a, _ := f.e.Get(ctx, app)
	if a.Status != process.StatusRefused || a.RefusalCode != "fee_not_paid" {
		t.Fatalf("after the deadline: %s %s", a.Status, a.RefusalCode)
	}
	// A payment arriving late is refused: the invoice expired.
	_, err := f.e.ConfirmPayment(ctx, paymentGateway, process.PaymentConfirmation{Invoice: inv.Number, AmountTiyn: inv.AmountTiyn, Reference: "late", PaidAt: f.clk.Now()})
	wantCode(t, err, apierr.InvoiceClosed)
}

func TestUnsignedRefusesAndWithdrawalCancelsTheInvoice(t *testing.T) {
	t.Parallel()
	f := feeSignSetup(t)
	ctx := context.Background()
	unsigned := submitTo(t, f.e, "paid-certificate", f.withAddress, "k1")
	waitUntil(t, f.e, unsigned, "awaits a signature", func(s string) bool { return s == process.StatusAwaitingSignature })
	f.clk.Advance(25 * time.Hour)
	if _, err := f.e.FireTimers(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.e.Get(ctx, unsigned); a.Status != process.StatusRefused || a.RefusalCode != "not_signed" {
		t.Fatalf("unsigned: %s %s", a.Status, a.RefusalCode)
	}
	_, err := f.sign(t, unsigned, f.withAddress.String())
	wantCode(t, err, apierr.SigningNotFound)

	withdrawn := submitTo(t, f.e, "paid-certificate", f.withAddress, "k2")
	waitUntil(t, f.e, withdrawn, "awaits a signature", func(s string) bool { return s == process.StatusAwaitingSignature })
	if _, err := f.sign(t, withdrawn, f.withAddress.String()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, f.e, withdrawn, "awaits payment", func(s string) bool { return s == process.StatusAwaitingPayment })
	if err := f.e.Withdraw(ctx, citizen(f.withAddress), withdrawn, ""); err != nil {
		t.Fatal(err)
	}
	inv, _ := f.e.InvoiceOf(ctx, withdrawn)
	if inv.Status != "cancelled" {
		t.Fatalf("invoice of a withdrawn application: %s", inv.Status)
	}
	_, err = f.e.ConfirmPayment(ctx, paymentGateway, process.PaymentConfirmation{Invoice: inv.Number, AmountTiyn: inv.AmountTiyn, Reference: "r", PaidAt: f.clk.Now()})
	wantCode(t, err, apierr.InvoiceClosed)
}
