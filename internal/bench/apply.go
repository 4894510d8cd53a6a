// Package bench holds the `ortaq bench ...` workloads. Each one measures the
// platform and, in the same run on the same database, a baseline that does
// the least work the same job needs on raw PostgreSQL, and reports the ratio:
// shared machines are noisy, ratios less so. Benchmarks keep production
// durability (fsync and synchronous commit on). Each ends with one summary
// line of key=value pairs.
//
// May import: internal/app, internal/demo, internal/iin, internal/pg,
// internal/process, internal/audit, internal/clock, internal/web,
// internal/exchange, internal/exchange/catalogue, internal/exchange/gateway,
// internal/exchange/xroad, internal/identity, internal/registry,
// internal/consent, internal/outbox.
package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/process"
)

// ApplyConfig configures the apply benchmark.
type ApplyConfig struct {
	N           int    // applications to submit
	Concurrency int    // concurrent submitters
	Workers     int    // engine workers
	DatabaseURL string // empty: a fresh embedded cluster in a temporary directory
	PGBin       string
}

// Apply measures applications from submission to signed document: throughput
// and the delivery time (submitted to decided), against a baseline of one
// durable transaction per application that reads the person and writes a row.
func Apply(ctx context.Context, cfg ApplyConfig, out io.Writer) error {
	if cfg.N < 1 || cfg.Concurrency < 1 || cfg.Workers < 1 {
		return fmt.Errorf("--n, --concurrency and --workers must be at least 1")
	}
	b, err := startPlatform(ctx, cfg.DatabaseURL, cfg.PGBin, cfg.Workers, max(cfg.N, 1000), out)
	if err != nil {
		return err
	}
	defer b.close()
	p, db, iins := b.Platform, b.db, b.iins

	fmt.Fprintf(out, "bench: baseline, %d raw transactions (read the person, write a row) with %d clients...\n", cfg.N, cfg.Concurrency)
	baseline, err := rawBaseline(ctx, db.Pool, iins, cfg.N, cfg.Concurrency)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	fmt.Fprintf(out, "bench: baseline %.0f tx/s\n", baseline)

	if err := p.Engine.Start(ctx); err != nil {
		return err
	}
	defer p.Engine.Stop(context.Background())
	fmt.Fprintf(out, "bench: platform, %d applications with %d submitters and %d workers...\n", cfg.N, cfg.Concurrency, cfg.Workers)
	start := time.Now()
	err = concurrently(cfg.N, cfg.Concurrency, func(i int) error {
		_, _, err := p.Engine.Submit(ctx, process.SubmitRequest{ServiceID: "address-certificate",
			Inputs: map[string]any{"iin": iins[i%len(iins)].String()}, IdempotencyKey: fmt.Sprintf("bench-%d", i)})
		return err
	})
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	submitted := time.Since(start)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lastReport := time.Now()
	for {
		var pending int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM application WHERE status = 'submitted'`).Scan(&pending); err != nil {
			return err
		}
		if pending == 0 {
			break
		}
		if time.Since(lastReport) > 2*time.Second {
			fmt.Fprintf(out, "bench: %d of %d decided\n", cfg.N-pending, cfg.N)
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	var firstSubmit, lastDecision time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT min(submitted_at), max(decided_at) FROM application`).Scan(&firstSubmit, &lastDecision); err != nil {
		return err
	}
	rows, err := db.Pool.Query(ctx, `SELECT extract(epoch FROM decided_at - submitted_at) * 1000 FROM application`)
	if err != nil {
		return err
	}
	delivery, err := pgx.CollectRows(rows, pgx.RowTo[float64])
	if err != nil {
		return err
	}
	slices.Sort(delivery)
	var docs, completed int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM document`).Scan(&docs)
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM application WHERE status = 'completed'`).Scan(&completed)
	if docs != completed || completed != cfg.N {
		return fmt.Errorf("integrity: %d applications completed, %d documents; want %d and %d", completed, docs, cfg.N, cfg.N)
	}
	elapsed := lastDecision.Sub(firstSubmit).Seconds()
	rate := float64(cfg.N) / elapsed
	fmt.Fprintf(out, "bench=apply n=%d concurrency=%d workers=%d submit_per_s=%.0f apps_per_s=%.0f baseline_tx_per_s=%.0f ratio=%.3f delivery_p50_ms=%.1f delivery_p95_ms=%.1f delivery_p99_ms=%.1f delivery_max_ms=%.1f documents=%d\n",
		cfg.N, cfg.Concurrency, cfg.Workers, float64(cfg.N)/submitted.Seconds(), rate, baseline, rate/baseline,
		percentile(delivery, 0.50), percentile(delivery, 0.95), percentile(delivery, 0.99), delivery[len(delivery)-1], docs)
	return nil
}

// rawBaseline runs n durable transactions that read a person and write a row:
// the least any platform must do per application.
func rawBaseline(ctx context.Context, pool *pgxpool.Pool, iins []iin.IIN, n, concurrency int) (float64, error) {
	// A real table, not a temporary one: temporary tables skip the WAL.
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_baseline (id bigint PRIMARY KEY, iin text NOT NULL, payload jsonb, at timestamptz NOT NULL)`); err != nil {
		return 0, err
	}
	defer pool.Exec(context.Background(), `DROP TABLE IF EXISTS bench_baseline`)
	start := time.Now()
	err := concurrently(n, concurrency, func(i int) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			// The person and their address: the newest versions of their
			// records in the population and addresses registries.
			var person, addr []byte
			if err := tx.QueryRow(ctx, `SELECT
				(SELECT data FROM registry_record_version WHERE registry = 'population' AND key = $1 ORDER BY version DESC LIMIT 1),
				(SELECT data FROM registry_record_version WHERE registry = 'addresses' AND key = $1 ORDER BY version DESC LIMIT 1)`,
				iins[i%len(iins)].String()).Scan(&person, &addr); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO bench_baseline (id, iin, payload, at) VALUES ($1, $2, $3, now())`, i, iins[i%len(iins)].String(), addr)
			return err
		})
	})
	if err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// concurrently calls fn(0) … fn(n-1) from `workers` goroutines and returns
// the first error; after an error no new calls start.
func concurrently(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					failed.Store(true)
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}
