package bench

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
)

// cpuTime is the CPU time, in seconds, used so far by this process (the
// platform and the benchmark's own clients) and by the database's server
// processes. CPU per unit of work is steadier than a rate on a shared
// machine: a neighbour's load lowers the rate but not the work done.
type cpuTime struct {
	self float64
	db   map[int]float64 // by server process id; nil when they cannot be read (not on this machine)
}

// userHZ is the unit of /proc/<pid>/stat times, fixed at 100 on Linux
// whatever the kernel's tick rate.
const userHZ = 100

func readCPU(ctx context.Context, pool *pgxpool.Pool) cpuTime {
	var t cpuTime
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		t.self = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	// Every server process of the cluster (backends and background
	// workers) is in pg_stat_activity; the postmaster itself does no work
	// worth counting.
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity`)
	if err != nil {
		return t
	}
	defer rows.Close()
	db := map[int]float64{}
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			return t
		}
		s, ok := procCPU(pid)
		if !ok {
			return t
		}
		db[pid] = s
	}
	if rows.Err() == nil {
		t.db = db
	}
	return t
}

// procCPU reads utime + stime of a process from /proc.
func procCPU(pid int) (float64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may contain spaces: fields are
	// counted after its closing parenthesis.
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, false
	}
	fields := strings.Fields(s[end+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (utime + stime) / userHZ, true
}

// cpuMSPer is the CPU in milliseconds per unit of work between two readings,
// for this process and for the database (-1 when unknown).
func cpuMSPer(before, after cpuTime, units int) (self, db float64) {
	self = (after.self - before.self) * 1000 / float64(units)
	if before.db == nil || after.db == nil {
		return self, -1
	}
	// A process that started during the phase counts whole; one that ended
	// during it is lost (the pools keep theirs open, so this is rare).
	var used float64
	for pid, s := range after.db {
		used += s - before.db[pid]
	}
	return self, used * 1000 / float64(units)
}
