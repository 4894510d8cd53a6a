package pg

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
)

// ErrNoServer means no PostgreSQL server binaries were found on this machine.
// Its text tells the operator how to fix it.
var ErrNoServer = errors.New(`no PostgreSQL server binaries found (looked for initdb and postgres in $ORTAQ_PG_BIN, on PATH and in /usr/lib/postgresql/*/bin).
Either install them, e.g. on Debian or Ubuntu:
    apt-get install -y postgresql
or point Ortaq at an existing database:
    DATABASE_URL=postgres://user:password@host:5432/ortaq ortaq serve`)

// debianPostgresRoot is where Debian and Ubuntu install versioned server binaries.
const debianPostgresRoot = "/usr/lib/postgresql"

// FindBinaries returns the directory holding initdb and postgres. An explicit
// dir (from ORTAQ_PG_BIN) wins; then PATH; then the newest Debian version.
func FindBinaries(explicit string) (string, error) {
	if explicit != "" {
		if hasServer(explicit) {
			return explicit, nil
		}
		return "", fmt.Errorf("%w\n(ORTAQ_PG_BIN=%s holds no initdb and postgres)", ErrNoServer, explicit)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// Follow symlinks: Debian's /usr/bin entries are wrappers or links, and
		// postgres must come from the same version as initdb.
		if real, err := filepath.EvalSymlinks(p); err == nil && hasServer(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if hasServer(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	entries, err := os.ReadDir(debianPostgresRoot)
	if err == nil {
		var versions []int
		for _, e := range entries {
			if v, err := strconv.Atoi(e.Name()); err == nil {
				versions = append(versions, v)
			}
		}
		sort.Sort(sort.Reverse(sort.IntSlice(versions)))
		for _, v := range versions {
			dir := filepath.Join(debianPostgresRoot, strconv.Itoa(v), "bin")
			if hasServer(dir) {
				return dir, nil
			}
		}
	}
	return "", ErrNoServer
}

func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// ScratchDir is where throw-away clusters (tests, service test runs) go:
// explicit if given, else memory-backed /dev/shm when it has room (they need
// no durability, and creating databases is disk-bound otherwise: about
// 350 ms each on disk here, 15 ms in memory), else the temporary directory.
func ScratchDir(explicit string) string {
	if explicit != "" {
		return explicit
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil && st.Bavail*uint64(st.Bsize) > 2<<30 {
		return "/dev/shm"
	}
	return os.TempDir()
}
