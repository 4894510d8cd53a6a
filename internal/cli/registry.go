package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/bench"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/registry"
)

const registryUsage = `usage: ortaq registry lint [DIR]                  check registry definitions and classifiers (default ./registries)
       ortaq registry import [flags] REGISTRY FILE  bulk-create records from CSV or NDJSON, row by row
       ortaq registry export [flags] REGISTRY       write the current records as NDJSON (every read audited)
       ortaq registry catalogue [flags] [QUERY]     where a fact is mastered and who reads it; --duplicates`

func registryCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, registryUsage)
		return errUsage
	}
	switch args[0] {
	case "lint":
		return registryLint(args[1:], stdout, stderr)
	case "import":
		return registryImport(args[1:], stdout, stderr)
	case "export":
		return registryExport(args[1:], stdout, stderr)
	case "catalogue", "catalog":
		return registryCatalogue(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "ortaq registry: unknown subcommand %q\n%s\n", args[0], registryUsage)
	return errUsage
}

func registryLint(args []string, stdout, stderr io.Writer) error {
	f := newFlags("registry lint [DIR]", "Checks every registry definition (DIR/*.yaml) and classifier (DIR/classifiers/*.yaml) "+
		"against the others and the demo agencies' roles; prints each problem as file:line:col: code: message.", stderr)
	rest, err := f.ParseArgs(args)
	if err != nil {
		return err
	}
	dir := "registries"
	if len(rest) > 0 {
		dir = rest[0]
	}
	set, bad, err := registry.LoadSet(os.DirFS(dir), demo.Roles())
	if err != nil {
		return err
	}
	for _, fp := range bad {
		for _, p := range fp.Problems {
			fmt.Fprintln(stdout, p.Format(filepath.Join(dir, fp.File)))
		}
	}
	if len(bad) > 0 {
		return errProblems
	}
	fmt.Fprintf(stdout, "%d registries and %d classifiers: no problems\n", len(set.Registries), len(set.Classifiers))
	return nil
}

func registryImport(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level, format, basis, appID, actor, reportFile string
	var quiet bool
	f := newFlags("registry import REGISTRY FILE", "Creates the records of FILE (CSV with a header of attribute names, or NDJSON; - reads "+
		"standard input) in REGISTRY. Each row is validated on its own: bad rows are reported with their row and field and "+
		"the rest goes on; good rows are written in batches, each one transaction with their history and change events. "+embeddedNote, stderr)
	databaseFlags(f, &cfg, &level)
	f.String(&format, "format", "", "csv or ndjson; empty guesses from the file's extension")
	f.String(&basis, "basis", "", "the legal basis of the records (this or --application-id is required)")
	f.String(&appID, "application-id", "", "the application that caused the records")
	f.String(&actor, "actor", defaultActor(), "who imports, for the records' history")
	f.String(&reportFile, "report", "", "write the full report (every rejected row) as JSON to this file")
	f.Bool(&quiet, "quiet", false, "no progress line")
	rest, err := parseArgsAnywhere(f, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		fmt.Fprintln(stderr, "usage: ortaq registry import [flags] REGISTRY FILE")
		return errUsage
	}
	name, file := rest[0], rest[1]
	if format == "" {
		switch strings.ToLower(filepath.Ext(file)) {
		case ".csv":
			format = registry.FormatCSV
		case ".ndjson", ".jsonl":
			format = registry.FormatNDJSON
		default:
			return fmt.Errorf("give --format csv or ndjson for %s", file)
		}
	}
	if basis == "" && appID == "" {
		return fmt.Errorf("give --basis (the legal basis) or --application-id: every record keeps why it was written")
	}
	var in io.Reader = os.Stdin
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return err
		}
		defer fh.Close()
		in = fh
	}
	return openEngine(cfg, level, stderr, func(ctx context.Context, p *app.Platform) error {
		if err := p.InstallRegistries(ctx); err != nil {
			return err
		}
		d, ok := p.Registries.Definition(name)
		if !ok {
			return fmt.Errorf("no registry %q (see ortaq registry catalogue)", name)
		}
		rows, err := registry.NewRowReader(in, format, d)
		if err != nil {
			return err
		}
		progress := func(r registry.ImportReport) {
			if quiet {
				return
			}
			rate := float64(r.Read) / max(r.Elapsed.Seconds(), 1e-9)
			fmt.Fprintf(stderr, "\r%s: read %d, imported %d, rejected %d (%.0f rows/s)   ", name, r.Read, r.Imported, r.Rejected, rate)
		}
		rep, err := p.Registries.Import(ctx, name, rows, registry.ImportOptions{Actor: actor, Basis: basis, ApplicationID: appID, Progress: progress})
		if !quiet {
			fmt.Fprintln(stderr)
		}
		if err != nil {
			return fmt.Errorf("after %d rows (%d imported): %w", rep.Read, rep.Imported, err)
		}
		fmt.Fprintf(stdout, "%s: read %d rows, imported %d, rejected %d in %s (%.0f rows/s)\n", name, rep.Read, rep.Imported, rep.Rejected,
			rep.Elapsed.Round(time.Millisecond), float64(rep.Read)/max(rep.Elapsed.Seconds(), 1e-9))
		for i, r := range rep.Rejections {
			if i == 20 {
				fmt.Fprintf(stdout, "  ... (--report FILE lists them all)\n")
				break
			}
			fmt.Fprintf(stdout, "  row %d: %s %s\n", r.Row, orWhole(r.Field), r.Code)
		}
		if reportFile != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if err := os.WriteFile(reportFile, b, 0o600); err != nil {
				return err
			}
		}
		if rep.Rejected > 0 {
			return errProblems
		}
		return nil
	})
}

