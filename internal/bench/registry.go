package bench

import (
	"context"
	"encoding/csv"
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
	"github.com/ortaq/ortaq/internal/registry"
)

// RegistryConfig configures the registry benchmark.
type RegistryConfig struct {
	People      int           // persons imported into the population registry
	Reads       int           // point reads of the throughput phase
	Concurrency int           // HTTP clients of the throughput phase
	Rate        int           // point reads per second of the latency phase
	Duration    time.Duration // length of the latency phase
	DatabaseURL string
	PGBin       string
}

// Registry benchmarks the registries: a bulk import of People persons into
// the population registry (CSV streamed through the row-by-row validation,
// COPY, history and change events) against a raw COPY of the same records
// into a bare table; then point reads by key through the HTTP API with
// their audit event, against the same read by a raw pgx query, at a fixed
// rate (open loop) and closed-loop for throughput.
func Registry(ctx context.Context, cfg RegistryConfig, out io.Writer) error {
	if cfg.People < 1 || cfg.Reads < 1 || cfg.Concurrency < 1 || cfg.Rate < 1 || cfg.Duration <= 0 {
		return errors.New("--people, --reads, --concurrency and --rate must be at least 1, --duration positive")
	}
	// No demo citizens: the benchmark imports its own persons into the
	// empty population registry.
	b, err := startPlatform(ctx, cfg.DatabaseURL, cfg.PGBin, 0, 0, out)
	if err != nil {
		return err
	}
	defer b.close()
	pool := b.pool()
	if err := b.InstallRegistries(ctx); err != nil {
		return err
	}
	ids := benchIINs(cfg.People)

	// Import through the registry.
	fmt.Fprintf(out, "bench: importing %d persons into the population registry (CSV, validated row by row)...\n", cfg.People)
	d, _ := b.Registries.Definition("population")
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writePeopleCSV(pw, ids)) }()
	rows, err := registry.NewRowReader(pr, registry.FormatCSV, d)
	if err != nil {
		return err
	}
	start := time.Now()
	rep, err := b.Registries.Import(ctx, "population", rows, registry.ImportOptions{Actor: "system:bench", Basis: "benchmark"})
	if err != nil {
		return err
	}
	if rep.Rejected > 0 {
		return fmt.Errorf("import rejected %d rows: %+v", rep.Rejected, rep.Rejections[0])
	}
	importDur := time.Since(start)
	probe := ids[len(ids)/2]
	var found bool
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) (err error) {
		_, found, err = b.Registries.Get(ctx, tx, "population", probe, nil, registry.Access{Actor: "system:bench", Purpose: "benchmark"})
		return err
	}); err != nil || !found {
		return fmt.Errorf("the imported person %s cannot be read: %v", probe, err)
	}
	queryable := time.Since(start)
	importRate := float64(cfg.People) / importDur.Seconds()
	fmt.Fprintf(out, "bench: import %.0f records/s (%s), queryable after %s\n", importRate, importDur.Round(time.Millisecond), queryable.Round(time.Millisecond))

	// Baseline: a raw COPY of the same records into a bare table with a
	// primary key.
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_registry_raw (key text PRIMARY KEY, data jsonb NOT NULL)`); err != nil {
		return err
	}
	start = time.Now()
	if err := rawCopy(ctx, pool, ids); err != nil {
		return fmt.Errorf("raw copy: %w", err)
	}
	copyRate := float64(cfg.People) / time.Since(start).Seconds()
	fmt.Fprintf(out, "bench: raw COPY %.0f records/s: the import runs at %.2f of it\n", copyRate, importRate/copyRate)

	// The two imports left about two million new rows: what an operator
	// does after a bulk load (and autovacuum would do, in the middle of the
	// read phases) is done now, so that the read phases measure reads, not
	// the vacuum and write-back of what the imports wrote.
	start = time.Now()
	for _, stmt := range []string{`VACUUM (ANALYZE) registry_record_version`, `VACUUM (ANALYZE) bench_registry_raw`, `CHECKPOINT`} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	fmt.Fprintf(out, "bench: vacuum, analyze and checkpoint after the imports: %s\n", time.Since(start).Round(time.Millisecond))

	// Point reads through the API, as an officer of a reading agency.
	token, _, err := b.Tokens.Issue(ctx, identity.Principal{Kind: identity.Officer, Subject: "bench-1", Agency: "mlsp", Roles: []string{"benefits-officer"}},
		time.Hour, "ortaq bench registry")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Web.Serve(serveCtx, ln) }()
	defer func() { stopServing(); <-served }()
	c := newClient("http://"+ln.Addr().String(), max(2*cfg.Concurrency, 256), "")
	defer c.http.CloseIdleConnections()
	base := "http://" + ln.Addr().String() + "/api/v1/registries/population/records/"
	apiRead := func(ctx context.Context, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+ids[(i*7919)%len(ids)]+"?purpose=benchmark", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.http.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET record: %s %.200s", resp.Status, body)
		}
		return nil
	}
	readPool, err := dedicatedPool(ctx, pool, cfg.Concurrency)
	if err != nil {
		return err
	}
	defer readPool.Close()
	rawRead := func(ctx context.Context, i int) error {
		var data []byte
		return readPool.QueryRow(ctx, `SELECT data FROM registry_record_version WHERE registry = 'population' AND key = $1 ORDER BY version DESC LIMIT 1`, ids[(i*7919)%len(ids)]).Scan(&data)
	}
	auditBefore, err := countAudit(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "bench: throughput, %d point reads from %d clients (API with audit, then raw pgx)...\n", cfg.Reads, cfg.Concurrency)
	apiTP, err := closedLoop(ctx, cfg.Reads, cfg.Concurrency, apiRead)
	if err != nil {
		return err
	}
	rawTP, err := closedLoop(ctx, cfg.Reads, cfg.Concurrency, rawRead)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "bench: throughput: API %.0f reads/s, raw %.0f reads/s\n", apiTP, rawTP)
	n := max(1, int(float64(cfg.Rate)*cfg.Duration.Seconds()))
	fmt.Fprintf(out, "bench: latency, %d point reads/s for %s (open loop)...\n", cfg.Rate, cfg.Duration)
	apiMS, err := openLoop(ctx, cfg.Rate, n, apiRead)
	if err != nil {
		return err
	}
	rawMS, err := openLoop(ctx, cfg.Rate, n, rawRead)
	if err != nil {
		return err
	}
	auditAfter, err := countAudit(ctx, pool)
	if err != nil {
		return err
	}
	if want := int64(cfg.Reads + n); auditAfter-auditBefore != want {
		return fmt.Errorf("integrity: %d audit events for %d API reads", auditAfter-auditBefore, want)
	}
	fmt.Fprintf(out, "bench: latency: API p50 %.2f ms p99 %.2f ms; raw p50 %.2f ms p99 %.2f ms; %d reads audited\n",
		percentile(apiMS, 0.5), percentile(apiMS, 0.99), percentile(rawMS, 0.5), percentile(rawMS, 0.99), auditAfter-auditBefore)
	fmt.Fprintf(out, "bench=registry people=%d import_per_s=%.0f raw_copy_per_s=%.0f import_ratio=%.3f import_s=%.2f queryable_s=%.2f "+
		"reads=%d concurrency=%d api_reads_per_s=%.0f raw_reads_per_s=%.0f rate=%d api_p50_ms=%.2f api_p99_ms=%.2f raw_p50_ms=%.2f raw_p99_ms=%.2f audited=%d\n",
		cfg.People, importRate, copyRate, importRate/copyRate, importDur.Seconds(), queryable.Seconds(),
		cfg.Reads, cfg.Concurrency, apiTP, rawTP, cfg.Rate, percentile(apiMS, 0.5), percentile(apiMS, 0.99),
		percentile(rawMS, 0.5), percentile(rawMS, 0.99), auditAfter-auditBefore)
	return nil
}

func countAudit(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = 'registry.population.read'`).Scan(&n)
	return n, err
}

