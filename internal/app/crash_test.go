package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
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

	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/identity"
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

// chaosLong switches the chaos test to its long form:
// ORTAQ_CHAOS_LONG=1 go test ./internal/app -run TestKillDuring -timeout 30m
var chaosLong = os.Getenv("ORTAQ_CHAOS_LONG") != ""

// chaosInputs is what application i asks for: the automatic certificate of
// address, the automatic registration as an entrepreneur (which notifies),
// and every tenth a certificate of no criminal record, which an officer
// reviews.
func chaosInputs(i int, who string) (service, body string) {
	switch {
	case i%10 == 9:
		return "criminal-record-certificate", fmt.Sprintf(`{"service":"criminal-record-certificate","inputs":{"iin":%q,"purpose":"employment","name_changed":false}}`, who)
	case i%2 == 1:
		return "individual-entrepreneur-registration", fmt.Sprintf(`{"service":"individual-entrepreneur-registration","inputs":{"iin":%q,"oked":"62011","tax_regime":"simplified_declaration"}}`, who)
	}
	return "address-certificate", fmt.Sprintf(`{"service":"address-certificate","inputs":{"iin":%q}}`, who)
}

// officerLoop works the special-records inbox through the API until stop
// closes, approving every task; requests that meet a killed node fail and
// are tried again on the next round.
func officerLoop(stop <-chan struct{}, url func() string, token string) {
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(method, path, body string) map[string]any {
		req, _ := http.NewRequest(method, url()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := client.Do(req)
		if err != nil {
			return nil
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return out
	}
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		inbox := do("GET", "/api/v1/tasks?limit=20", "")
		tasks, _ := inbox["tasks"].([]any)
		for _, t := range tasks {
			id := str(t.(map[string]any)["id"])
			do("POST", "/api/v1/tasks/"+id+"/claim", "")
			do("POST", "/api/v1/tasks/"+id+"/decision", `{"decision":"approve","comment":"no record"}`)
		}
	}
}

// TestKillDuringProcessingExactlyOneDocument submits hundreds of applications
// of three services (one with an officer's review, worked through the API
// meanwhile) to a real `ortaq serve` process, kills it with SIGKILL several
// times at random moments while it is working, restarts it, and proves that
// every application ends decided with exactly one result document, one
// decision and exactly one notification of each kind.
func TestKillDuringProcessingExactlyOneDocument(t *testing.T) {
	bin := buildBinary(t)
	db := pgtest.New(t)
	n, rounds := 400, 3
	if chaosLong {
		n, rounds = 3000, 10
	}
	// One worker keeps the backlog long enough to kill in the middle of it;
	// short timeouts let the restarted node rescue the killed node's jobs fast.
	flags := []string{"--demo", "--demo-people", "2000", "--workers", "1", "--job-timeout", "1s"}
	srv := startServer(t, bin, db.URL, flags...)
	var current sync.Mutex
	url := func() string { current.Lock(); defer current.Unlock(); return srv.url }

	token, _, err := identity.NewTokens(db.Pool, clock.Real{}).Issue(context.Background(),
		identity.Principal{Kind: identity.Officer, Subject: "gpo-chaos", Agency: "gpo", Roles: []string{"special-records-officer"}}, time.Hour, "chaos test")
	if err != nil {
		t.Fatal(err)
	}
	stopOfficer := make(chan struct{})
	officerDone := make(chan struct{})
	go func() { defer close(officerDone); officerLoop(stopOfficer, url, token) }()
	defer func() {
		select {
		case <-stopOfficer:
		default:
			close(stopOfficer)
		}
		<-officerDone
	}()

	citizens := demo.Population(2000, demo.PopulationSeed)
	// Each applicant applies for themselves, with their own access token.
	tokens := make([]string, min(n, len(citizens)))
	issuer := identity.NewTokens(db.Pool, clock.Real{})
	for i := range tokens {
		tok, _, err := issuer.Issue(context.Background(), identity.Principal{Kind: identity.Citizen, Subject: citizens[i].IIN.String()}, time.Hour, "chaos test")
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = tok
	}
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range jobs {
				_, body := chaosInputs(i, citizens[i%len(citizens)].IIN.String())
				req, _ := http.NewRequest("POST", srv.url+"/api/v1/applications", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", fmt.Sprintf("crash-%d", i))
				req.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
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

	const undecided = `SELECT count(*) FROM application WHERE decided_at IS NULL`
	for round := 1; round <= rounds; round++ {
		// Kill at a random moment once the node is visibly working.
		before := count(t, db.Pool, `SELECT count(*) FROM application WHERE decided_at IS NOT NULL`)
		progress := 2 + rand.IntN(max(2, n/(4*rounds)))
		tick := time.NewTicker(2 * time.Millisecond)
		deadline := time.After(60 * time.Second)
	wait:
		for {
			select {
			case <-tick.C:
				if count(t, db.Pool, `SELECT count(*) FROM application WHERE decided_at IS NOT NULL`) >= before+progress {
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
		pending := count(t, db.Pool, undecided)
		t.Logf("round %d: killed after %d more decisions, with %d of %d applications undecided", round, progress, pending, n)
		if pending == 0 {
			t.Fatalf("round %d: the kill came after all work was done; it proves nothing", round)
		}
		next := startServer(t, bin, db.URL, flags...)
		current.Lock()
		srv = next
		current.Unlock()
	}

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(3 * time.Minute)
	for count(t, db.Pool, undecided) > 0 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("applications still undecided 3 minutes after the last restart; server log:\n%s", srv.logs)
		}
	}
	close(stopOfficer)
	<-officerDone

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
	decisions := count(t, db.Pool, `SELECT count(*) FROM application, jsonb_array_elements(timeline) s WHERE s->>'step' IN ('completed', 'refused', 'failed')`)
	multi := count(t, db.Pool, `SELECT count(*) FROM (SELECT a.id FROM application a, jsonb_array_elements(a.timeline) s WHERE s->>'step' IN ('completed', 'refused') GROUP BY 1 HAVING count(*) > 1) x`)
	unfinishedJobs := count(t, db.Pool, `SELECT count(*) FROM process_run`)
	// Every kind of event and notification at most once per application
	// (and task), and the notifications exactly for the completed
	// applications of the services that notify.
	repeated := count(t, db.Pool, `SELECT count(*) FROM (SELECT topic, key FROM outbox_event
		WHERE topic IN ('process.application.submitted', 'process.application.decided', 'notify.message.requested', 'process.task.opened', 'process.task.decided')
		GROUP BY 1, 2 HAVING count(*) > 1) x`)
	notices := count(t, db.Pool, `SELECT count(*) FROM outbox_event WHERE topic = 'notify.message.requested'`)
	notifying := count(t, db.Pool, `SELECT count(*) FROM application WHERE status = 'completed' AND service_id <> 'address-certificate'`)
	reviewed := count(t, db.Pool, `SELECT count(*) FROM application WHERE service_id = 'criminal-record-certificate' AND status = 'completed'`)
	tasks := count(t, db.Pool, `SELECT count(*) FROM task WHERE status = 'done' AND decision = 'approve'`)
	t.Logf("%d applications: %d completed (%d after an officer's review), %d refused; %d documents, %d notifications; %d kills",
		apps, completed, reviewed, refused, docs, notices, rounds)
	if apps != n || completed+refused != n {
		t.Errorf("applications %d (completed %d + refused %d); want %d, all decided", apps, completed, refused, n)
	}
	if docs != completed || matched != completed {
		t.Errorf("documents %d, matched to their application %d; want exactly one per completed application (%d)", docs, matched, completed)
	}
	if decisions != n || multi != 0 {
		t.Errorf("decision steps %d (applications decided more than once: %d); want %d and 0", decisions, multi, n)
	}
	if repeated != 0 || notices != notifying {
		t.Errorf("events repeated for %d keys; %d notifications for %d notifying applications", repeated, notices, notifying)
	}
	if reviewed == 0 || tasks != reviewed {
		t.Errorf("%d reviewed applications completed, %d approved tasks; want the same, more than 0", reviewed, tasks)
	}
	if unfinishedJobs != 0 {
		t.Errorf("%d jobs not completed", unfinishedJobs)
	}
}
