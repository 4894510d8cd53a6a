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
	done         chan struct{}
}

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
		recs: make(chan OpRecord, 4096),
		done: make(chan struct{}),
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
	for first := range m.recs {
		batch := []OpRecord{first}
	drain:
		for len(batch) < 1000 {
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
		rows := make([][]any, len(batch))
		for i, r := range batch {
			rows[i] = []any{r.Direction, r.MessageID, r.Client, r.Service, r.Method, r.RequestInUs, r.RequestOutUs, r.ResponseInUs,
				r.ResponseOutUs, r.RequestSize, r.ResponseSize, r.Status, r.ErrorType}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
		cancel()
	}
}

// Records returns operational records from since (µs), oldest first.
func (m *monitor) Records(ctx context.Context, sinceUs int64, client string, limit int) ([]OpRecord, error) {
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
