package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/notify"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, audit.Schema(), outbox.Schema(), notify.Schema()) }

var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Citizens of the tests (valid IINs are not needed here: notify takes the
// IIN the platform gives it).
const (
	both    = "900101300011" // phone and e-mail, no language: kk and ru
	russian = "900101400022" // phone, Russian
	nobody  = "900101300033" // no contact: in-app only
)

// apps is the platform's answer to "whose application is it".
type apps map[string]notify.Application

func (a apps) Application(_ context.Context, id string) (notify.Application, error) {
	if x, ok := a[id]; ok {
		return x, nil
	}
	return notify.Application{}, notify.ErrUnknownApplication
}

type fixture struct {
	pool  *pgxpool.Pool
	clock *clock.Fake
	n     *notify.Notifier
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func setup(t *testing.T, cfg notify.Config, senders ...func(*pgxpool.Pool, clock.Clock) notify.Sender) *fixture {
	t.Helper()
	f := &fixture{pool: pgtest.New(t).Pool, clock: clock.NewFake(start), logs: &syncBuffer{}}
	var ss []notify.Sender
	for _, s := range senders {
		ss = append(ss, s(f.pool, f.clock))
	}
	f.n = notify.NewWithConfig(cfg, f.pool, f.clock, slog.New(slog.NewJSONHandler(f.logs, nil)), ss...)
	ctx := context.Background()
	for iin, c := range map[string]notify.Contact{
		both:    {Phone: "+77010000001", Email: "aigerim@example.kz"},
		russian: {Phone: "+77010000002", Language: "ru"},
	} {
		if _, err := f.n.SetContact(ctx, iin, c, "citizen:"+iin, "setup"); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func devSMS(pool *pgxpool.Pool, clk clock.Clock) notify.Sender {
	return notify.NewDevSender(pool, clk, notify.SMS)
}

type event struct {
	topic, key string
	payload    map[string]any
}

// emit writes events in one transaction.
func (f *fixture) emit(t *testing.T, evs ...event) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		for _, e := range evs {
			if err := outbox.Emit(ctx, tx, start, e.topic, e.key, e.payload); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// consume runs the consumer until it has read want events. Open
// transactions of parallel tests (other databases, one cluster) hold events
// back for a moment: the horizon is the cluster's.
func (f *fixture) consume(t *testing.T, n *notify.Notifier, want int) {
	t.Helper()
	var got int
	for deadline := time.Now().Add(20 * time.Second); got < want; {
		k, err := n.Consume(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got += k
		if k == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("consumed %d events of %d", got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

type row struct {
	Topic, Channel, Recipient, Language, Status, Body string
}

func (f *fixture) messages(t *testing.T) []row {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT topic, channel, recipient, language, status, body FROM notify_message ORDER BY event_id, channel, recipient`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const (
	appBoth    = "0190a000-0000-7000-8000-000000000001"
	appRussian = "0190a000-0000-7000-8000-000000000002"
	appNobody  = "0190a000-0000-7000-8000-000000000003"
)

var platformApps = apps{
	appBoth:    {ApplicantIIN: both, Number: "A-000001"},
	appRussian: {ApplicantIIN: russian, Number: "A-000002"},
	appNobody:  {ApplicantIIN: nobody, Number: "A-000003"},
}

// TestRoute: each topic makes messages for the right recipients, on the
// right channels, in the right languages.
func TestRoute(t *testing.T) {
	t.Parallel()
	text := map[string]string{"kk": "Анықтама дайын", "ru": "Справка готова", "en": "The certificate is ready"}
	due := start.Add(72 * time.Hour) // 05.03.2026 14:00 in Almaty
	tests := []struct {
		name  string
		event event
		want  []string // channel recipient language
		body  string   // a part of the SMS (or, with none, the in-app) body
	}{
		{"message to a citizen with phone and e-mail, no language",
			event{"notify.message.requested", appBoth, map[string]any{"application_id": appBoth, "step": "done", "to_iin": both, "message": text}},
			[]string{"email citizen:" + both + " kk,ru", "inapp citizen:" + both + " kk", "sms citizen:" + both + " kk,ru"},
			"Анықтама дайын\nСправка готова"},
		{"message to a citizen who chose Russian",
			event{"notify.message.requested", appRussian, map[string]any{"application_id": appRussian, "step": "done", "to_iin": russian, "message": text}},
			[]string{"inapp citizen:" + russian + " kk", "sms citizen:" + russian + " ru"},
			"Справка готова"},
		{"message to a citizen without a contact",
			event{"notify.message.requested", appNobody, map[string]any{"application_id": appNobody, "step": "done", "to_iin": nobody, "message": text}},
			[]string{"inapp citizen:" + nobody + " kk"},
			"Анықтама дайын"},
		{"payment requested: applicant found through the platform",
			event{"process.payment.requested", "INV-1", map[string]any{"invoice": "INV-1", "application_id": appRussian, "amount_tiyn": 125050, "payee": "KZ00", "due_at": due}},
			[]string{"inapp citizen:" + russian + " kk", "sms citizen:" + russian + " ru"},
			"Оплатите госпошлину 1 250.50 тенге по заявке A-000002 до 05.03.2026 14:00 (счёт INV-1)."},
		{"signature requested",
			event{"process.signature.requested", appBoth, map[string]any{"application_id": appBoth, "step": "sign", "to_iin": both, "due_at": due}},
			[]string{"email citizen:" + both + " kk,ru", "inapp citizen:" + both + " kk", "sms citizen:" + both + " kk,ru"},
			"Подпишите заявку A-000001 своей ЭЦП до 05.03.2026 14:00."},
		{"application returned",
			event{"process.application.returned", appNobody, map[string]any{"application_id": appNobody, "reason": "фото нечитаемо"}},
			[]string{"inapp citizen:" + nobody + " kk"},
			"A-000003 өтініш сізге түзетуге қайтарылды: фото нечитаемо."},
		{"escalation: the role's queue, in-app only",
			event{"notify.officer.escalation", "task-1", map[string]any{"task_id": "task-1", "application_id": appBoth, "agency": "mia", "role": "supervisor"}},
			[]string{"inapp role:mia/supervisor kk"},
			"task-1 тапсырманың (A-000001 өтініш) мерзімі өтті; ол енді supervisor рөлінің кезегінде."},
		{"access without a basis: the data-protection officers, the IIN's last digits only",
			event{"consent.denied", both, map[string]any{"subject_iin": both, "requester": "system:bank", "items": []string{"population.last_name"},
				"purpose": "loan", "code": "consent.revoked", "channel": "registry", "request_id": "req-9", "at": due}},
			[]string{"inapp role:mdai/data-protection-officer kk"},
			"system:bank мына деректерді сұрады: population.last_name (ЖСН-і …" + both[8:] + " деп аяқталатын адамның), мақсаты: «loan», арна: registry. Бас тартылды: consent.revoked. Уақыты: 05.03.2026 14:00, сұрау: req-9."},
		{"no citizen anywhere: no message",
			event{"process.payment.requested", "INV-2", map[string]any{"invoice": "INV-2", "application_id": "0190a000-0000-7000-8000-0000000000ff", "amount_tiyn": 100}},
			nil, ""},
		{"other topics: no message",
			event{"process.application.decided", appBoth, map[string]any{"application_id": appBoth, "status": "approved"}},
			nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, notify.Config{})
			f.n.SetApplications(platformApps)
			f.emit(t, tt.event)
			// A decided event is not a topic of notify: nothing to read.
			if tt.event.topic != "process.application.decided" {
				f.consume(t, f.n, 1)
			}
			var got []string
			body := ""
			for _, m := range f.messages(t) {
				got = append(got, m.Channel+" "+m.Recipient+" "+m.Language)
				if m.Channel == notify.SMS || (body == "" && m.Channel == notify.InApp) {
					body = m.Body
				}
				if want := map[string]string{"inapp": "sent", "sms": "queued", "email": "queued"}[m.Channel]; m.Status != want {
					t.Errorf("%s message is %s; want %s", m.Channel, m.Status, want)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("messages\n got %q\nwant %q", got, tt.want)
			}
			if !strings.Contains(body, tt.body) {
				t.Errorf("body %q; want it to contain %q", body, tt.body)
			}
			for _, pd := range []string{"+7701", "@example.kz", both, russian, nobody} {
				if strings.Contains(f.logs.String(), pd) {
					t.Errorf("log holds personal data %q: %s", pd, f.logs.String())
				}
			}
		})
	}
}

// TestReturnedOnce: the two events of one return make one message per
// channel; the same events delivered again make none.
func TestReturnedOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, notify.Config{})
	f.n.SetApplications(platformApps)
	f.emit(t,
		event{"process.application.returned", appBoth, map[string]any{"application_id": appBoth, "reason": "no photo"}},
		event{"notify.message.requested", appBoth, map[string]any{"application_id": appBoth, "step": "returned", "to_iin": both,
			"template": "application.returned", "reason": "no photo"}})
	f.consume(t, f.n, 2)
	if got := len(f.messages(t)); got != 3 {
		t.Fatalf("%d messages for one return; want 3 (in-app, SMS, e-mail): %v", got, f.messages(t))
	}
	// Deliver everything again, as after a lost cursor.
	if _, err := f.pool.Exec(context.Background(), `UPDATE outbox_consumer SET tx = '0', id = 0`); err != nil {
		t.Fatal(err)
	}
	f.consume(t, f.n, 2)
	if got := len(f.messages(t)); got != 3 {
		t.Fatalf("%d messages after the events came again; want still 3", got)
	}
	// A second return of the same application (another transaction) is
	// news again.
	f.emit(t, event{"notify.message.requested", appBoth, map[string]any{"application_id": appBoth, "step": "returned", "to_iin": both,
		"template": "application.returned", "reason": "still no photo"}})
	f.consume(t, f.n, 1)
	if got := len(f.messages(t)); got != 6 {
		t.Fatalf("%d messages after a second return; want 6", got)
	}
	// The contact reads that addressed the messages are audited.
	var reads int
	f.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_event WHERE action = 'notify.contact.read' AND subject_iin = $1 AND actor = 'system:notify'`, both).Scan(&reads)
	if reads == 0 {
		t.Errorf("no audit event for the contact reads")
	}
}

// flaky fails its first failures sends, then delivers through the dev
// adapter.
type flaky struct {
	notify.Sender
	mu       sync.Mutex
	failures int
	calls    int
}

func (s *flaky) Send(ctx context.Context, m notify.Message) error {
	s.mu.Lock()
	s.calls++
	fail := s.calls <= s.failures
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("smsc: number %s unreachable (attempt %d)", m.Address, m.Attempt)
	}
	return s.Sender.Send(ctx, m)
}

type status struct {
	Status    string
	Attempts  int
	Next      *time.Time
	LastError *string
}

func (f *fixture) sms(t *testing.T) status {
	t.Helper()
	var s status
	err := f.pool.QueryRow(context.Background(), `SELECT status, attempts, next_attempt_at, last_error FROM notify_message WHERE channel = 'sms'`).
		Scan(&s.Status, &s.Attempts, &s.Next, &s.LastError)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) sendDue(t *testing.T) int {
	t.Helper()
	n, err := f.n.SendDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSendRetries: a failing adapter leaves the message queued with its
// error and a doubling backoff; it is sent when the adapter recovers, and
// failed after the last attempt.
func TestSendRetries(t *testing.T) {
	t.Parallel()
	cfg := notify.Config{MaxAttempts: 3, RetryBase: time.Minute, RetryMax: time.Hour}
	t.Run("recovers", func(t *testing.T) {
		t.Parallel()
		var s *flaky
		f := setup(t, cfg, func(p *pgxpool.Pool, c clock.Clock) notify.Sender {
			s = &flaky{Sender: devSMS(p, c), failures: 2}
			return s
		})
		f.emit(t, event{"notify.message.requested", appRussian, map[string]any{"application_id": appRussian, "to_iin": russian,
			"message": map[string]string{"kk": "Дайын", "ru": "Готово", "en": "Ready"}}})
		f.consume(t, f.n, 1)

		if n := f.sendDue(t); n != 1 {
			t.Fatalf("first round took %d messages; want 1", n)
		}
		st := f.sms(t)
		if st.Status != "queued" || st.Attempts != 1 || st.Next == nil || !st.Next.Equal(start.Add(time.Minute)) ||
			st.LastError == nil || !strings.Contains(*st.LastError, "unreachable") {
			t.Fatalf("after a failed send: %+v; want queued, 1 attempt, next in 1m, the error", st)
		}
		if n := f.sendDue(t); n != 0 {
			t.Fatalf("took %d messages before the backoff ran out", n)
		}
		f.clock.Advance(time.Minute)
		f.sendDue(t)
		if st := f.sms(t); st.Attempts != 2 || !st.Next.Equal(start.Add(3*time.Minute)) {
			t.Fatalf("after the second failure: %+v; want next attempt 2m later", st)
		}
		f.clock.Advance(2 * time.Minute)
		f.sendDue(t)
		if st := f.sms(t); st.Status != "sent" || st.Attempts != 3 || st.LastError != nil {
			t.Fatalf("after a good send: %+v; want sent", st)
		}
		sent, err := notify.DevOutbox(context.Background(), f.pool, notify.OutboxFilter{To: russian})
		if err != nil {
			t.Fatal(err)
		}
		if len(sent) != 1 || sent[0].Address != "+77010000002" || sent[0].Body != "Готово" || sent[0].Language != "ru" {
			t.Fatalf("dev outbox = %+v; want the one Russian SMS", sent)
		}
		if strings.Contains(f.logs.String(), "+77010000002") || !strings.Contains(f.logs.String(), "[address]") {
			t.Errorf("the log must mask the phone: %s", f.logs.String())
		}
	})
	t.Run("fails", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		cfg := cfg
		cfg.Metrics = reg
		f := setup(t, cfg, func(p *pgxpool.Pool, c clock.Clock) notify.Sender {
			return &flaky{Sender: devSMS(p, c), failures: 100}
		})
		f.emit(t, event{"notify.message.requested", appRussian, map[string]any{"application_id": appRussian, "to_iin": russian,
			"message": map[string]string{"kk": "Дайын", "ru": "Готово", "en": "Ready"}}})
		f.consume(t, f.n, 1)
		for range 3 {
			f.sendDue(t)
			f.clock.Advance(time.Hour)
		}
		if st := f.sms(t); st.Status != "failed" || st.Attempts != 3 || st.Next != nil || st.LastError == nil {
			t.Fatalf("after 3 failed sends: %+v; want failed", st)
		}
		if n := f.sendDue(t); n != 0 {
			t.Fatalf("a failed message was taken again")
		}
		if sent, _ := notify.DevOutbox(context.Background(), f.pool, notify.OutboxFilter{}); len(sent) != 0 {
			t.Fatalf("dev outbox holds %d messages; want none", len(sent))
		}
		got := map[string]float64{}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, fam := range families {
			for _, m := range fam.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetValue())
				}
				got[fam.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetCounter().GetValue()
			}
		}
		want := map[string]float64{
			"ortaq_notify_messages_total{inapp,made}": 1, "ortaq_notify_messages_total{sms,made}": 1,
			"ortaq_notify_messages_total{sms,retried}": 2, "ortaq_notify_messages_total{sms,failed}": 1,
		}
		if !maps.Equal(got, want) {
			t.Errorf("metrics %v; want %v", got, want)
		}
	})
	t.Run("no sender: waits", func(t *testing.T) {
		t.Parallel()
		f := setup(t, cfg)
		f.emit(t, event{"notify.message.requested", appRussian, map[string]any{"application_id": appRussian, "to_iin": russian,
			"message": map[string]string{"kk": "Дайын", "ru": "Готово", "en": "Ready"}}})
		f.consume(t, f.n, 1)
		if n := f.sendDue(t); n != 0 {
			t.Fatalf("took %d messages without a sender", n)
		}
		if st := f.sms(t); st.Status != "queued" || st.Attempts != 0 {
			t.Fatalf("%+v; want queued, untouched", st)
		}
	})
}

// counting counts sends per message, across notifiers.
type counting struct {
	notify.Sender
	mu    *sync.Mutex
	sends map[uuid.UUID]int
}

func (c counting) Send(ctx context.Context, m notify.Message) error {
	c.mu.Lock()
	c.sends[m.ID]++
	c.mu.Unlock()
	return c.Sender.Send(ctx, m)
}

// TestTwoNodesExactlyOnce: two notifiers on one database, running while
// events are written, make each message once and send each once.
func TestTwoNodesExactlyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var mu sync.Mutex
	sends := map[uuid.UUID]int{}
	wrap := func(s notify.Sender) notify.Sender { return counting{Sender: s, mu: &mu, sends: sends} }
	cfg := notify.Config{PollInterval: 5 * time.Millisecond, Batch: 7}
	f := setup(t, cfg)
	var nodes []*notify.Notifier
	for range 2 {
		n := notify.NewWithConfig(cfg, f.pool, clock.Real{}, slog.New(slog.DiscardHandler),
			wrap(notify.NewDevSender(f.pool, clock.Real{}, notify.SMS)), wrap(notify.NewDevSender(f.pool, clock.Real{}, notify.Email)))
		n.SetApplications(platformApps)
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	defer func() {
		for _, n := range nodes {
			if err := n.Stop(ctx); err != nil {
				t.Error(err)
			}
			n.Stop(ctx) // twice is fine
		}
	}()
	const writers, each = 4, 15
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				to := []string{both, russian, nobody}[(w+i)%3]
				f.emit(t, event{"notify.message.requested", fmt.Sprint(w, i), map[string]any{"to_iin": to,
					"message": map[string]string{"kk": fmt.Sprint("kk ", w, i), "ru": fmt.Sprint("ru ", w, i), "en": "en"}}})
			}
		})
	}
	wg.Wait()
	// Per 3 events: both gets 3 messages, russian 2, nobody 1.
	const want = writers * each / 3 * 6
	const external = writers * each / 3 * 3
	deadline := time.Now().Add(30 * time.Second)
	var made, sent int
	for time.Now().Before(deadline) {
		f.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'sent') FROM notify_message`).Scan(&made, &sent)
		if made == want && sent == want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if made != want || sent != want {
		t.Fatalf("%d messages made, %d sent; want %d of each", made, sent, want)
	}
	var dev int
	f.pool.QueryRow(ctx, `SELECT count(*) FROM notify_dev_outbox`).Scan(&dev)
	mu.Lock()
	defer mu.Unlock()
	if dev != external || len(sends) != external {
		t.Errorf("dev outbox %d, distinct sends %d; want %d", dev, len(sends), external)
	}
	for id, k := range sends {
		if k != 1 {
			t.Errorf("message %s sent %d times", id, k)
		}
	}
}

// TestStopWithoutStart: Stop is safe on a notifier that never ran; Start
// twice is refused.
func TestStopWithoutStart(t *testing.T) {
	t.Parallel()
	f := setup(t, notify.Config{})
	if err := f.n.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.n.Start(context.Background()); err == nil {
		t.Error("second Start: no error")
	}
	if err := f.n.Stop(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
