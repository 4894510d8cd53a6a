package pg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ClusterConfig describes a private PostgreSQL cluster.
type ClusterConfig struct {
	// Dir is the data directory. The cluster keeps its files in Dir/pg, its
	// socket in Dir/run and its log in Dir/postgres.log. Required.
	Dir string
	// BinDir holds initdb and postgres; see [FindBinaries]. Required.
	BinDir string
	// Durable keeps PostgreSQL's crash safety (fsync, synchronous commit, full
	// page writes). Only tests may turn it off.
	Durable bool
	// Logger receives what the supervisor does. Defaults to slog.Default().
	Logger *slog.Logger
}

// Cluster is a running private PostgreSQL server. Stop it with [Cluster.Stop];
// it also stops by itself when the process that started it dies.
type Cluster struct {
	cfg       ClusterConfig
	pgdata    string
	socketDir string
	cmd       *exec.Cmd
	exited    chan struct{}
	exitErr   error
	lock      *os.File
	log       *slog.Logger
}

// socketPort names the socket file (.s.PGSQL.<port>); the cluster listens on
// no TCP port, so the number never collides with anything.
const socketPort = 5432

// maxSocketPath is the longest unix socket path Linux accepts (sun_path is 108
// bytes with the terminating NUL).
const maxSocketPath = 107

// StartCluster initialises the cluster on first use, starts it and waits until
// it accepts connections.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Dir == "" || cfg.BinDir == "" {
		return nil, errors.New("pg: ClusterConfig.Dir and ClusterConfig.BinDir are required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolve data directory: %w", err)
	}
	cfg.Dir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	c := &Cluster{cfg: cfg, exited: make(chan struct{}), log: logger}
	if c.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.lock.Close()
		}
	}()

	owner, err := clusterOwner()
	if err != nil {
		return nil, err
	}
	if err := c.placeFiles(owner); err != nil {
		return nil, err
	}
	if err := c.initIfNeeded(ctx, owner); err != nil {
		return nil, err
	}
	if err := c.stopOrphan(); err != nil {
		return nil, err
	}
	if err := c.start(owner); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		c.Stop(context.Background())
		return nil, err
	}
	ok = true
	logger.Info("postgres cluster ready", "data", c.pgdata, "socket_dir", c.socketDir, "durable", cfg.Durable)
	return c, nil
}

// ConnString returns a libpq-style connection string for database db.
func (c *Cluster) ConnString(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", quoteConnValue(c.socketDir), socketPort, quoteConnValue(db))
}

// quoteConnValue quotes a value for a keyword/value connection string, so
// that paths with spaces or quotes survive.
func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Exited is closed when the server process has ended, for whatever reason.
func (c *Cluster) Exited() <-chan struct{} { return c.exited }

// EnsureDatabase creates database name if it does not exist.
func (c *Cluster) EnsureDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		return fmt.Errorf("connect to cluster: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Stop shuts the server down (fast mode: active transactions roll back, a
// checkpoint is written) and waits for it. Calling Stop twice is harmless.
func (c *Cluster) Stop(ctx context.Context) error {
	defer c.lock.Close()
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	select {
	case <-c.exited:
	case <-ctx.Done():
		_ = c.cmd.Process.Signal(syscall.SIGQUIT)
		<-c.exited
	case <-timer.C:
		_ = c.cmd.Process.Signal(syscall.SIGQUIT)
		<-c.exited
	}
	c.log.Info("postgres cluster stopped", "data", c.pgdata)
	return nil
}

// lockDir takes an exclusive lock on the data directory so that two Ortaq
// processes never supervise the same cluster.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "ortaq.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another ortaq process", dir)
	}
	return f, nil
}

// credential is the user the cluster runs as; nil means the current user.
type credential struct{ uid, gid int }

func clusterOwner() (*credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root, and PostgreSQL refuses to run as root, but there is no \"postgres\" system user to run it as; install the postgresql package (it creates the user) or run ortaq as an ordinary user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &credential{uid: uid, gid: gid}, nil
}

