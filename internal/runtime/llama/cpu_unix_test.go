//go:build unix

package llama

import "syscall"

// cpuSeconds is the process's user + system CPU time: on a shared machine
// tokens per CPU-second varies far less than tokens per wall second.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
