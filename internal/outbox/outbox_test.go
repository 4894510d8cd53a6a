package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, outbox.Schema()) }

var at = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func emit(t *testing.T, ctx context.Context, tx pgx.Tx, topic, key string) int64 {
	t.Helper()
	if err := outbox.Emit(ctx, tx, at, topic, key, map[string]string{"key": key}); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := tx.QueryRow(ctx, `SELECT max(id) FROM outbox_event WHERE key = $1`, key).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func begin(t *testing.T, ctx context.Context, pool *pgxpool.Pool) pgx.Tx {
	t.Helper()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	return tx
}

// wait consumes until want keys came (transactions of parallel tests in
// other databases of the cluster hold events back for a moment: the horizon
// is the cluster's), then until nothing is left.
func wait(t *testing.T, ctx context.Context, pool *pgxpool.Pool, consumer string, topics []string, limit, want int) []string {
	t.Helper()
	var keys []string
	for deadline := time.Now().Add(20 * time.Second); len(keys) < want && time.Now().Before(deadline); {
		keys = append(keys, collect(t, ctx, pool, consumer, topics, limit)...)
		if len(keys) < want {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return append(keys, collect(t, ctx, pool, consumer, topics, limit)...)
}

// collect consumes until nothing is left and returns the keys delivered.
func collect(t *testing.T, ctx context.Context, pool *pgxpool.Pool, consumer string, topics []string, limit int) []string {
	t.Helper()
	var keys []string
	for {
		n, err := outbox.Consume(ctx, pool, consumer, topics, limit, func(ctx context.Context, tx pgx.Tx, evs []outbox.Event) error {
			for _, e := range evs {
				keys = append(keys, e.Key)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return keys
		}
	}
}

// TestConsumeLateCommit: an event whose transaction took the lower id and
// committed after a higher one is neither skipped nor delivered twice, and
// events wait while an older transaction is still open.
func TestConsumeLateCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t).Pool

	early := begin(t, ctx, pool)
	lowID := emit(t, ctx, early, "test.happened", "early")
	late := begin(t, ctx, pool)
	highID := emit(t, ctx, late, "test.happened", "late")
	if lowID >= highID {
		t.Fatalf("ids %d, %d: want the early transaction to take the lower id", lowID, highID)
	}
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// An id-order reader now sees the higher id alone: it would move past
	// the lower one for ever.
	if got := collect(t, ctx, pool, "c", []string{"test.happened"}, 10); len(got) != 0 {
		t.Fatalf("delivered %v while an older transaction is open; want nothing yet", got)
	}
	if err := early.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := wait(t, ctx, pool, "c", []string{"test.happened"}, 10, 2); !slices.Equal(got, []string{"early", "late"}) {
		t.Fatalf("delivered %v; want [early late]", got)
	}
	if got := collect(t, ctx, pool, "c", []string{"test.happened"}, 10); len(got) != 0 {
		t.Fatalf("delivered again: %v", got)
	}

	// The other way round: the transaction that started first (its xid
	// taken) writes the higher id and commits last; the order is by
	// transaction, and nothing waits for ever.
	first := begin(t, ctx, pool)
	if _, err := first.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	second := begin(t, ctx, pool)
	emit(t, ctx, second, "test.happened", "second")
	emit(t, ctx, first, "test.happened", "first")
	if err := second.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, ctx, pool, "c", []string{"test.happened"}, 10); len(got) != 0 {
		t.Fatalf("delivered %v before the first transaction ended", got)
	}
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := wait(t, ctx, pool, "c", []string{"test.happened"}, 1, 2); !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("delivered %v; want [first second] in transaction order", got)
	}
}

// TestConsumeTopicsAndRollback: other topics are passed over, a rolled-back
// handler leaves the cursor where it was, consumers are independent.
func TestConsumeTopicsAndRollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t).Pool
	tx := begin(t, ctx, pool)
	emit(t, ctx, tx, "test.wanted", "a")
	emit(t, ctx, tx, "test.other", "b")
	emit(t, ctx, tx, "test.wanted", "c")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	var err error
	for deadline := time.Now().Add(20 * time.Second); err == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		_, err = outbox.Consume(ctx, pool, "c", []string{"test.wanted"}, 10, func(context.Context, pgx.Tx, []outbox.Event) error { return boom })
	}
	if !errors.Is(err, boom) {
		t.Fatalf("Consume = %v; want the handler's error", err)
	}
	if got := wait(t, ctx, pool, "c", []string{"test.wanted"}, 10, 2); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after a failed batch: %v; want [a c]", got)
	}
	if got := wait(t, ctx, pool, "all", nil, 2, 3); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("consumer of every topic: %v; want [a b c]", got)
	}
	if _, err := outbox.Consume(ctx, pool, "c", nil, 0, nil); err == nil {
		t.Errorf("Consume with limit 0: no error")
	}
}

