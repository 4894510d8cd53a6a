package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
)

// ProcessConfig configures the process benchmark.
type ProcessConfig struct {
	N           int           // applications of the throughput phase
	Concurrency int           // HTTP clients of the throughput phase, and connections of the baseline
	Workers     int           // engine workers
	Rate        int           // applications per second offered in the latency phase
	Duration    time.Duration // length of the latency phase
	DatabaseURL string        // empty: a fresh embedded cluster in a temporary directory
	PGBin       string
}

// processService is the demo's fully automatic service: registry read,
// eligibility rule, signed document, notification.
const processService = "address-certificate"

// Process benchmarks the process engine through its public HTTP API on a real
// loopback listener, in three phases on one database:
//
//   - A, baseline: N raw durable transactions (read the person, write a row)
//     on Concurrency connections: the database's raw commit rate;
//   - B, throughput: N applications submitted by Concurrency clients as fast
//     as they go, worked by Workers workers until every one is decided;
//     transactions per application and the commit rate come from
//     pg_stat_database;
//   - C, latency: Rate applications per second for Duration from an open-loop
//     pacer (a slow answer does not lower the offered rate).
//
// Latencies are submit to done: decided_at - submitted_at of each
// application. It ends with an integrity check (every application completed,
// exactly one document each) and one key=value summary line.
func Process(ctx context.Context, cfg ProcessConfig, out io.Writer) error {
	if cfg.N < 1 || cfg.Concurrency < 1 || cfg.Workers < 1 || cfg.Rate < 1 || cfg.Duration <= 0 {
		return errors.New("--n, --concurrency, --workers and --rate must be at least 1, --duration positive")
	}
	rateN := max(1, int(float64(cfg.Rate)*cfg.Duration.Seconds()))
	b, err := startPlatform(ctx, cfg.DatabaseURL, cfg.PGBin, cfg.Workers, max(cfg.N, rateN, 1000), out)
	if err != nil {
		return err
	}
	defer b.close()
	pool := b.pool()

	// The public API on a real loopback listener.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Web.Serve(serveCtx, ln) }()
	defer func() { stopServing(); <-served }()
	c := newClient("http://"+ln.Addr().String(), max(2*cfg.Concurrency, 256), fmt.Sprintf("bench-%x", time.Now().UnixNano()))
	defer c.http.CloseIdleConnections()
	if c.tokens, err = citizenTokens(ctx, b, out); err != nil {
		return err
	}

	// Phase A: the raw commit rate on as many connections as phase B has
	// clients.
	fmt.Fprintf(out, "bench: baseline, %d raw transactions (read the person, write a row) on %d connections...\n", cfg.N, cfg.Concurrency)
	basePool, err := dedicatedPool(ctx, pool, cfg.Concurrency)
	if err != nil {
		return err
	}
	baseCPU := readCPU(ctx, basePool)
	baseline, err := rawBaseline(ctx, basePool, b.iins, cfg.N, cfg.Concurrency)
	baseSelfMS, baseDBMS := cpuMSPer(baseCPU, readCPU(ctx, basePool), cfg.N)
	basePool.Close()
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	fmt.Fprintf(out, "bench: baseline %.0f commits/s, CPU per commit %.3f ms here and %.3f ms in PostgreSQL\n", baseline, baseSelfMS, baseDBMS)

	if err := b.Engine.Start(ctx); err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.Engine.Stop(stopCtx)
	}()
	mon := &monitor{pool: pool, out: out}
	docsBefore, err := mon.count(ctx, `SELECT count(*) FROM document`)
	if err != nil {
		return err
	}

	// Phase B: throughput.
	before, err := mon.sample(ctx)
	if err != nil {
		return err
	}
	cpuBefore := readCPU(ctx, pool)
	fmt.Fprintf(out, "bench: throughput, %d applications from %d HTTP clients, %d workers...\n", cfg.N, cfg.Concurrency, cfg.Workers)
	ids := make([]string, cfg.N)
	submitMS := make([]float64, cfg.N)
	submitStart := time.Now()
	err = concurrently(cfg.N, cfg.Concurrency, func(i int) error {
		t := time.Now()
		id, err := c.submit(ctx, b.iins[i%len(b.iins)].String(), fmt.Sprintf("b-%d", i))
		ids[i], submitMS[i] = id, ms(time.Since(t))
		return err
	})
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	submitted := time.Since(submitStart)
	if err := mon.waitDone(ctx, ids); err != nil {
		return err
	}
	cpuAfter := readCPU(ctx, pool)
	after, err := mon.sample(ctx)
	if err != nil {
		return err
	}
	selfMS, dbMS := cpuMSPer(cpuBefore, cpuAfter, cfg.N)
	tp, err := mon.latencies(ctx, ids)
	if err != nil {
		return err
	}
	commits := float64(after.commits - before.commits - mon.ownTx(before, after))
	appsPerS := float64(cfg.N) / tp.window.Seconds()
	commitPerS := commits / tp.window.Seconds()
	slices.Sort(submitMS)
	fmt.Fprintf(out, "bench: throughput: %.0f applications/s decided, HTTP submit %.0f/s (answer p50 %.1f ms, p99 %.1f ms), %.1f commits and %.1f KB of WAL per application\n",
		appsPerS, float64(cfg.N)/submitted.Seconds(), percentile(submitMS, 0.50), percentile(submitMS, 0.99),
		commits/float64(cfg.N), float64(after.walBytes-before.walBytes)/1024/float64(cfg.N))
	fmt.Fprintf(out, "bench: CPU per application %.2f ms here (platform and HTTP clients) and %.2f ms in PostgreSQL: as much as %.1f raw commits\n",
		selfMS, dbMS, (selfMS+dbMS)/(baseSelfMS+baseDBMS))

	// Phase C: latency at a fixed offered rate.
	fmt.Fprintf(out, "bench: latency, %d applications/s for %s (open loop)...\n", cfg.Rate, cfg.Duration)
	rateIDs, rateSubmitMS, err := c.paced(ctx, cfg.Rate, rateN, b.iins)
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	if err := mon.waitDone(ctx, rateIDs); err != nil {
		return err
	}
	lat, err := mon.latencies(ctx, rateIDs)
	if err != nil {
		return err
	}
	slices.Sort(rateSubmitMS)
	fmt.Fprintf(out, "bench: latency: %.0f applications/s offered, HTTP submit answer p50 %.1f ms, p99 %.1f ms\n",
		float64(rateN)/cfg.Duration.Seconds(), percentile(rateSubmitMS, 0.50), percentile(rateSubmitMS, 0.99))

	// Integrity: every application completed with its own document, and the
	// documents issued during the run are exactly those.
	all := append(ids, rateIDs...)
	var completed, linked int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE a.status = 'completed'), count(DISTINCT d.id)
		FROM application a LEFT JOIN document d ON d.id = a.document_id WHERE a.id = ANY($1::uuid[])`, all).Scan(&completed, &linked); err != nil {
		return err
	}
	docsAfter, err := mon.count(ctx, `SELECT count(*) FROM document`)
	if err != nil {
		return err
	}
	docs := docsAfter - docsBefore
	if completed != len(all) || linked != len(all) || docs != int64(len(all)) {
		return fmt.Errorf("integrity: of %d applications %d completed with %d distinct documents; %d documents issued", len(all), completed, linked, docs)
	}

	fmt.Fprintf(out, "bench=process n=%d concurrency=%d workers=%d apps_per_s=%.0f p50_ms=%.1f p95_ms=%.1f p99_ms=%.1f max_ms=%.1f "+
		"tx_per_app=%.2f commit_per_s=%.0f baseline_commit_per_s=%.0f commit_ratio=%.3f wal_kb_per_app=%.1f "+
		"cpu_ms_per_app=%.2f db_cpu_ms_per_app=%.2f baseline_cpu_ms_per_commit=%.3f baseline_db_cpu_ms_per_commit=%.3f "+
		"rate=%d rate_p50_ms=%.1f rate_p95_ms=%.1f rate_p99_ms=%.1f rate_max_ms=%.1f documents=%d\n",
		cfg.N, cfg.Concurrency, cfg.Workers, appsPerS, tp.p(0.50), tp.p(0.95), tp.p(0.99), tp.p(1),
		commits/float64(cfg.N), commitPerS, baseline, commitPerS/baseline, float64(after.walBytes-before.walBytes)/1024/float64(cfg.N),
		selfMS, dbMS, baseSelfMS, baseDBMS,
		cfg.Rate, lat.p(0.50), lat.p(0.95), lat.p(0.99), lat.p(1), docs)
	return nil
}

// dedicatedPool is a pool of exactly conns connections to pool's database,
// all connected before it is returned, so that a measurement neither waits
// for the platform's pool nor pays for connecting.
func dedicatedPool(ctx context.Context, pool *pgxpool.Pool, conns int) (*pgxpool.Pool, error) {
	cfg := pool.Config()
	cfg.MaxConns, cfg.MinConns = int32(conns), 0
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	held := make([]*pgxpool.Conn, 0, conns)
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	for range conns {
		c, err := p.Acquire(ctx)
		if err != nil {
			p.Close()
			return nil, err
		}
		held = append(held, c)
	}
	return p, nil
}

// client submits applications through the public API.
type client struct {
	http *http.Client
	base string
	run  string // makes idempotency keys unique to this run
	// tokens are the applicants' access tokens, by IIN: each applies for
	// themselves.
	tokens map[string]string
}

func newClient(base string, idle int, run string) *client {
	tr := &http.Transport{
		Proxy:               nil, // loopback: never through a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle, // the default, 2, would reconnect for most requests
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &client{http: &http.Client{Transport: tr, Timeout: time.Minute}, base: base, run: run}
}

// citizenTokens issues an access token to every applicant of the run, as
// their sign-in would: the API takes applications only from the applicant.
func citizenTokens(ctx context.Context, b *platform, out io.Writer) (map[string]string, error) {
	fmt.Fprintf(out, "bench: issuing access tokens to %d applicants...\n", len(b.iins))
	tokens := make(map[string]string, len(b.iins))
	for _, n := range b.iins {
		tok, _, err := b.Tokens.Issue(ctx, identity.Principal{Kind: identity.Citizen, Subject: n.String()}, 2*time.Hour, "bench")
		if err != nil {
			return nil, fmt.Errorf("issue a token: %w", err)
		}
		tokens[n.String()] = tok
	}
	return tokens, nil
}

// submit posts one application and returns its id.
func (c *client) submit(ctx context.Context, applicant, key string) (string, error) {
	body, err := json.Marshal(map[string]any{"service": processService, "inputs": map[string]any{"iin": applicant}})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/applications", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", c.run+"-"+key)
	if tok, ok := c.tokens[applicant]; ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body) // read to the end: the connection is reused
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Idempotent-Replayed") != "" {
		return "", fmt.Errorf("POST /api/v1/applications: %s: %.300s", resp.Status, answer)
	}
	var app struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(answer, &app); err != nil || app.ID == "" {
		return "", fmt.Errorf("POST /api/v1/applications: no application id in %.300s", answer)
	}
	return app.ID, nil
}

// paced submits n applications at rate per second, each on its own
// goroutine at its scheduled time (an open loop: a slow answer does not delay
// the next submission). It returns the ids and each answer's time in ms.
func (c *client) paced(ctx context.Context, rate, n int, iins []iin.IIN) ([]string, []float64, error) {
	ids := make([]string, n)
	answerMS := make([]float64, n)
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	timer := time.NewTimer(0)
	defer timer.Stop()
	start := time.Now()
	for i := 0; i < n && failed.Load() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				wg.Wait()
				return nil, nil, ctx.Err()
			case <-timer.C:
			}
		}
		wg.Go(func() {
			t := time.Now()
			id, err := c.submit(ctx, iins[i%len(iins)].String(), fmt.Sprintf("c-%d", i))
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
			ids[i], answerMS[i] = id, ms(time.Since(t))
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return nil, nil, *err
	}
	return ids, answerMS, nil
}

// monitor watches the database during a phase. Its own queries are counted
// so that they can be taken out of the commit count.
type monitor struct {
	pool    *pgxpool.Pool
	out     io.Writer
	queries atomic.Int64 // single-statement transactions this monitor ran
}

type stats struct {
	commits  int64 // pg_stat_database.xact_commit
	walBytes int64 // WAL position
	queries  int64 // the monitor's own transactions before this sample
}

// statsSettle is how long to wait before reading pg_stat_database: backends
// report their counts when idle, at most once a second.
const statsSettle = 1500 * time.Millisecond

// sample reads the commit count and WAL position once the statistics have
// settled.
func (m *monitor) sample(ctx context.Context) (stats, error) {
	select {
	case <-ctx.Done():
		return stats{}, ctx.Err()
	case <-time.After(statsSettle):
	}
	s := stats{queries: m.queries.Load()}
	m.queries.Add(1)
	err := m.pool.QueryRow(ctx, `SELECT xact_commit, (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint
		FROM pg_stat_database WHERE datname = current_database()`).Scan(&s.commits, &s.walBytes)
	return s, err
}

// ownTx is how many of the commits between two samples were the monitor's.
func (m *monitor) ownTx(before, after stats) int64 { return after.queries - before.queries }

func (m *monitor) count(ctx context.Context, sql string, args ...any) (int64, error) {
	m.queries.Add(1)
	var n int64
	err := m.pool.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

// waitDone waits until every application in ids is decided, reporting
// progress every two seconds.
func (m *monitor) waitDone(ctx context.Context, ids []string) error {
	pending := slices.Clone(ids)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	lastReport := time.Now()
	for {
		// Only the pending ones are looked at, so polling costs less as
		// the phase drains.
		m.queries.Add(1)
		rows, err := m.pool.Query(ctx, `SELECT id::text FROM application WHERE id = ANY($1::uuid[]) AND decided_at IS NULL`, pending)
		if err != nil {
			return err
		}
		if pending, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Since(lastReport) >= 2*time.Second {
			fmt.Fprintf(m.out, "bench: %d of %d done\n", len(ids)-len(pending), len(ids))
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// phase is the submit-to-done latencies of a set of applications, sorted, and
// the window from the first submission to the last decision.
type phase struct {
	ms     []float64
	window time.Duration
}

func (p phase) p(q float64) float64 { return percentile(p.ms, q) }

func (m *monitor) latencies(ctx context.Context, ids []string) (phase, error) {
	m.queries.Add(2)
	var first, last time.Time
	if err := m.pool.QueryRow(ctx, `SELECT min(submitted_at), max(decided_at) FROM application WHERE id = ANY($1::uuid[])`, ids).
		Scan(&first, &last); err != nil {
		return phase{}, err
	}
	rows, err := m.pool.Query(ctx, `SELECT extract(epoch FROM decided_at - submitted_at)::float8 * 1000
		FROM application WHERE id = ANY($1::uuid[]) ORDER BY 1`, ids)
	if err != nil {
		return phase{}, err
	}
	lat, err := pgx.CollectRows(rows, pgx.RowTo[float64])
	if err != nil {
		return phase{}, err
	}
	return phase{ms: lat, window: last.Sub(first)}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
