// Package web is the HTTP server every capability mounts its routes on. It
// applies, in one place and without opt-out, what every response needs:
// request ids, structured access logs, Prometheus metrics, panic recovery,
// security headers, cross-origin (CSRF) protection, and the JSON error format
// with a stable code, a localized safe message and the request id.
//
// Owns: /healthz, /readyz, /metrics and the 404/405 answers.
//
// May import: internal/apierr, internal/i18n, the standard library, the
// Prometheus client. It knows no capability: capabilities hand it routes
// and middlewares ([Server.Use]).
package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HandlerFunc is an HTTP handler that may fail; the server renders the error.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ReadyCheck reports whether a dependency is ready to serve; nil means yes.
type ReadyCheck func(ctx context.Context) error

// Config configures the server.
type Config struct {
	Logger *slog.Logger // defaults to slog.Default()
	// Metrics receives the server's metrics and is served on /metrics.
	// Defaults to a new registry with Go and process collectors.
	Metrics *prometheus.Registry
	// ShutdownTimeout bounds the graceful drain. Defaults to 20s.
	ShutdownTimeout time.Duration
}

// Server is the platform's HTTP server.
type Server struct {
	log      *slog.Logger
	mux      *http.ServeMux
	metrics  *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	cop      *http.CrossOriginProtection
	timeout  time.Duration

	mu          sync.Mutex
	checks      map[string]ReadyCheck
	routes      []string
	middlewares []func(http.Handler) http.Handler
}

// New builds a server with its built-in routes.
func New(cfg Config) *Server {
	s := &Server{
		log:     cfg.Logger,
		mux:     http.NewServeMux(),
		metrics: cfg.Metrics,
		cop:     http.NewCrossOriginProtection(),
		timeout: cfg.ShutdownTimeout,
		checks:  map[string]ReadyCheck{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.timeout == 0 {
		s.timeout = 20 * time.Second
	}
	if s.metrics == nil {
		s.metrics = prometheus.NewRegistry()
		s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ortaq_http_requests_total",
		Help: "HTTP requests by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ortaq_http_request_duration_seconds",
		Help:    "HTTP request latency by route pattern.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	s.metrics.MustRegister(s.requests, s.duration)

	s.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	s.HandleFunc("GET /readyz", s.ready)
	s.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{Registry: s.metrics}))
	return s
}

// Metrics is the registry capabilities add their metrics to.
func (s *Server) Metrics() *prometheus.Registry { return s.metrics }

// Logger is the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// AddReadyCheck makes /readyz depend on check.
func (s *Server) AddReadyCheck(name string, check ReadyCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

// Handle mounts a plain handler; pattern is a ServeMux pattern.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mu.Lock()
	s.routes = append(s.routes, pattern)
	s.mu.Unlock()
	s.mux.Handle(pattern, h)
}

// Use wraps every route in mw, inside the server's own layers: a middleware
// sees the request id, its answers are logged, measured and get the security
// headers, and cross-origin requests are refused before it runs. The first
// middleware installed runs first. Install them before calling Handler or
// Serve. A middleware answers errors with [Fail].
func (s *Server) Use(mw func(http.Handler) http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.middlewares = append(s.middlewares, mw)
}

// HandleFunc mounts a handler that may fail.
func (s *Server) HandleFunc(pattern string, h HandlerFunc) { s.Handle(pattern, s.Func(h)) }

// Routes lists every mounted pattern, built-in ones included, in mount order.
func (s *Server) Routes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.routes)
}

// Func turns a failing handler into an http.Handler that renders its error.
func (s *Server) Func(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.WriteError(w, r, err)
		}
	})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	checks := make(map[string]ReadyCheck, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	result := map[string]string{}
	status := http.StatusOK
	for name, check := range checks {
		if err := check(ctx); err != nil {
			s.log.WarnContext(r.Context(), "readiness check failed", "check", name, "error", err, "request_id", RequestID(r.Context()))
			result[name] = "unavailable"
			status = http.StatusServiceUnavailable
		} else {
			result[name] = "ok"
		}
	}
	word := "ok"
	if status != http.StatusOK {
		word = "unavailable"
	}
	WriteJSON(w, status, map[string]any{"status": word, "checks": result})
	return nil
}

// Handler is the whole server as an http.Handler, middleware included.
func (s *Server) Handler() http.Handler {
	var h http.Handler = http.HandlerFunc(s.route)
	s.mu.Lock()
	for i := len(s.middlewares) - 1; i >= 0; i-- {
		h = s.middlewares[i](h)
	}
	s.mu.Unlock()
	return s.withRequestID(s.recoverPanics(s.observe(s.secure(s.cop.Handler(h)))))
}

// route dispatches to the mux, answering unmatched requests in our format.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		// Through the mux, not h: it sets r.Pattern and the path values.
		s.mux.ServeHTTP(w, r)
		return
	}
	// The mux's own answer tells 404 from 405 (and sets Allow); replace its
	// plain-text body by ours.
	probe := &statusProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusMethodNotAllowed:
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		s.WriteError(w, r, errMethodNotAllowed)
	case http.StatusNotFound, 0:
		s.WriteError(w, r, errRouteNotFound)
	default: // a redirect, e.g. path cleaning
		for k, v := range probe.header {
			w.Header()[k] = v
		}
		w.WriteHeader(probe.status)
	}
}

type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

// Serve serves on ln until ctx ends, then drains in-flight requests.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic in handler", "panic", v, "request_id", RequestID(r.Context()), "path", r.URL.Path)
				s.WriteError(w, r, errPanic)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// requestState is what the server's layers share about one request.
type requestState struct {
	id     string
	server *Server
}

type requestStateKey struct{}

func stateOf(ctx context.Context) *requestState {
	st, _ := ctx.Value(requestStateKey{}).(*requestState)
	return st
}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	if st := stateOf(ctx); st != nil {
		return st.id
	}
	return ""
}

// Fail answers r with err in the JSON error format, as the server serving r
// renders handlers' errors (internal causes logged, never sent). It is for
// middlewares installed with [Server.Use], which have no server at hand.
func Fail(w http.ResponseWriter, r *http.Request, err error) {
	s := &Server{log: slog.Default()}
	if st := stateOf(r.Context()); st != nil && st.server != nil {
		s = st.server
	}
	s.WriteError(w, r, err)
}

func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		st := &requestState{id: id, server: s}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestStateKey{}, st)))
	})
}

// validRequestID accepts a caller's id only when it is short and plain, so it
// can go into logs and headers unescaped.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe logs and measures every request. Only the path is logged, never the
// query or body: both may carry personal data.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// The route is looked up here, not read from r.Pattern afterwards:
		// a middleware may copy the request, and may answer before routing.
		_, route := s.mux.Handler(r)
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		took := time.Since(start)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		if route == "" {
			route = "unmatched"
		}
		s.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
		s.duration.WithLabelValues(route).Observe(took.Seconds())
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			level = slog.LevelDebug
		}
		s.log.Log(r.Context(), level, "http request",
			"request_id", RequestID(r.Context()),
			"method", r.Method,
			"path", r.URL.Path,
			"route", route,
			"status", rec.status,
			"bytes", rec.bytes,
			"duration_ms", float64(took.Microseconds())/1000,
		)
	})
}

// contentSecurityPolicy allows only the platform's own scripts, styles and
// forms; no inline script, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
			h.Set("Cache-Control", "no-store")
		} else {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
		}
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}
