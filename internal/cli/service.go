package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/servicedef"
)

func serviceCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: ortaq service lint FILE... | ortaq service test DIR|FILE...")
		return errUsage
	}
	switch args[0] {
	case "lint":
		return serviceLint(args[1:], stdout, stderr)
	case "test":
		return serviceTest(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "ortaq service: unknown subcommand %q (lint, test)\n", args[0])
	return errUsage
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
	files, err := serviceFiles(args)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tTEST\tRESULT\tOUTCOME\tDETAIL")
	failed, passed := 0, 0
	for _, f := range files {
		plan, problems, err := compileFile(f)
		if err != nil {
			return err
		}
		if len(problems) > 0 {
			fmt.Fprintf(w, "%s\t-\tLINT\t-\t%d problem(s); run ortaq service lint %s\n", filepath.Base(f), len(problems), f)
			failed++
			continue
		}
		for _, r := range plan.RunTests(time.Now()) {
			result := "PASS"
			if !r.Passed {
				result = "FAIL"
				failed++
			} else {
				passed++
			}
			outcome := r.Outcome
			if r.Refusal != "" {
				outcome += " (" + r.Refusal + ")"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", plan.File.ID, r.Name, result, outcome, strings.Join(r.Problems, "; "))
		}
	}
	w.Flush()
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return errProblems
	}
	return nil
}
