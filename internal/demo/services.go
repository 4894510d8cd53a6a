package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/services"
)

// publishServices publishes every definition in services/ (embedded). A
// version already published with the same content is left alone.
func publishServices(ctx context.Context, catalogue *service.Catalogue, out io.Writer) error {
	files, err := fs.Glob(services.Files, "*.yaml")
	if err != nil {
		return err
	}
	for _, name := range files {
		src, err := fs.ReadFile(services.Files, name)
		if err != nil {
			return err
		}
		_, problems, err := catalogue.PublishSource(ctx, src)
		if errors.Is(err, service.ErrVersionConflict) {
			// An older demo left this version with other content: keep it,
			// and say how to get the new one.
			fmt.Fprintf(out, "demo: services/%s: %v; kept the published one (start with a fresh --data to get the new one)\n", name, err)
			continue
		}
		if err != nil {
			return fmt.Errorf("publish %s: %w", name, err)
		}
		if len(problems) > 0 {
			var lines []string
			for _, p := range problems {
				lines = append(lines, p.Format("services/"+name))
			}
			return fmt.Errorf("demo service %s does not compile:\n%s", name, strings.Join(lines, "\n"))
		}
	}
	fmt.Fprintf(out, "demo: %d services published from services/\n", len(files))
	return nil
}