// benchIINs returns n distinct valid synthetic IINs (serials 9000-9999 on
// consecutive birth dates from 1950).
func benchIINs(n int) []string {
	out := make([]string, 0, n)
	day := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)
	for serial := 9000; len(out) < n; serial++ {
		if serial > 9999 {
			serial, day = 9000, day.AddDate(0, 0, 1)
		}
		sex := iin.SexMale
		if serial%2 == 1 {
			sex = iin.SexFemale
		}
		if id, err := iin.New(day, sex, serial); err == nil {
			out = append(out, id.String())
		}
	}
	return out
}

var benchNames = [][3]string{{"Сейітов", "Асан", "Болатұлы"}, {"Ахметова", "Айгүл", "Серікқызы"}, {"Иванов", "Сергей", "Петрович"}, {"Нұрланова", "Дана", ""}}

func benchPerson(i int, id string) (last, first, patronymic, birth, sex string) {
	n := benchNames[i%len(benchNames)]
	p, _ := iin.Parse(id)
	bd, _ := p.BirthDate()
	return n[0], n[1], n[2], bd.Format(time.DateOnly), p.Sex().String()
}

func writePeopleCSV(w io.Writer, ids []string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"iin", "last_name", "first_name", "patronymic", "birth_date", "sex", "citizenship", "address_kato"}); err != nil {
		return err
	}
	for i, id := range ids {
		last, first, pat, birth, sex := benchPerson(i, id)
		if err := cw.Write([]string{id, last, first, pat, birth, sex, "KZ", "711110000"}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// rawCopy copies the same records, as JSON built in Go, into the bare
// table, in one COPY.
func rawCopy(ctx context.Context, pool *pgxpool.Pool, ids []string) error {
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"bench_registry_raw"}, []string{"key", "data"},
		pgx.CopyFromFunc(func() func() ([]any, error) {
			i := -1
			return func() ([]any, error) {
				i++
				if i >= len(ids) {
					return nil, nil
				}
				last, first, pat, birth, sex := benchPerson(i, ids[i])
				b, err := json.Marshal(map[string]any{"iin": ids[i], "last_name": last, "first_name": first, "patronymic": pat,
					"birth_date": birth, "sex": sex, "citizenship": "KZ", "address_kato": "711110000"})
				return []any{ids[i], b}, err
			}
		}()))
	return err
}

// closedLoop runs n calls from c workers and returns calls per second.
func closedLoop(ctx context.Context, n, c int, call func(context.Context, int) error) (float64, error) {
	start := time.Now()
	err := concurrently(n, c, func(i int) error { return call(ctx, i) })
	return float64(n) / time.Since(start).Seconds(), err
}

// openLoop starts n calls at rate per second, each at its scheduled time,
// and returns their latencies in ms, sorted.
func openLoop(ctx context.Context, rate, n int, call func(context.Context, int) error) ([]float64, error) {
	lat := make([]float64, n)
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	start := time.Now()
	for i := 0; i < n && failed.Load() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
		wg.Go(func() {
			t := time.Now()
			if err := call(ctx, i); err != nil {
				failed.CompareAndSwap(nil, &err)
			}
			lat[i] = ms(time.Since(t))
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return nil, *err
	}
	slices.Sort(lat)
	return lat, nil
}
