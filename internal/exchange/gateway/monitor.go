package gateway

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// OpRecord is one exchange as operational monitoring sees it.
type OpRecord struct {
	Direction     string `json:"direction"`
	MessageID     string `json:"message_id"`
	Client        string `json:"client"`
	Service       string `json:"service"`
	Method        string `json:"method"`
	RequestInUs   int64  `json:"request_in_us"`   // request arrived at this node
	RequestOutUs  int64  `json:"request_out_us"`  // sent on (to the peer or provider)
	ResponseInUs  int64  `json:"response_in_us"`  // response headers arrived
	ResponseOutUs int64  `json:"response_out_us"` // response complete and logged
	RequestSize   int64  `json:"request_size"`
	ResponseSize  int64  `json:"response_size"`
	Status        int    `json:"status"`
	ErrorType     string `json:"error_type,omitempty"`
}

type monitor struct {
	pool     *pgxpool.Pool
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
	// consentCheck is the time a consent check takes on this node.
	consentCheck prometheus.Histogram
	recs         chan OpRecord
	flushes      chan chan struct{}
	done         chan struct{}
}

// monitorFlushEvery is how long a monitoring record may wait to be
// written. Written in batches, the records cost the database a few writes
// a second instead of one transaction per exchange, which the exchanges'
// own log commits would queue behind.
const monitorFlushEvery = 100 * time.Millisecond

func newMonitor(pool *pgxpool.Pool) *monitor {
	m := &monitor{
		pool: pool,
		reg:  prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ortaq_gateway_requests_total",
			Help: "Exchanges seen by this gateway node."}, []string{"direction", "service", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ortaq_gateway_request_duration_seconds",
			Help:    "Time from request arrival to logged response.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}}, []string{"direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ortaq_gateway_bytes_total",
			Help: "Body bytes through this gateway node."}, []string{"direction", "kind"}),
		consentCheck: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ortaq_gateway_consent_check_seconds",
			Help:    "Time this gateway spends checking a call's consent.",
			Buckets: []float64{5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, .001, .005, .01, .05, .1}}),
		recs:    make(chan OpRecord, 4096),
		flushes: make(chan chan struct{}),
		done:    make(chan struct{}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.bytes, m.consentCheck)
	go m.writer()
	return m
}

func (m *monitor) record(r OpRecord) {
	m.requests.WithLabelValues(r.Direction, r.Service, strconv.Itoa(r.Status)).Inc()
	m.duration.WithLabelValues(r.Direction).Observe(float64(r.ResponseOutUs-r.RequestInUs) / 1e6)
	m.bytes.WithLabelValues(r.Direction, "request").Add(float64(r.RequestSize))
	m.bytes.WithLabelValues(r.Direction, "response").Add(float64(r.ResponseSize))
	select {
	case m.recs <- r:
	default: // monitoring never slows the exchange down; the metrics still count it
	}
}

func (m *monitor) close() {
	close(m.recs)
	<-m.done
}

func (m *monitor) writer() {
	defer close(m.done)
	tick := time.NewTicker(monitorFlushEvery)
	defer tick.Stop()
	var batch []OpRecord
	for {
		var flushed chan struct{}
		select {
		case r, ok := <-m.recs:
			if !ok {
				m.write(batch)
				return
			}
			if batch = append(batch, r); len(batch) < 1000 {
				continue
			}
		case <-tick.C:
		case flushed = <-m.flushes:
		drain:
			for {
				select {
				case r, ok := <-m.recs:
					if !ok {
						break drain
					}
					batch = append(batch, r)
				default:
					break drain
				}
			}
		}
		m.write(batch)
		batch = batch[:0]
		if flushed != nil {
			close(flushed)
		}
	}
}

// flush writes the records recorded so far.
func (m *monitor) flush(ctx context.Context) {
	flushed := make(chan struct{})
	select {
	case m.flushes <- flushed:
	case <-m.done:
		return
	case <-ctx.Done():
		return
	}
	select {
	case <-flushed:
	case <-ctx.Done():
	}
}

func (m *monitor) write(batch []OpRecord) {
	if len(batch) == 0 {
		return
	}
	rows := make([][]any, len(batch))
	for i, r := range batch {
		rows[i] = []any{r.Direction, r.MessageID, r.Client, r.Service, r.Method, r.RequestInUs, r.RequestOutUs, r.ResponseInUs,
			r.ResponseOutUs, r.RequestSize, r.ResponseSize, r.Status, r.ErrorType}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Monitoring records need no flush of their own: a crash may lose
	// the last moments of them, never a message log entry.
	_ = pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"gateway_opmon"}, []string{"direction", "message_id", "client", "service", "method",
			"request_in_us", "request_out_us", "response_in_us", "response_out_us", "request_size", "response_size", "status", "error_type"},
			pgx.CopyFromRows(rows))
		return err
	})
}

// Records returns operational records from since (µs), oldest first.
func (m *monitor) Records(ctx context.Context, sinceUs int64, client string, limit int) ([]OpRecord, error) {
	m.flush(ctx)
	rows, err := m.pool.Query(ctx, `
		SELECT direction, message_id, client, service, method, request_in_us, request_out_us, response_in_us, response_out_us,
		       request_size, response_size, status, error_type
		FROM gateway_opmon WHERE request_in_us >= $1 AND ($2 = '' OR client = $2) ORDER BY request_in_us, id LIMIT $3`, sinceUs, client, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[OpRecord])
}

func (m *monitor) metricsHandler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
