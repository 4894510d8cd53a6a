package app_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/pgtest"
)

// buildBinary compiles the ortaq command once for the crash tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ortaq")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ortaq/ortaq/cmd/ortaq")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var upLine = regexp.MustCompile(`Ortaq is up in \S+: (http://\S+)`)

type server struct {
	cmd  *exec.Cmd
	url  string
	logs *strings.Builder
}

// startServer runs `ortaq serve` on the test's database and waits for its URL.
func startServer(t *testing.T, bin, dbURL string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--database-url", dbURL, "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := upLine.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	select {
	case u := <-urls:
		return &server{cmd: cmd, url: u, logs: logs}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("ortaq serve did not come up in 60s; stderr:\n%s", logs.String())
		return nil
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func count(t *testing.T, pool *pgxpool.Pool, query string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestKillDuringProcessingExactlyOneDocument submits hundreds of applications
// to a real `ortaq serve` process, kills it with SIGKILL twice while it is
// working, restarts it, and proves that every application ends decided with
// exactly one document per completed application.
func TestKillDuringProcessingExactlyOneDocument(t *testing.T) {
	bin := buildBinary(t)
	db := pgtest.New(t)
	// One worker keeps the backlog long enough to kill in the middle of it;
	// short timeouts let the restarted node rescue the killed node's jobs fast.
	flags := []string{"--demo", "--demo-people", "2000", "--workers", "1", "--job-timeout", "1s", "--rescue-after", "2s"}
	srv := startServer(t, bin, db.URL, flags...)

	citizens := demo.Population(2000, demo.PopulationSeed)
	const n = 400
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range jobs {
				body := fmt.Sprintf(`{"service":"address-certificate","inputs":{"iin":%q}}`, citizens[i].IIN)
				req, _ := http.NewRequest("POST", srv.url+"/api/v1/applications", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", fmt.Sprintf("crash-%d", i))
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("submit %d: %v", i, err)
					continue
				}
				res.Body.Close()
				if res.StatusCode != http.StatusAccepted {
					t.Errorf("submit %d: status %d", i, res.StatusCode)
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if t.Failed() {
		t.Fatalf("submissions failed; server log:\n%s", srv.logs)
	}

	for round := 1; round <= 2; round++ {
		// Kill once the node is visibly working: some decided, many not.
		before := count(t, db.Pool, `SELECT count(*) FROM application WHERE status <> 'submitted'`)
		tick := time.NewTicker(2 * time.Millisecond)
		deadline := time.After(60 * time.Second)
	wait:
		for {
			select {
			case <-tick.C:
				if count(t, db.Pool, `SELECT count(*) FROM application WHERE status <> 'submitted'`) >= before+10 {
					break wait
				}
			case <-deadline:
				t.Fatalf("round %d: no progress in 60s; server log:\n%s", round, srv.logs)
			}
		}
		tick.Stop()
		if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		srv.cmd.Wait()
		pending := count(t, db.Pool, `SELECT count(*) FROM application WHERE status = 'submitted'`)
		t.Logf("round %d: killed with %d of %d applications still pending", round, pending, n)
		if pending == 0 {
			t.Fatalf("round %d: the kill came after all work was done; it proves nothing", round)
		}
		srv = startServer(t, bin, db.URL, flags...)
	}

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(3 * time.Minute)
	for count(t, db.Pool, `SELECT count(*) FROM application WHERE status = 'submitted'`) > 0 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("applications still pending 3 minutes after the last restart; server log:\n%s", srv.logs)
		}
	}

	// Graceful stop of the last node.
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.cmd.Wait(); err != nil {
		t.Errorf("ortaq serve did not exit cleanly on SIGTERM: %v\n%s", err, srv.logs)
	}

	apps := count(t, db.Pool, `SELECT count(*) FROM application`)
	completed := count(t, db.Pool, `SELECT count(*) FROM application WHERE status = 'completed'`)
	refused := count(t, db.Pool, `SELECT count(*) FROM application WHERE status = 'refused'`)
	docs := count(t, db.Pool, `SELECT count(*) FROM document`)
	matched := count(t, db.Pool, `SELECT count(*) FROM application a JOIN document d ON d.id = a.document_id AND d.source LIKE 'application:' || a.id || ':%'`)
	decisions := count(t, db.Pool, `SELECT count(*) FROM application_step WHERE step IN ('completed', 'refused', 'failed')`)
	multi := count(t, db.Pool, `SELECT count(*) FROM (SELECT application_id FROM application_step WHERE step IN ('completed', 'refused') GROUP BY 1 HAVING count(*) > 1) x`)
	unfinishedJobs := count(t, db.Pool, `SELECT count(*) FROM river_job WHERE state <> 'completed'`)
	t.Logf("%d applications: %d completed, %d refused; %d documents", apps, completed, refused, docs)
	if apps != n || completed+refused != n {
		t.Errorf("applications %d (completed %d + refused %d); want %d, all decided", apps, completed, refused, n)
	}
	if docs != completed || matched != completed {
		t.Errorf("documents %d, matched to their application %d; want exactly one per completed application (%d)", docs, matched, completed)
	}
	if decisions != n || multi != 0 {
		t.Errorf("decision steps %d (applications decided more than once: %d); want %d and 0", decisions, multi, n)
	}
	if unfinishedJobs != 0 {
		t.Errorf("%d jobs not completed", unfinishedJobs)
	}
}