func orWhole(field string) string {
	if field == "" {
		return "(row)"
	}
	return field
}

// parseArgsAnywhere parses flags before and between positional arguments.
func parseArgsAnywhere(f *flags, args []string) ([]string, error) {
	var pos []string
	for {
		rest, err := f.ParseArgs(args)
		if err != nil {
			return nil, err
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func registryExport(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level, purpose, actor string
	f := newFlags("registry export REGISTRY", "Writes the current records of REGISTRY as NDJSON to standard output, in key order. "+
		"Every record read is audited with --actor and --purpose. "+embeddedNote, stderr)
	databaseFlags(f, &cfg, &level)
	f.String(&purpose, "purpose", "", "why the records are read (required): the legal basis or the task")
	f.String(&actor, "actor", defaultActor(), "who reads, for the audit trail")
	rest, err := parseArgsAnywhere(f, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "usage: ortaq registry export [flags] REGISTRY")
		return errUsage
	}
	if purpose == "" {
		return fmt.Errorf("give --purpose: every read of personal data says why")
	}
	return openEngine(cfg, level, stderr, func(ctx context.Context, p *app.Platform) error {
		if err := p.InstallRegistries(ctx); err != nil {
			return err
		}
		n, err := p.Registries.Export(ctx, rest[0], stdout, registry.Access{Actor: actor, Purpose: purpose})
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "exported %d records\n", n)
		return nil
	})
}

func registryCatalogue(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level string
	var asJSON, dups bool
	f := newFlags("registry catalogue [QUERY]", "Answers \"where is X mastered and who reads it\": every attribute of every registry "+
		"whose name, fact or title contains QUERY, with its master, copies, personal-data class and the services reading it. "+
		"--duplicates lists the facts mastered in two registries. "+embeddedNote, stderr)
	databaseFlags(f, &cfg, &level)
	f.Bool(&asJSON, "json", false, "print JSON")
	f.Bool(&dups, "duplicates", false, "list the facts mastered twice")
	rest, err := parseArgsAnywhere(f, args)
	if err != nil {
		return err
	}
	return openEngine(cfg, level, stderr, func(ctx context.Context, p *app.Platform) error {
		if dups {
			d := p.Registries.Duplicates()
			if asJSON {
				return json.NewEncoder(stdout).Encode(d)
			}
			for _, x := range d {
				fmt.Fprintf(stdout, "%q is mastered in more than one registry: %s\n", x.Fact, strings.Join(x.Masters, ", "))
			}
			if len(d) == 0 {
				fmt.Fprintln(stdout, "no fact is mastered twice")
			}
			return nil
		}
		entries, err := p.Registries.Where(ctx, strings.Join(rest, " "))
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(entries)
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ATTRIBUTE\tMASTER\tPERSONAL\tFACT\tCOPIES\tREAD BY")
		for _, e := range entries {
			var readers []string
			for _, c := range e.Consumers {
				readers = append(readers, fmt.Sprintf("%s@%d", c.Service, c.Version))
			}
			master := e.Master
			if e.Authoritative {
				master = "(here)"
			}
			fmt.Fprintf(tw, "%s.%s\t%s\t%s\t%s\t%s\t%s\n", e.Registry, e.Attribute, master, e.Personal, e.Fact,
				strings.Join(e.Copies, ","), strings.Join(readers, ","))
		}
		return tw.Flush()
	})
}

func benchRegistry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg bench.RegistryConfig
	f := newFlags("bench registry", "Benchmarks the registries: imports --people persons into the population registry (CSV validated row by "+
		"row, COPY, history, change events) against a raw COPY of the same records; then point reads by key through the HTTP API, each "+
		"audited, against the same read by a raw pgx query: --reads from --concurrency clients for throughput, then --rate reads/s for "+
		"--duration for latency. Ends with one key=value summary line.", stderr)
	f.Int(&cfg.People, "people", 1_000_000, "persons to import")
	f.Int(&cfg.Reads, "reads", 20000, "point reads of the throughput phase")
	f.Int(&cfg.Concurrency, "concurrency", 16, "HTTP clients of the throughput phase, and connections of the raw reads")
	f.Int(&cfg.Rate, "rate", 2000, "point reads per second offered in the latency phase")
	f.Duration(&cfg.Duration, "duration", 10*time.Second, "length of the latency phase")
	f.String(&cfg.DatabaseURL, "database-url", "", "PostgreSQL to measure on; empty starts a fresh durable embedded cluster", "DATABASE_URL")
	f.String(&cfg.PGBin, "pg-bin", "", "directory with initdb and postgres")
	if err := f.Parse(args); err != nil {
		return err
	}
	return bench.Registry(ctx, cfg, stdout)
}
