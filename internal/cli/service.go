package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/internal/servicetest"
)

func serviceCmd(args []string, stdout, stderr io.Writer) error {
	return dispatch("service", "usage: ortaq service lint FILE... | test DIR|FILE... | publish [--url URL] FILE... | diff OLD NEW", args, stdout, stderr,
		subcommand{"lint", serviceLint}, subcommand{"test", serviceTest}, subcommand{"publish", servicePublish}, subcommand{"diff", serviceDiff})
}

var errProblems = errors.New("problems found")

// serviceFiles expands directories into their *.yaml files.
func serviceFiles(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, a)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(a, "*.yaml"))
		if err != nil {
			return nil, err
		}
		sort.Strings(matches)
		files = append(files, matches...)
	}
	if len(files) == 0 {
		return nil, errors.New("no service files given")
	}
	return files, nil
}

// maxServiceFile bounds what lint reads.
const maxServiceFile = 4 << 20

func compileFile(file string) (*servicedef.Plan, []servicedef.Problem, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() > maxServiceFile {
		return nil, []servicedef.Problem{{Pos: servicedef.Pos{Line: 1, Col: 1}, Code: "file.too_large", Message: "a service file is limited to 4 MiB"}}, nil
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	plan, problems := servicedef.Compile(src, demo.Environment())
	return plan, problems, nil
}

func serviceLint(args []string, stdout, stderr io.Writer) error {
	files, err := serviceFiles(args)
	if err != nil {
		return err
	}
	total := 0
	for _, f := range files {
		_, problems, err := compileFile(f)
		if err != nil {
			return err
		}
		for _, p := range problems {
			fmt.Fprintln(stdout, p.Format(f))
		}
		total += len(problems)
	}
	if total > 0 {
		fmt.Fprintf(stderr, "ortaq service lint: %d problem(s) in %d file(s)\n", total, len(files))
		return errProblems
	}
	fmt.Fprintf(stdout, "ortaq service lint: %d file(s), no problems\n", len(files))
	return nil
}

func serviceTest(args []string, stdout, stderr io.Writer) error {
	var simulate bool
	var pgBin string
	f := newFlags("service test", "Runs the test cases declared in service definitions through the real engine on a private "+
		"PostgreSQL cluster (or, with --simulate, through the compiled plan in memory). Non-zero exit when a case fails.", stderr)
	f.Bool(&simulate, "simulate", false, "evaluate the plans in memory instead of running them on the platform")
	f.String(&pgBin, "pg-bin", "", "directory with initdb and postgres")
	rest, err := f.ParseArgs(args)
	if err != nil {
		return err
	}
	files, err := serviceFiles(rest)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var runner *servicetest.Runner
	if !simulate {
		fmt.Fprintln(stderr, "ortaq service test: starting a private PostgreSQL for the test cases...")
		if runner, err = servicetest.Start(ctx, pgBin); err != nil {
			return err
		}
		defer runner.Close()
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tTEST\tRESULT\tRAN ON\tOUTCOME\tDETAIL")
	failed, passed := 0, 0
	for _, file := range files {
		plan, problems, err := compileFile(file)
		if err != nil {
			return err
		}
		if len(problems) > 0 {
			fmt.Fprintf(w, "%s\t-\tLINT\t-\t-\t%d problem(s); run ortaq service lint %s\n", filepath.Base(file), len(problems), file)
			failed++
			continue
		}
		var results []servicedef.TestResult
		if runner != nil {
			src, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			results = runner.Run(ctx, src, plan)
		} else {
			results = plan.RunTests(time.Now())
			for i := range results {
				results[i].Simulated = true
			}
		}
		for _, r := range results {
			result := "PASS"
			if !r.Passed {
				result = "FAIL"
				failed++
			} else {
				passed++
			}
			ranOn := "engine"
			if r.Simulated {
				ranOn = "simulation"
			}
			outcome := r.Outcome
			if r.Refusal != "" {
				outcome += " (" + r.Refusal + ")"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", plan.File.ID, r.Name, result, ranOn, outcome, strings.Join(r.Problems, "; "))
		}
	}
	w.Flush()
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return errProblems
	}
	return nil
}

func servicePublish(args []string, stdout, stderr io.Writer) error {
	var url, token string
	f := newFlags("service publish", "Publishes service definition files to a running platform through its API. "+
		"A new version takes new applications at once; running applications finish on their version.", stderr)
	f.String(&url, "url", "http://127.0.0.1:8080", "the platform's address")
	f.String(&token, "admin-token", "", "the platform's administrative bearer token")
	rest, err := f.ParseArgs(args)
	if err != nil {
		return err
	}
	files, err := serviceFiles(rest)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second}
	failed := 0
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		req, err := http.NewRequest(http.MethodPost, strings.TrimRight(url, "/")+"/api/v1/services", bytes.NewReader(src))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/yaml")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept-Language", "en")
		res, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("reach %s: %w", url, err)
		}
		var body struct {
			ID      string `json:"id"`
			Version int    `json:"version"`
			Code    string `json:"code"`
			Message string `json:"message"`
			Details struct {
				Problems []servicedef.Problem `json:"problems"`
			} `json:"details"`
		}
		err = json.NewDecoder(io.LimitReader(res.Body, 8<<20)).Decode(&body)
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: unreadable answer (HTTP %d): %w", file, res.StatusCode, err)
		}
		if res.StatusCode == http.StatusCreated {
			fmt.Fprintf(stdout, "%s: published %s v%d; see %s/api/v1/services/%s/versions\n", file, body.ID, body.Version, url, body.ID)
			continue
		}
		failed++
		fmt.Fprintf(stderr, "%s: not published: %s (%s, HTTP %d)\n", file, body.Message, body.Code, res.StatusCode)
		for _, p := range body.Details.Problems {
			fmt.Fprintln(stdout, p.Format(file))
		}
	}
	if failed > 0 {
		return errProblems
	}
	return nil
}

func serviceDiff(args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 {
		fmt.Fprintln(stderr, "usage: ortaq service diff OLD.yaml NEW.yaml")
		return errUsage
	}
	var plans [2]*servicedef.Plan
	for i, f := range args {
		plan, problems, err := compileFile(f)
		if err != nil {
			return err
		}
		for _, p := range problems {
			fmt.Fprintln(stdout, p.Format(f))
		}
		if len(problems) > 0 {
			return errProblems
		}
		plans[i] = plan
	}
	changes := servicedef.Diff(plans[0], plans[1])
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no changes for citizens or officers")
		return nil
	}
	for _, c := range changes {
		fmt.Fprintf(stdout, "%-9s %s\n", c.For+":", c.What)
	}
	return nil
}
