package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/pgtest"
)

type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs strings.Builder
	out  chan string
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.Write(b)
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// start runs the binary and returns once a stdout line matches re.
func start(t *testing.T, bin string, re *regexp.Regexp, args ...string) (*proc, []string) {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: make(chan string, 16)}
	p.cmd.Env = append(os.Environ(), "DATABASE_URL=")
	p.cmd.Stderr = p
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop() })
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m:
				default:
				}
			}
		}
	}()
	select {
	case m := <-found:
		return p, m
	case <-time.After(60 * time.Second):
		t.Fatalf("%v did not come up; stderr:\n%s", args, p.stderr())
		return nil, nil
	}
}

func (p *proc) stop() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var (
	serveUp   = regexp.MustCompile(`Ortaq is up in \S+: (http://\S+)`)
	gatewayUp = regexp.MustCompile(`gateway \S+: clients on (http://\S+), peers on (\S+)`)
)

// TestMultiNode runs the centre and three members' gateways as separate
// `ortaq` processes on loopback, with provider services, and proves the
// exchange's promises end to end.
func TestMultiNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts four processes")
	}
	bin := filepath.Join(t.TempDir(), "ortaq")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ortaq/ortaq/cmd/ortaq").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const admin = "multinode-admin-token"
	centre, m := start(t, bin, serveUp, "serve", "--addr", "127.0.0.1:0", "--database-url", pgtest.New(t).URL, "--log-level", "warn", "--admin-token", admin)
	centreURL := m[1]
	api := func(method, path string, body any) map[string]any {
		return adminCall(t, centreURL, admin, method, path, body)
	}
	prov := provider(t)
	for _, code := range []string{"100", "200", "300"} {
		api("POST", "/api/v1/exchange/members", map[string]any{"class": "GOV", "code": code, "name": "Agency " + code})
		api("POST", "/api/v1/exchange/subsystems", map[string]any{"id": "KZ/GOV/" + code + "/sys", "name": "System " + code})
	}
	api("POST", "/api/v1/exchange/services", map[string]any{"id": "KZ/GOV/200/sys/persons", "title": "Persons", "url": prov.URL + "/api"})
	api("POST", "/api/v1/exchange/access", map[string]any{"client": "KZ/GOV/100/sys", "service": "KZ/GOV/200/sys/persons"})
	api("POST", "/api/v1/exchange/access", map[string]any{"client": "KZ/GOV/300/sys", "service": "KZ/GOV/200/sys/persons", "method": "GET", "path": "/public/**"})

	type node struct {
		client, dir, db string
		proc            *proc
	}
	nodes := map[string]*node{}
	for _, code := range []string{"100", "200", "300"} {
		tok := api("POST", "/api/v1/exchange/enrolment-tokens", map[string]any{"member": "KZ/GOV/" + code})["token"].(string)
		n := &node{dir: t.TempDir(), db: pgtest.New(t).URL}
		peer := freeAddr(t)
		if out, err := run(t, bin, "gateway", "enrol", "--centre", centreURL, "--data", n.dir, "--token", tok, "--address", peer); err != nil {
			t.Fatalf("enrol: %v\n%s", err, out)
		}
		var m []string
		n.proc, m = start(t, bin, gatewayUp, "gateway", "serve", "--data", n.dir, "--database-url", n.db, "--centre", centreURL,
			"--client-addr", "127.0.0.1:0", "--peer-addr", peer, "--max-catalogue-age", "6s", "--refresh-every", "300ms", "--seal-every", "500ms", "--log-level", "warn")
		n.client = m[1]
		nodes[code] = n
	}
	a, b, c := nodes["100"], nodes["200"], nodes["300"]

	stock := func(base, client, id, path string) reply {
		t.Helper()
		// A stock X-Road REST request: nothing Ortaq-specific.
		hs := []string{xroad.HeaderClient, client, "Accept", "application/json"}
		if id != "" {
			hs = append(hs, xroad.HeaderID, id)
		}
		return call(t, "GET", base+path, nil, hs...)
	}

	// Gateways started before their peers enrolled learn of them with the
	// next catalogue (every 300 ms here).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r1 := stock(a.client, "KZ/GOV/100/sys", "", "/r1/KZ/GOV/200/sys/persons/warmup")
		r2 := stock(c.client, "KZ/GOV/300/sys", "", "/r1/KZ/GOV/200/sys/persons/public/warmup")
		if r1.status == 200 && r2.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateways not ready: %d %s / %d %s", r1.status, r1.body, r2.status, r2.body)
		}
	}

	t.Run("allowed call end to end", func(t *testing.T) {
		r := stock(a.client, "KZ/GOV/100/sys", "m-1", "/r1/KZ/GOV/200/sys/persons/p/42?full=true")
		var got map[string]any
		json.Unmarshal(r.body, &got)
		if r.status != 200 || got["path"] != "/api/p/42" || got["query"] != "full=true" || r.header.Get(xroad.HeaderRequestHash) == "" {
			t.Fatalf("%d %v %s\nA: %s\nB: %s", r.status, r.header, r.body, a.proc.stderr(), b.proc.stderr())
		}
	})
	t.Run("call without access refused", func(t *testing.T) {
		r := stock(c.client, "KZ/GOV/300/sys", "", "/r1/KZ/GOV/200/sys/persons/private/1")
		if r.status != 403 || r.header.Get(xroad.HeaderError) != xroad.ErrAccessDenied {
			t.Fatalf("%d %v %s", r.status, r.header, r.body)
		}
		if r := stock(c.client, "KZ/GOV/300/sys", "", "/r1/KZ/GOV/200/sys/persons/public/1"); r.status != 200 {
			t.Fatalf("granted path: %d %s", r.status, r.body)
		}
	})
	t.Run("replay refused", func(t *testing.T) {
		if r := stock(a.client, "KZ/GOV/100/sys", "m-replay", "/r1/KZ/GOV/200/sys/persons/p/1"); r.status != 200 {
			t.Fatalf("first: %d %s", r.status, r.body)
		}
		r := stock(a.client, "KZ/GOV/100/sys", "m-replay", "/r1/KZ/GOV/200/sys/persons/p/1")
		if r.status != 409 || r.header.Get(xroad.HeaderError) != xroad.ErrReplay {
			t.Fatalf("replay: %d %v %s", r.status, r.header, r.body)
		}
	})
	t.Run("revoked certificate refused", func(t *testing.T) {
		serial := certSerial(t, filepath.Join(c.dir, "node.crt"))
		api("POST", "/api/v1/exchange/certificates/"+serial+"/revoke", nil)
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := stock(c.client, "KZ/GOV/300/sys", "", "/r1/KZ/GOV/200/sys/persons/public/1")
			if r.status != 200 {
				if r.header.Get(xroad.HeaderError) != xroad.ErrSslAuth {
					t.Fatalf("refused with %d %v %s", r.status, r.header, r.body)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("revoked gateway still served after 5s")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Run("tampered log fails verification", func(t *testing.T) {
		out, err := run(t, bin, "gateway", "log", "verify", "--data", b.dir, "--database-url", b.db, "--log-level", "warn")
		if err != nil || !strings.Contains(out, "ok=true") || strings.Contains(out, "timestamped=0") {
			t.Fatalf("clean log: %v\n%s", err, out)
		}
		archive := filepath.Join(t.TempDir(), "b.log")
		if out, err := run(t, bin, "gateway", "log", "export", "--data", b.dir, "--database-url", b.db, "--out", archive, "--log-level", "warn"); err != nil {
			t.Fatalf("export: %v\n%s", err, out)
		}
		if out, err := run(t, bin, "gateway", "log", "verify", "--data", b.dir, "--archive", archive); err != nil || !strings.Contains(out, "ok=true") {
			t.Fatalf("archive: %v\n%s", err, out)
		}
		pool := openPool(t, b.db)
		if _, err := pool.Exec(context.Background(), `UPDATE gateway_msglog SET path = '/api/p/other' WHERE seq = 1`); err != nil {
			t.Fatal(err)
		}
		out, err = run(t, bin, "gateway", "log", "verify", "--data", b.dir, "--database-url", b.db, "--log-level", "warn")
		if err == nil || !strings.Contains(out, "entry 1: content altered") {
			t.Fatalf("tampered log verified: %v\n%s", err, out)
		}
	})
	t.Run("cached catalogue while the centre is down, refused after the limit", func(t *testing.T) {
		centre.stop()
		if r := stock(a.client, "KZ/GOV/100/sys", "", "/r1/KZ/GOV/200/sys/persons/p/2"); r.status != 200 {
			t.Fatalf("centre down: %d %s", r.status, r.body)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := stock(a.client, "KZ/GOV/100/sys", "", "/r1/KZ/GOV/200/sys/persons/p/2")
			if r.status == 503 && r.header.Get(xroad.HeaderError) == xroad.ErrOutdatedConf {
				break
			}
			if r.status != 200 || time.Now().After(deadline) {
				t.Fatalf("after the limit: %d %v %s", r.status, r.header, r.body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}