// placeFiles decides where the cluster's files and socket go. Normally both
// live in the data directory. When running as root, the postgres user must be
// able to reach them; if an ancestor directory (say /root) bars it, the files
// move to /var/lib/ortaq/<hash of the data directory> and Dir/pg becomes a
// symbolic link to them, so the layout stays discoverable.
func (c *Cluster) placeFiles(owner *credential) error {
	base := c.cfg.Dir
	if owner != nil {
		if err := os.Chmod(base, 0o711); err != nil {
			return fmt.Errorf("make data directory traversable for postgres: %w", err)
		}
		if !reachable(base, owner) {
			sum := sha256.Sum256([]byte(c.cfg.Dir))
			base = filepath.Join("/var/lib/ortaq", hex.EncodeToString(sum[:6]))
			if err := os.MkdirAll(base, 0o711); err != nil {
				return fmt.Errorf("create %s: %w", base, err)
			}
			link := filepath.Join(c.cfg.Dir, "pg")
			if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
				if err := os.Symlink(filepath.Join(base, "pg"), link); err != nil {
					return fmt.Errorf("link cluster directory: %w", err)
				}
			}
			c.log.Info("the postgres user cannot reach the data directory; the cluster lives elsewhere",
				"data", c.cfg.Dir, "cluster", filepath.Join(base, "pg"))
		}
	}
	c.pgdata = filepath.Join(base, "pg")
	c.socketDir = filepath.Join(base, "run")
	if len(c.socketDir)+len("/.s.PGSQL.5432.lock") > maxSocketPath {
		sum := sha256.Sum256([]byte(c.cfg.Dir))
		c.socketDir = filepath.Join(os.TempDir(), "ortaq-"+hex.EncodeToString(sum[:6]))
	}
	for _, d := range []string{c.pgdata, c.socketDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("restrict %s: %w", d, err)
		}
		if owner != nil {
			if err := os.Chown(d, owner.uid, owner.gid); err != nil {
				return fmt.Errorf("hand %s to the postgres user: %w", d, err)
			}
		}
	}
	return nil
}

// reachable reports whether owner may traverse every directory from / to dir.
func reachable(dir string, owner *credential) bool {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		mode := fi.Mode().Perm()
		switch {
		case int(st.Uid) == owner.uid:
			if mode&0o100 == 0 {
				return false
			}
		case int(st.Gid) == owner.gid:
			if mode&0o010 == 0 {
				return false
			}
		default:
			if mode&0o001 == 0 {
				return false
			}
		}
		if d == "/" {
			return true
		}
	}
}

func (c *Cluster) initIfNeeded(ctx context.Context, owner *credential) error {
	if _, err := os.Stat(filepath.Join(c.pgdata, "PG_VERSION")); err == nil {
		return nil
	}
	args := []string{"-D", c.pgdata, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"}
	if !c.cfg.Durable {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.BinDir, "initdb"), args...)
	cmd.Dir = c.pgdata
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: owner.sys()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	c.log.Info("postgres cluster initialised", "data", c.pgdata)
	return nil
}

func (o *credential) sys() *syscall.Credential {
	if o == nil {
		return nil
	}
	return &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}
}

// stopOrphan stops a server left running by an earlier supervisor of this data
// directory that died without stopping it. We hold the directory lock, so no
// live supervisor owns it.
func (c *Cluster) stopOrphan() error {
	b, err := os.ReadFile(filepath.Join(c.pgdata, "postmaster.pid"))
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return nil
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte("postgres")) {
		return nil // stale pid file; postgres removes it itself
	}
	c.log.Warn("stopping an orphaned postgres server of this data directory", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGINT)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("an orphaned postgres server (pid %d) of %s did not stop", pid, c.pgdata)
}

func (c *Cluster) start(owner *credential) error {
	logPath := filepath.Join(c.cfg.Dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open postgres log: %w", err)
	}
	args := []string{
		"-D", c.pgdata,
		"-k", c.socketDir,
		"-c", "listen_addresses=",
		"-c", "port=" + strconv.Itoa(socketPort),
		"-c", "unix_socket_permissions=0700",
		"-c", "max_connections=200",
	}
	if !c.cfg.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(c.cfg.BinDir, "postgres"), args...)
	cmd.Dir = c.pgdata
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: owner.sys(),
		// The server must not outlive its supervisor, even after kill -9.
		Pdeathsig: syscall.SIGINT,
		// Our own process group, so a terminal's Ctrl-C reaches only Ortaq,
		// which then stops its work before it stops the database.
		Setpgid: true,
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	c.cmd = cmd
	go func() {
		c.exitErr = cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	return nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute) // crash recovery of a big cluster can be slow
	defer cancel()
	if _, err := pgconn.ParseConfig(c.ConnString("postgres")); err != nil {
		return fmt.Errorf("connection string for %s: %w", c.socketDir, err)
	}
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited during start-up (%v); its log says:\n%s", c.exitErr, tail(filepath.Join(c.cfg.Dir, "postgres.log"), 20))
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections in time: %w", ctx.Err())
		default:
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		conn, err := pgconn.Connect(attempt, c.ConnString("postgres"))
		cancelAttempt()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 64<<10 {
		_, _ = f.Seek(fi.Size()-64<<10, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
