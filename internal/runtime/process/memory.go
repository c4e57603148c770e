package process

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Memory enforcement: when Spec.MemoryBytes is set (a serverless variant's
// MemorySizeInMB, an instance type's memory), a watchdog samples the
// resident memory of the model server and every process it started, every
// memoryPoll, and kills the whole group when the total exceeds the budget.
// The in-flight requests fail as a ModelError that says so, and the
// supervisor restarts the server. Sampling RSS (rather than an address-space
// rlimit) works for garbage-collected runtimes that reserve far more
// virtual memory than they use, and needs no cgroup delegation.
const memoryPoll = 100 * time.Millisecond

// watchMemory runs until c exits.
func (m *Model) watchMemory(c *child, limit int64) {
	t := time.NewTicker(memoryPoll)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		rss := treeRSS(c.pid)
		if rss <= limit {
			continue
		}
		m.mu.Lock()
		c.killedFor = fmt.Sprintf("it used %d MB, more than its memory size of %d MB", rss>>20, limit>>20)
		m.mu.Unlock()
		m.logger.Error("model server over its memory size; stopping it", "pid", c.pid, "rss_mb", rss>>20, "limit_mb", limit>>20)
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		return
	}
}

// treeRSS is the resident memory of pid and its descendants, in bytes.
func treeRSS(pid int) int64 {
	total := rss(pid)
	for _, c := range children(pid) {
		total += treeRSS(c)
	}
	return total
}

var pageSize = int64(os.Getpagesize())

func rss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * pageSize
}

func children(pid int) []int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}