// TestConsumeSkipsLockedCursor: while one node holds the cursor, another
// returns at once with nothing instead of waiting.
func TestConsumeSkipsLockedCursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t).Pool
	tx := begin(t, ctx, pool)
	emit(t, ctx, tx, "test.happened", "a")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := wait(t, ctx, pool, "c", nil, 10, 1); len(got) != 1 {
		t.Fatalf("delivered %v", got)
	}
	holder := begin(t, ctx, pool)
	if _, err := holder.Exec(ctx, `SELECT 1 FROM outbox_consumer WHERE name = 'c' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := outbox.Consume(short, pool, "c", nil, 10, func(context.Context, pgx.Tx, []outbox.Event) error {
		t.Error("handler called while another holds the cursor")
		return nil
	})
	if n != 0 || err != nil {
		t.Fatalf("Consume with a locked cursor = %d, %v; want 0, nil at once", n, err)
	}
}

// TestConsumeConcurrently: writers commit in random order while two
// consumers of the same name run; every event is processed exactly once (a
// second processing would break the primary key of the handler's table).
func TestConsumeConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t).Pool
	if _, err := pool.Exec(ctx, `CREATE TABLE consumed (event_id bigint PRIMARY KEY, node int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	const writers, each = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					if err := outbox.Emit(ctx, tx, at, "test.happened", fmt.Sprintf("w%d-%d", w, i), nil); err != nil {
						return err
					}
					time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	var consumers sync.WaitGroup
	for node := range 2 {
		consumers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				n, err := outbox.Consume(ctx, pool, "shared", []string{"test.happened"}, 7, func(ctx context.Context, tx pgx.Tx, evs []outbox.Event) error {
					for _, e := range evs {
						if _, err := tx.Exec(ctx, `INSERT INTO consumed VALUES ($1, $2)`, e.ID, node); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				if n == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	var n int
	for time.Now().Before(deadline) {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM consumed`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == writers*each {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(done)
	consumers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var missing int
	pool.QueryRow(ctx, `SELECT count(*) FROM outbox_event e WHERE NOT EXISTS (SELECT 1 FROM consumed c WHERE c.event_id = e.id)`).Scan(&missing)
	if n != writers*each || missing != 0 {
		t.Fatalf("consumed %d of %d events, %d missing", n, writers*each, missing)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []outbox.Cursor{{}, {Tx: 1, ID: 2}, {Tx: 18446744073709551615, ID: 9223372036854775807}} {
		got, err := outbox.ParseCursor(c.String())
		if err != nil || got != c {
			t.Errorf("%v: %v %v", c, got, err)
		}
	}
	if c, err := outbox.ParseCursor(""); err != nil || c != (outbox.Cursor{}) {
		t.Errorf("empty: %v %v", c, err)
	}
	for _, bad := range []string{"x", "1", "1.", ".1", "1.-2", "-1.2", "1.2.3", "1.2 "} {
		if _, err := outbox.ParseCursor(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
