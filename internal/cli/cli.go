// Package cli is the ortaq command line: it parses subcommands, flags and
// ORTAQ_* environment variables into configuration and hands them to the
// composition root. Precedence: flag, then environment, then default.
//
// May import: internal/apierr, internal/app, internal/bench, internal/clock,
// internal/consent,
// internal/demo, internal/esign, internal/identity, internal/notify, internal/process, internal/registry, internal/servicedef,
// internal/servicetest, internal/exchange/gateway, internal/exchange/msglog,
// uuid and the standard library.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/bench"
)

// Version is set at build time with -ldflags "-X github.com/ortaq/ortaq/internal/cli.Version=...".
var Version = "dev"

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = serve(rest, stdout, stderr)
	case "migrate":
		err = migrate(rest, stdout, stderr)
	case "bench":
		err = benchCmd(rest, stdout, stderr)
	case "service":
		err = serviceCmd(rest, stdout, stderr)
	case "token":
		err = tokenCmd(rest, stdout, stderr)
	case "consent":
		err = consentCmd(rest, stdout, stderr)
	case "identity":
		err = identityCmd(rest, stdout, stderr)
	case "process":
		err = processCmd(rest, stdout, stderr)
	case "gateway":
		err = gatewayCmd(rest, stdout, stderr)
	case "registry":
		err = registryCmd(rest, stdout, stderr)
	case "esign":
		err = esignCmd(rest, stdout, stderr)
	case "notify":
		err = notifyCmd(rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "ortaq %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	case "help", "-h", "--help", "-help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "ortaq: unknown command %q\n\n", cmd)
		usage(stderr)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errUsage) {
		return 2
	}
	if errors.Is(err, errProblems) {
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "ortaq %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprint(w, `ortaq: one platform for a country's e-government services.

Usage:
  ortaq serve [flags]     run the platform (embedded PostgreSQL unless DATABASE_URL is set)
  ortaq migrate [flags]   apply database migrations and exit
  ortaq service lint FILE...      check service definitions: every problem with file:line:col
  ortaq service test DIR|FILE... run the test cases declared in service definitions
  ortaq service publish FILE...  publish definitions to a running platform (--url, ORTAQ_ADMIN_TOKEN)
  ortaq service diff OLD NEW     what changes between two versions for citizens and officers
  ortaq bench apply       measure applications end to end against a raw PostgreSQL baseline
  ortaq bench process     benchmark the process engine through the HTTP API: applications/s,
                          submit-to-done latency, commits per application against the raw rate
  ortaq bench exchange    the exchange gateway pair (mTLS, signatures, durable logs) against a direct call
                          and a plain reverse proxy: requests/s, added latency p50/p99 at 500 requests/s
  ortaq token issue|revoke       issue an API access token (citizen, officer, system), or revoke one
  ortaq consent list|revoke      operators: list consents (IINs masked), revoke one at once
  ortaq identity citizen|officer|client add, disable  accounts that sign in (password + SMS code; client credentials)
  ortaq process inspect|failed|retry|cancel  operators: inspect an application, list failed ones, retry, cancel
  ortaq bench registry    registry point reads through the API (audited) and bulk import against raw pgx and raw COPY
  ortaq bench portal      every portal page's server time p50/p99 and size against the budgets (50 ms, 100 KB)
  ortaq registry lint|import|export|catalogue  registry definitions, bulk import (CSV, NDJSON), export, data catalogue
  ortaq gateway enrol|serve      run a member's exchange gateway (X-Road REST compatible)
  ortaq gateway log verify|export  check the gateway's hash-chained message log, export an archive
  ortaq esign demo-ca|issue|sign|trust  electronic signatures without NCALayer: a demo CA, a person's
                          certificate (IIN, BIN, KZ roles), raw or CMS signatures, trusting a CA
  ortaq notify outbox     the SMS and e-mail the development adapters sent (--to, --channel, --follow)
  ortaq version           print the version

Run "ortaq <command> --help" for the flags of a command; each flag can also be
set by the ORTAQ_* environment variable shown next to it.
`)
}

// flags is a flag set whose every flag also reads ORTAQ_<NAME>.
type flags struct {
	fs   *flag.FlagSet
	envs map[string]string // flag name -> environment variable
	bad  []string
}

func newFlags(name, summary string, stderr io.Writer) *flags {
	f := &flags{fs: flag.NewFlagSet(name, flag.ContinueOnError), envs: map[string]string{}}
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() {
		out := f.fs.Output()
		fmt.Fprintf(out, "Usage: ortaq %s [flags]\n\n%s\n\nFlags (each also read from the environment variable shown):\n", name, summary)
		var names []string
		f.fs.VisitAll(func(fl *flag.Flag) { names = append(names, fl.Name) })
		sort.Strings(names)
		for _, n := range names {
			fl := f.fs.Lookup(n)
			def := ""
			if fl.DefValue != "" && fl.DefValue != "0" && fl.DefValue != "false" {
				def = fmt.Sprintf(" (default %q)", fl.DefValue)
			}
			fmt.Fprintf(out, "  --%s  [%s]%s\n      %s\n", n, f.envs[n], def, fl.Usage)
		}
	}
	return f
}

func envName(flagName string) string {
	return "ORTAQ_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f *flags) env(name string, extra ...string) (string, bool) {
	f.envs[name] = strings.Join(append([]string{envName(name)}, extra...), ", ")
	for _, e := range append([]string{envName(name)}, extra...) {
		if v, ok := os.LookupEnv(e); ok {
			return v, true
		}
	}
	return "", false
}

func (f *flags) String(p *string, name, def, usage string, extraEnv ...string) {
	if v, ok := f.env(name, extraEnv...); ok {
		def = v
	}
	f.fs.StringVar(p, name, def, usage)
}

func (f *flags) Bool(p *bool, name string, def bool, usage string) {
	if v, ok := f.env(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.bad = append(f.bad, fmt.Sprintf("%s=%q: not true or false", envName(name), v))
		}
		def = b
	}
	f.fs.BoolVar(p, name, def, usage)
}

func (f *flags) Int(p *int, name string, def int, usage string) {
	if v, ok := f.env(name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.bad = append(f.bad, fmt.Sprintf("%s=%q: not a whole number", envName(name), v))
		}
		def = n
	}
	f.fs.IntVar(p, name, def, usage)
}

func (f *flags) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	if v, ok := f.env(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.bad = append(f.bad, fmt.Sprintf("%s=%q: not a duration such as 30s or 2m", envName(name), v))
		}
		def = d
	}
	f.fs.DurationVar(p, name, def, usage)
}

// Parse parses a command that takes flags only.
func (f *flags) Parse(args []string) error {
	rest, err := f.ParseArgs(args)
	if err == nil && len(rest) > 0 {
		fmt.Fprintf(f.fs.Output(), "unexpected argument %q\n", rest[0])
		return errUsage
	}
	return err
}

// ParseArgs parses flags and returns the arguments after them.
func (f *flags) ParseArgs(args []string) ([]string, error) {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errUsage
	}
	if len(f.bad) > 0 {
		return nil, fmt.Errorf("bad environment: %s", strings.Join(f.bad, "; "))
	}
	return f.fs.Args(), nil
}

// common flags of commands that reach the database.
func databaseFlags(f *flags, cfg *app.Config, logLevel *string) {
	f.String(&cfg.DataDir, "data", "./ortaq-data", "data directory of the embedded PostgreSQL cluster (ignored with --database-url)")
	f.String(&cfg.DatabaseURL, "database-url", "", "PostgreSQL connection string; empty starts the embedded cluster", "DATABASE_URL")
	f.String(&cfg.PGBin, "pg-bin", "", "directory with initdb and postgres; empty searches PATH and /usr/lib/postgresql/*/bin")
	f.String(logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

func logger(level string, stderr io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: l})), nil
}

func serve(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level string
	f := newFlags("serve", "Runs the platform: portal, API, workers. Stops gracefully on SIGINT or SIGTERM.", stderr)
	f.String(&cfg.Addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	databaseFlags(f, &cfg, &level)
	f.Bool(&cfg.Demo, "demo", false, "seed demo agencies, a synthetic population and the demo services")
	f.Int(&cfg.DemoPeople, "demo-people", 10000, "size of the synthetic population that --demo creates")
	f.Int(&cfg.Workers, "workers", 8, "application steps this node runs at once (0: submit only, others work)")
	f.Duration(&cfg.JobTimeout, "job-timeout", 20*time.Second, "longest one automatic step may run")
	f.String(&cfg.PublicURL, "public-url", "", "the platform's public base URL (e.g. https://ortaq.example.kz): the OpenID Connect issuer; empty takes each request's scheme and host (development only)")
	f.String(&cfg.OIDCIssuer, "oidc-issuer", "", "delegate citizens' sign-in to this external OpenID Connect provider (issuer URL; needs --public-url, whose /login/external/callback is registered there); empty: the built-in sign-in only")
	f.String(&cfg.OIDCClientID, "oidc-client-id", "", "the platform's client id at the external OpenID Connect provider")
	f.String(&cfg.OIDCClientSecret, "oidc-client-secret", "", "the platform's client secret at the external provider (prefer the environment variable: flags show in ps)")
	f.Strings(&cfg.TrustedProxies, "trusted-proxy", "a load balancer (IP address or CIDR prefix) whose X-Forwarded-For names the caller, for sign-in's per-address limit; repeat for several (environment: comma-separated); none: the header is ignored")
	f.String(&cfg.AdminToken, "admin-token", "", "bearer token for administrative API calls such as publishing services; empty switches them off (prefer the environment variable: flags show in ps)")
	f.String(&cfg.ExchangeGateway, "exchange-gateway", "", "base URL of the platform's own exchange gateway (X-Road REST), for services that read other agencies' systems; empty: such reads fail")
	f.String(&cfg.ExchangeClient, "exchange-client", "KZ/GOV/ORTAQ/services", "the platform's subsystem id at its exchange gateway (X-Road-Client)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if cfg.ExchangeGateway != "" {
		if u, err := url.Parse(cfg.ExchangeGateway); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("--exchange-gateway (ORTAQ_EXCHANGE_GATEWAY) must be an http or https URL")
		}
	}
	if cfg.Workers < 0 || cfg.DemoPeople < 0 {
		return errors.New("--workers and --demo-people must not be negative")
	}
	log, err := logger(level, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Serve(ctx, cfg, log, stdout)
}

func benchCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || !slices.Contains([]string{"apply", "process", "exchange", "registry", "portal"}, args[0]) {
		fmt.Fprintln(stderr, "usage: ortaq bench apply|process|exchange|registry|portal [flags]  (see ortaq bench apply --help, ortaq bench process --help)")
		return errUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if args[0] == "registry" {
		return benchRegistry(ctx, args[1:], stdout, stderr)
	}
	if args[0] == "exchange" {
		return benchExchange(ctx, args[1:], stdout, stderr)
	}
	if args[0] == "portal" {
		var cfg bench.PortalConfig
		f := newFlags("bench portal", "Renders every page of the web portal --requests times as the person it is for (a citizen, "+
			"an officer, an administrator), against the demo data with a completed and a reviewed application, and prints each "+
			"page's server time p50/p99 and size against the budgets (50 ms p99, 100 KB), with /healthz as the baseline. "+
			"Ends with one key=value summary line.", stderr)
		f.Int(&cfg.Requests, "requests", 200, "renders of each page")
		f.Int(&cfg.People, "people", 10000, "demo population")
		f.String(&cfg.DatabaseURL, "database-url", "", "PostgreSQL to measure on; empty starts a fresh durable embedded cluster", "DATABASE_URL")
		f.String(&cfg.PGBin, "pg-bin", "", "directory with initdb and postgres")
		if err := f.Parse(args[1:]); err != nil {
			return err
		}
		return bench.Portal(ctx, cfg, stdout)
	}
	if args[0] == "process" {
		var cfg bench.ProcessConfig
		f := newFlags("bench process", "Benchmarks the process engine through the public HTTP API with the fully automatic certificate of "+
			"registered address (registry read, rule, signed document). Measures the raw commit rate on --concurrency connections, then "+
			"--n applications from --concurrency HTTP clients (completed applications/s, submit-to-done p50/p95/p99, transactions per "+
			"application, commit rate against the raw one), then --rate applications/s for --duration (submit-to-done p50/p95/p99). "+
			"Ends with one key=value summary line.", stderr)
		f.Int(&cfg.N, "n", 3000, "applications of the throughput phase (and raw transactions of the baseline)")
		f.Int(&cfg.Concurrency, "concurrency", 32, "HTTP clients of the throughput phase, and connections of the baseline")
		f.Int(&cfg.Workers, "workers", 16, "engine workers")
		f.Int(&cfg.Rate, "rate", 50, "applications per second offered in the latency phase")
		f.Duration(&cfg.Duration, "duration", 10*time.Second, "length of the latency phase")
		f.String(&cfg.DatabaseURL, "database-url", "", "PostgreSQL to measure on; empty starts a fresh durable embedded cluster", "DATABASE_URL")
		f.String(&cfg.PGBin, "pg-bin", "", "directory with initdb and postgres")
		if err := f.Parse(args[1:]); err != nil {
			return err
		}
		return bench.Process(ctx, cfg, stdout)
	}
	var cfg bench.ApplyConfig
	f := newFlags("bench apply", "Submits applications for the certificate of registered address and measures throughput and delivery time "+
		"against a baseline of raw durable transactions on the same database. Ends with one key=value summary line.", stderr)
	f.Int(&cfg.N, "n", 2000, "applications to submit")
	f.Int(&cfg.Concurrency, "concurrency", 16, "concurrent submitters (and baseline clients)")
	f.Int(&cfg.Workers, "workers", 8, "engine workers")
	f.String(&cfg.DatabaseURL, "database-url", "", "PostgreSQL to measure on; empty starts a fresh durable embedded cluster", "DATABASE_URL")
	f.String(&cfg.PGBin, "pg-bin", "", "directory with initdb and postgres")
	if err := f.Parse(args[1:]); err != nil {
		return err
	}
	return bench.Apply(ctx, cfg, stdout)
}

// subcommand is one verb of a command (ortaq token issue).
type subcommand struct {
	name string
	run  func(args []string, stdout, stderr io.Writer) error
}

// dispatch runs the subcommand args[0] of command; with none, or an
// unknown one, it prints usage and what there is.
func dispatch(command, usage string, args []string, stdout, stderr io.Writer, subs ...subcommand) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errUsage
	}
	names := make([]string, len(subs))
	for i, s := range subs {
		if s.name == args[0] {
			return s.run(args[1:], stdout, stderr)
		}
		names[i] = s.name
	}
	fmt.Fprintf(stderr, "ortaq %s: unknown subcommand %q (%s)\n", command, args[0], strings.Join(names, ", "))
	return errUsage
}

// withDatabase opens (and migrates) the database as migrate does and
// hands it to use, with a context that ends on SIGINT or SIGTERM.
func withDatabase(cfg app.Config, level string, stderr io.Writer, use func(ctx context.Context, db *app.Database, log *slog.Logger) error) error {
	log, err := logger(level, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, err := app.OpenDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	return use(ctx, db, log)
}

func migrate(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level string
	f := newFlags("migrate", "Applies every pending schema migration, then exits.", stderr)
	databaseFlags(f, &cfg, &level)
	if err := f.Parse(args); err != nil {
		return err
	}
	return withDatabase(cfg, level, stderr, func(context.Context, *app.Database, *slog.Logger) error {
		fmt.Fprintln(stdout, "ortaq migrate: the database schema is up to date")
		return nil
	})
}
