//go:build !unix

package llama

// cpuSeconds is not measured here; the tok/cpu-s metric reads +Inf.
func cpuSeconds() float64 { return 0 }
