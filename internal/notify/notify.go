package notify

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the notifications' part of the database.
func Schema() pg.Schema { return pg.NewSchema("notify", migrations) }

// The channels.
const (
	SMS   = "sms"
	Email = "email"
	InApp = "inapp"
)

// Consumer is the name of notify's cursor in the outbox.
const Consumer = "notify"

// Config tunes the loops; each zero field takes its default.
type Config struct {
	// PollInterval is how often a node looks for new events and due
	// messages. Default 1s.
	PollInterval time.Duration
	// Batch is how many events, or messages, one round takes. Default 100.
	Batch int
	// MaxAttempts is how many sends a message gets before it is failed.
	// Default 5.
	MaxAttempts int
	// RetryBase is the wait after the first failed send; it doubles with
	// each further failure up to RetryMax. Defaults 30s and 1h.
	RetryBase, RetryMax time.Duration
	// SendTimeout bounds one send. Default 15s. A message being sent is
	// leased for twice as long: a node that dies mid-send gives it back
	// then.
	SendTimeout time.Duration
	// DataProtection is the role told of every attempt to read personal
	// data without a basis (outbox consent.denied). Default the platform
	// operator's data-protection officers: mdai/data-protection-officer.
	DataProtection Role
	// Metrics, when set, gets ortaq_notify_messages_total{channel,outcome}:
	// outcome made, sent, retried (a failed send to try again) or failed.
	Metrics prometheus.Registerer
}

// Role is the officers of one role in one agency.
type Role struct{ Agency, Role string }

// DataProtectionOfficers is the default [Config].DataProtection.
var DataProtectionOfficers = Role{Agency: "mdai", Role: "data-protection-officer"}

func (c Config) withDefaults() Config {
	if c.DataProtection.Agency == "" || c.DataProtection.Role == "" {
		c.DataProtection = DataProtectionOfficers
	}
	c.PollInterval = cmp.Or(c.PollInterval, time.Second)
	c.Batch = cmp.Or(c.Batch, 100)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, 5)
	c.RetryBase = cmp.Or(c.RetryBase, 30*time.Second)
	c.RetryMax = cmp.Or(c.RetryMax, time.Hour)
	c.SendTimeout = cmp.Or(c.SendTimeout, 15*time.Second)
	return c
}

// Sender delivers messages of one channel ("sms", "email"). Send returns
// nil only when the provider took the message; any error leaves the message
// queued for a retry. Send may be called again for a message it already
// took (after a crash): a provider that can should drop a second message
// with the same Message.ID. Senders are used from several goroutines.
type Sender interface {
	Channel() string
	Send(ctx context.Context, m Message) error
}

// Applications tells notify whose an application is and its number, for
// events that name neither. It returns ErrUnknownApplication for an id it
// does not know.
type Applications interface {
	Application(ctx context.Context, id string) (Application, error)
}

// Application is what a message needs to know of an application.
type Application struct {
	ApplicantIIN string
	Number       string // the human-facing number; "" to show the id
}

// ErrUnknownApplication is returned by Applications for an unknown id.
var ErrUnknownApplication = errors.New("unknown application")

// Notifier turns events into messages and sends them.
type Notifier struct {
	pool    *pgxpool.Pool
	clock   clock.Clock
	log     *slog.Logger
	cfg     Config
	senders map[string]Sender
	apps    Applications
	counted *prometheus.CounterVec

	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

// New returns a notifier with the default Config. Without a sender for a
// channel, its messages wait queued.
func New(pool *pgxpool.Pool, clk clock.Clock, log *slog.Logger, senders ...Sender) *Notifier {
	return NewWithConfig(Config{}, pool, clk, log, senders...)
}

// NewWithConfig is New with a Config.
func NewWithConfig(cfg Config, pool *pgxpool.Pool, clk clock.Clock, log *slog.Logger, senders ...Sender) *Notifier {
	n := &Notifier{pool: pool, clock: clk, log: log, cfg: cfg.withDefaults(), senders: map[string]Sender{},
		counted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ortaq_notify_messages_total", Help: "Messages to people, by channel and outcome (made, sent, retried, failed).",
		}, []string{"channel", "outcome"})}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(n.counted)
	}
	for _, s := range senders {
		n.senders[s.Channel()] = s
	}
	return n
}

// SetApplications sets who tells whose an application is. Without it,
// events that name no citizen make no message (a warning is logged).
func (n *Notifier) SetApplications(a Applications) { n.apps = a }

// Start runs the consumer and the sender loop on this node until Stop.
// Several nodes may run them on one database. Starting twice is an error.
func (n *Notifier) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stop != nil {
		return errors.New("notify: already started")
	}
	loop, stop := context.WithCancel(context.WithoutCancel(ctx))
	n.stop, n.done = stop, make(chan struct{})
	go n.run(loop, n.done)
	return nil
}

// Stop ends the loops and waits for a send in progress (at most
// SendTimeout) or until ctx ends. Stopping a notifier that is not running
// does nothing.
func (n *Notifier) Stop(ctx context.Context) error {
	n.mu.Lock()
	stop, done := n.stop, n.done
	n.stop, n.done = nil, nil
	n.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Notifier) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(n.cfg.PollInterval)
	defer t.Stop()
	for {
		n.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round consumes every event there is, then sends every due message.
func (n *Notifier) round(ctx context.Context) {
	for ctx.Err() == nil {
		k, err := n.Consume(ctx)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("notify: consuming events", "error", err)
			}
			break
		}
		if k < n.cfg.Batch {
			break
		}
	}
	for ctx.Err() == nil {
		k, err := n.SendDue(ctx)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("notify: sending", "error", err)
			}
			return
		}
		if k == 0 {
			return
		}
	}
}

// Topics are the outbox topics that make messages.
var Topics = []string{
	"notify.message.requested",
	"notify.officer.escalation",
	"consent.denied",
	"process.payment.requested",
	"process.signature.requested",
	"process.application.returned",
}

// Consume turns the next batch of events into messages, in the transaction
// that moves notify's outbox cursor. It returns the number of events read:
// 0 when there are none or another node is consuming.
func (n *Notifier) Consume(ctx context.Context) (int, error) {
	return outbox.Consume(ctx, n.pool, Consumer, Topics, n.cfg.Batch, func(ctx context.Context, tx pgx.Tx, events []outbox.Event) error {
		for _, e := range events {
			intents, err := n.route(ctx, tx, e)
			if err != nil {
				return fmt.Errorf("event %d (%s): %w", e.ID, e.Topic, err)
			}
			for _, in := range intents {
				if err := n.write(ctx, tx, e, in); err != nil {
					return fmt.Errorf("event %d (%s): %w", e.ID, e.Topic, err)
				}
			}
		}
		return nil
	})
}
