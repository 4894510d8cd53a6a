// Command ortaq runs the Ortaq digital-government platform. See
// "ortaq help" and the README.
package main

import (
	"os"

	"github.com/ortaq/ortaq/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
