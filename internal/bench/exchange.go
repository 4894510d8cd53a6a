package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/exchange"
	"github.com/ortaq/ortaq/internal/exchange/catalogue"
	"github.com/ortaq/ortaq/internal/exchange/gateway"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/web"
)

// ExchangeConfig configures the exchange benchmark.
type ExchangeConfig struct {
	Concurrency int           // closed-loop clients of the throughput phase (default 32)
	Duration    time.Duration // length of each throughput phase (default 5s)
	Rate        int           // requests/s offered in the latency phase (default 500)
	LatencyFor  time.Duration // length of each latency phase (default 10s)
	PGBin       string        // where initdb and postgres are; empty searches
	// Consent makes the service a personal-data one and every gateway call
	// present a person's consent: each gateway checks it with its replica
	// of the centre's consents and ships the call to the centre's access
	// log; the summary adds the time spent inside the check.
	Consent bool
}

// Exchange measures client → gateway A → gateway B → provider (mutual TLS,
// every message signed and verified, both message logs durable before the
// response is released) against client → provider directly and client → a
// plain httputil reverse proxy → provider, everything on loopback in this
// process, on fresh durable embedded PostgreSQL servers (the centre's and one
// per gateway, as two members' gateways would have).
// It reports the requests/s of each path with Concurrency clients and the
// latency p50/p99 at Rate requests/s, and ends with one key=value line.
func Exchange(ctx context.Context, cfg ExchangeConfig, out io.Writer) (err error) {
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 500
	}
	if cfg.LatencyFor <= 0 {
		cfg.LatencyFor = 10 * time.Second
	}
	log := slog.New(slog.DiscardHandler)
	dir, err := os.MkdirTemp("", "ortaq-bench-exchange-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := pg.FindBinaries(cfg.PGBin)
	if err != nil {
		return err
	}
	// Three database servers, as in production: the centre's and each
	// member's gateway's own. On one server the two gateways' log commits
	// would queue behind one WAL flush.
	fmt.Fprintf(out, "bench: starting three durable embedded PostgreSQL servers (centre, gateway A, gateway B) in %s\n", dir)
	var clusters []*pg.Cluster
	defer func() {
		for _, c := range clusters {
			c.Stop(context.Background())
		}
	}()
	for _, name := range []string{"pg-centre", "pg-gw0", "pg-gw1"} {
		c, err := pg.StartCluster(ctx, pg.ClusterConfig{Dir: filepath.Join(dir, name), BinDir: bin, Durable: true, Logger: log})
		if err != nil {
			return err
		}
		clusters = append(clusters, c)
	}
	cluster := clusters[0]
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	serve := func(h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		closers = append(closers, func() { srv.Close() })
		return "http://" + ln.Addr().String(), nil
	}

	// The centre.
	if err := cluster.EnsureDatabase(ctx, "centre"); err != nil {
		return err
	}
	centreDB, err := pg.Open(ctx, cluster.ConnString("centre"), 8)
	if err != nil {
		return err
	}
	closers = append(closers, centreDB.Close)
	if err := pg.Migrate(ctx, centreDB, []pg.Schema{audit.Schema(), outbox.Schema(), consent.Schema(), exchange.Schema()}, log); err != nil {
		return err
	}
	auth := exchange.New(centreDB, clock.Real{}, "KZ")
	ws := web.New(web.Config{Logger: log})
	// The gateways' system token: a random one this run knows (the
	// platform's token store needs the agencies' tables; this centre is
	// the exchange and the consent ledger only).
	gatewayToken := "oq_bench_" + uuid.NewString()
	ws.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "Bearer "+gatewayToken {
				r = r.WithContext(identity.WithPrincipal(r.Context(), identity.Principal{Kind: identity.System, Subject: "bench-gateways",
					Roles: []string{identity.ScopeExchangeGateway}}))
			}
			next.ServeHTTP(w, r)
		})
	})
	auth.Routes(ws, "")
	ledger := consent.New(centreDB, clock.Real{}, nil, log)
	ledger.Routes(ws)
	lctx, stopListening := context.WithCancel(ctx)
	defer stopListening()
	go ledger.ListenFeed(lctx)
	centreURL, err := serve(ws.Handler())
	if err != nil {
		return err
	}

	// The provider and the baseline proxy.
	body := []byte(`{"id":"42","name":"Example","status":"active"}` + "\n")
	providerURL, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	if err != nil {
		return err
	}
	target, _ := url.Parse(providerURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second}
	proxyURL, err := serve(rp)
	if err != nil {
		return err
	}

	// The register and two gateways.
	const actor = "bench"
	client := xroad.ClientID{Instance: "KZ", Class: "GOV", Member: "100", Subsystem: "portal"}
	svc := xroad.ServiceID{ClientID: xroad.ClientID{Instance: "KZ", Class: "GOV", Member: "200", Subsystem: "registry"}, Code: "persons"}
	for _, s := range []xroad.ClientID{client, svc.ClientID} {
		if err := auth.AddMember(ctx, catalogue.Member{ID: s.MemberID(), Name: s.Member}, actor); err != nil {
			return err
		}
		if err := auth.AddSubsystem(ctx, catalogue.Subsystem{ID: s, Name: s.Subsystem}, actor); err != nil {
			return err
		}
	}
	if err := auth.PutService(ctx, catalogue.Service{ID: svc, Title: "Persons", URL: providerURL, PersonalData: cfg.Consent}, actor); err != nil {
		return err
	}
	var consentID string
	subject, _ := iin.New(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), iin.SexFemale, 4242)
	if cfg.Consent {
		c, err := ledger.Ask(ctx, consent.Request{SubjectIIN: subject.String(), Items: []string{"service:" + svc.String()},
			Purpose: "loan application", ValidUntil: time.Now().Add(24 * time.Hour), ExchangeClient: client.String()}, "system:bench", "system:bench", "")
		if err != nil {
			return err
		}
		if _, err := ledger.Approve(ctx, c.ID, "", identity.Principal{Kind: identity.Citizen, Subject: subject.String()}, ""); err != nil {
			return err
		}
		consentID = c.ID.String()
	}
	checks := &checkTimes{}
	if err := auth.Grant(ctx, catalogue.Access{Client: client, Service: svc}, actor); err != nil {
		return err
	}
	type node struct {
		*gateway.Node
		client string
	}
	var nodes []*node
	var nodePools []*pgxpool.Pool
	var peers []net.Listener
	var replicas []*gateway.ConsentReplica
	for i, m := range []xroad.ClientID{client.MemberID(), svc.MemberID()} {
		tok, _, err := auth.NewEnrolmentToken(ctx, m, actor)
		if err != nil {
			return err
		}
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		peers = append(peers, pl)
		if _, err := gateway.Enrol(ctx, centreURL, filepath.Join(dir, fmt.Sprint("gw", i)), tok, pl.Addr().String()); err != nil {
			return err
		}
	}
	for i := range peers {
		name := fmt.Sprint("gw", i)
		if err := clusters[1+i].EnsureDatabase(ctx, name); err != nil {
			return err
		}
		pool, err := pg.Open(ctx, clusters[1+i].ConnString(name), 32)
		if err != nil {
			return err
		}
		closers = append(closers, pool.Close)
		nodePools = append(nodePools, pool)
		gcfg := gateway.Config{DataDir: filepath.Join(dir, name), CentreURL: centreURL, Logger: log}
		var replica *gateway.ConsentReplica
		if cfg.Consent {
			replica = &gateway.ConsentReplica{URL: centreURL, Token: gatewayToken, Log: log,
				Fallback: gateway.CentreConsent{URL: centreURL, Token: gatewayToken, Unrecorded: true}}
			gcfg.Consent, gcfg.CentreToken = timedChecker{replica, checks}, gatewayToken
		}
		n, err := gateway.Open(ctx, gcfg, pool)
		if err != nil {
			return err
		}
		replicas = append(replicas, replica)
		cl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		nctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = n.Serve(nctx, gateway.Listeners{Client: cl, Peer: peers[i]}); close(done) }()
		if replica != nil {
			go replica.Run(nctx)
		}
		closers = append(closers, func() { cancel(); <-done; n.Close() })
		nodes = append(nodes, &node{Node: n, client: "http://" + cl.Addr().String()})
	}

	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second}}
	type path struct {
		name, url string
		header    http.Header
	}
	gwHeader := http.Header{xroad.HeaderClient: {client.String()}}
	if cfg.Consent {
		gwHeader.Set("Ortaq-Data-Subject", subject.String())
		gwHeader.Set("Ortaq-Purpose", "loan application")
		gwHeader.Set("Ortaq-Consent", consentID)
		for deadline := time.Now().Add(30 * time.Second); !replicas[0].Current() || !replicas[1].Current(); {
			if time.Now().After(deadline) {
				return errors.New("the gateways' consent replicas did not catch up within 30 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	paths := []path{
		{"direct", providerURL + "/persons/42", nil},
		{"proxy", proxyURL + "/persons/42", nil},
		{"gateway", nodes[0].client + svc.Path("/persons/42"), gwHeader},
	}
	do := func(p path) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
		for k, v := range p.header {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: status %d %s", p.name, resp.StatusCode, resp.Header.Get(xroad.HeaderError))
		}
		return err
	}
	for _, p := range paths {
		if err := do(p); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	rps := map[string]float64{}
	var errs atomic.Int64
	var firstErr atomic.Value
	note := func(err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			if errs.Add(1) == 1 {
				firstErr.Store(err.Error())
			}
		}
	}
	for _, p := range paths {
		var n atomic.Int64
		deadline := time.Now().Add(cfg.Duration)
		start := time.Now()
		var wg sync.WaitGroup
		for range cfg.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) && ctx.Err() == nil {
					err := do(p)
					note(err)
					if err == nil {
						n.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		rps[p.name] = float64(n.Load()) / time.Since(start).Seconds()
		fmt.Fprintf(out, "throughput %-8s %8.0f req/s (%d clients, %s)\n", p.name, rps[p.name], cfg.Concurrency, cfg.Duration)
	}

	lat := map[string][]float64{}
	var totalSkipped int
	for _, p := range paths {
		total := int(float64(cfg.Rate) * cfg.LatencyFor.Seconds())
		ms := make([]float64, 0, total)
		// At most this many requests in flight: a path that cannot keep up
		// shows as late and skipped requests, not as a pile of sockets.
		slots := make(chan struct{}, 512)
		var skipped int
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for i := range total {
			at := start.Add(time.Duration(float64(i) / float64(cfg.Rate) * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
			select {
			case slots <- struct{}{}:
			default:
				skipped++
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				t0 := time.Now()
				err := do(p)
				note(err)
				if err == nil {
					mu.Lock()
					ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		slices.Sort(ms)
		lat[p.name] = ms
		fmt.Fprintf(out, "latency    %-8s p50 %.3f ms  p99 %.3f ms at %d req/s (%d requests, %d skipped: 512 in flight)\n", p.name,
			percentile(ms, 0.50), percentile(ms, 0.99), cfg.Rate, len(ms), skipped)
		totalSkipped += skipped
	}
	var logged [2]int64
	for i, n := range nodes {
		if _, err := n.Log().Seal(ctx); err != nil {
			return err
		}
		rep, err := n.Log().Verify(ctx, n.CA())
		if err != nil {
			return err
		}
		if !rep.OK() {
			return fmt.Errorf("gateway %d message log does not verify: %v", i, rep.Problems)
		}
		logged[i] = rep.Entries
	}
	fmt.Fprintf(out, "message logs: %d entries on A, %d on B, both verify\n", logged[0], logged[1])
	// Where a gateway exchange spends its time, from the nodes' operational
	// records (medians over the whole run).
	time.Sleep(200 * time.Millisecond)
	for i, pool := range nodePools {
		var pre, mid, post float64
		err := pool.QueryRow(ctx, `
			SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY request_out_us - request_in_us),
			       percentile_cont(0.5) WITHIN GROUP (ORDER BY response_in_us - request_out_us),
			       percentile_cont(0.5) WITHIN GROUP (ORDER BY response_out_us - response_in_us)
			FROM gateway_opmon WHERE status = 200`).Scan(&pre, &mid, &post)
		if err == nil {
			fmt.Fprintf(out, "gateway %s median µs: checks %.0f, %s %.0f, body+log %.0f\n", []string{"A", "B"}[i], pre,
				[]string{"to B and back", "provider"}[i], mid, post)
		}
	}
	if e := errs.Load(); e > 0 {
		fmt.Fprintf(out, "errors: %d (first: %v)\n", e, firstErr.Load())
	}
	consentSummary := ""
	if cfg.Consent {
		p50, p99, n, fallbacks := checks.summary()
		var reported int64
		for _, nd := range nodes {
			if _, err := nd.ShipAccessReports(ctx); err != nil {
				return err
			}
		}
		if err := centreDB.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = 'consent.used' AND subject_iin = $1`, subject.String()).Scan(&reported); err != nil {
			return err
		}
		fmt.Fprintf(out, "consent checks: %d on both gateways, p50 %.1f µs, p99 %.1f µs inside the gateway (%d while a replica was not current); %d uses in the centre's access log\n",
			n, p50, p99, fallbacks, reported)
		consentSummary = fmt.Sprintf(" consent_checks=%d consent_check_p50_us=%.1f consent_check_p99_us=%.1f consent_fallbacks=%d access_log_uses=%d", n, p50, p99, fallbacks, reported)
	}
	p := func(name string, q float64) float64 { return percentile(lat[name], q) }
	fmt.Fprintf(out, "bench=exchange clients=%d direct_rps=%.0f proxy_rps=%.0f gateway_rps=%.0f rate=%d direct_p50_ms=%.3f direct_p99_ms=%.3f "+
		"proxy_p50_ms=%.3f proxy_p99_ms=%.3f gateway_p50_ms=%.3f gateway_p99_ms=%.3f added_p50_ms=%.3f added_p99_ms=%.3f log_entries_a=%d log_entries_b=%d errors=%d skipped=%d%s\n",
		cfg.Concurrency, rps["direct"], rps["proxy"], rps["gateway"], cfg.Rate, p("direct", .5), p("direct", .99), p("proxy", .5), p("proxy", .99),
		p("gateway", .5), p("gateway", .99), p("gateway", .5)-p("direct", .5), p("gateway", .99)-p("direct", .99), logged[0], logged[1], errs.Load(), totalSkipped, consentSummary)
	return nil
}

// timedChecker times each consent check inside the gateway.
type timedChecker struct {
	r     *gateway.ConsentReplica
	times *checkTimes
}

func (t timedChecker) CheckConsent(ctx context.Context, q gateway.ConsentQuery) error {
	current := t.r.Current()
	start := time.Now()
	err := t.r.CheckConsent(ctx, q)
	t.times.add(time.Since(start), !current)
	return err
}

// checkTimes collects the consent checks' durations.
type checkTimes struct {
	mu        sync.Mutex
	us        []float64
	fallbacks int
}

func (c *checkTimes) add(d time.Duration, fallback bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.us = append(c.us, float64(d.Nanoseconds())/1000)
	if fallback {
		c.fallbacks++
	}
}

func (c *checkTimes) summary() (p50, p99 float64, n, fallbacks int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	slices.Sort(c.us)
	return percentile(c.us, .5), percentile(c.us, .99), len(c.us), c.fallbacks
}
