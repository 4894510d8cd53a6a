package servicedef

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzCompile: whatever the bytes, Compile returns a plan or problems with
// positions, never panics, and a plan's tests run without panicking.
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(src)
		}
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a"))
	f.Add([]byte("{"))
	f.Add([]byte(""))
	env := demoEnv()
	f.Fuzz(func(t *testing.T, src []byte) {
		plan, problems := Compile(src, env)
		if plan == nil && len(problems) == 0 {
			t.Fatal("no plan and no problems")
		}
		for _, p := range problems {
			if p.Code == "" || p.Message == "" || p.Pos.Line < 1 {
				t.Fatalf("problem without code, message or position: %+v", p)
			}
		}
		if plan != nil {
			plan.RunTests(time.Unix(0, 0))
		}
	})
}
