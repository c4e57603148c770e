package cli

import (
	"fmt"
	"io"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/runtime/llama"
)

// generateCmd is `inferbox generate MODEL.gguf "prompt"`: it runs the LLM
// engine in this process (no server), streams the continuation to standard
// output and prints the speed to standard error.
func generateCmd() *cobra.Command {
	var (
		p         llama.Params
		seed      int64
		threads   int
		maxCtx    int
		noNewline bool
	)
	cmd := &cobra.Command{
		Use:   "generate MODEL.gguf PROMPT",
		Short: "Generate text from a GGUF model in this process",
		Long: `Generate text with inferbox's LLM engine from a GGUF file (llama or qwen2
architecture), without a server. The continuation of PROMPT streams to standard
output as it is generated; the token counts and speed go to standard error.

Sampling, in llama.cpp's order: top-k, top-p, min-p, then temperature
(0 = greedy). --seed makes sampled output reproducible.`,
		Example: `  inferbox generate model.gguf "Once upon a time" --max-tokens 64 --temperature 0
  inferbox generate model.gguf "In the beginning" --top-k 40 --top-p 0.9 --seed 7 --stop "." --stop "!"`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if f.Changed("seed") {
				s := uint64(seed)
				p.Seed = &s
			}
			if f.Changed("top-p") && p.TopP == 0 {
				return fmt.Errorf("invalid --top-p 0: must be in (0, 1]")
			}
			if err := p.Validate(); err != nil {
				return fmt.Errorf("%w (flag --%s)", err, flagOf(err.Error()))
			}
			if threads <= 0 {
				return fmt.Errorf("invalid --threads %d: must be > 0", threads)
			}
			reg := gguf.NewRegistry()
			t0 := time.Now()
			m, err := llama.Load(reg, args[0], maxCtx, threads, nil)
			if err != nil {
				return err
			}
			defer m.Close()
			loaded := time.Since(t0)
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var first time.Time
			start := time.Now()
			u, err := m.Generate(cmd.Context(), &llama.GenerateRequest{Prompt: args[1], Params: p}, func(t llama.Token) error {
				if first.IsZero() {
					first = time.Now()
				}
				_, err := io.WriteString(out, t.Text)
				return err
			})
			end := time.Now()
			if err != nil {
				return err
			}
			if !noNewline {
				fmt.Fprintln(out)
			}
			report(errOut, u, loaded, first.Sub(start), end.Sub(first))
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&p.Temperature, "temperature", 0.8, "sampling temperature; 0 is greedy")
	f.IntVar(&p.TopK, "top-k", 40, "keep the k most likely tokens; 0 disables")
	f.Float64Var(&p.TopP, "top-p", 0.95, "keep the most likely tokens whose probability reaches p, in (0, 1]; 1 disables")
	f.Float64Var(&p.MinP, "min-p", 0, "drop tokens less likely than min-p times the most likely one; 0 disables")
	f.Float64Var(&p.RepetitionPenalty, "repetition-penalty", 1, "penalty for tokens among the last 64; 1 disables")
	f.IntVar(&p.MaxTokens, "max-tokens", 256, "stop after this many generated tokens; 0 runs until the context is full")
	f.StringArrayVar(&p.Stop, "stop", nil, "stop when this text is generated (not printed); repeatable")
	f.Int64Var(&seed, "seed", 0, "random seed for sampling (default: a random seed)")
	f.IntVar(&threads, "threads", goruntime.NumCPU(), "CPU threads for the matrix products")
	f.IntVar(&maxCtx, "context", 0, "cap the context length (0: the model's)")
	f.BoolVar(&noNewline, "no-newline", false, "do not end the output with a newline")
	return cmd
}

// flagOf maps the parameter named in a llama.Params validation message
// ("invalid top_p 0: ...") to the flag that sets it.
func flagOf(msg string) string {
	for _, n := range []struct{ param, flag string }{
		{"temperature", "temperature"}, {"top_k", "top-k"}, {"top_p", "top-p"}, {"min_p", "min-p"},
		{"repetition_penalty", "repetition-penalty"}, {"max_tokens", "max-tokens"}, {"stop", "stop"},
	} {
		if strings.HasPrefix(msg, "invalid "+n.param+" ") {
			return n.flag
		}
	}
	return "?"
}

// report prints the generation's counts and speed: prompt processing
// (time to the first generated token) and decoding (the tokens after it).
func report(w io.Writer, u llama.Usage, load, ttft, decode time.Duration) {
	fmt.Fprintf(w, "load %s; prompt %d tokens, first token after %s; generated %d tokens",
		load.Round(time.Microsecond), u.InputTokens, ttft.Round(time.Microsecond), u.OutputTokens)
	if u.OutputTokens > 1 && decode > 0 {
		fmt.Fprintf(w, ", %.1f tokens/s", float64(u.OutputTokens-1)/decode.Seconds())
	}
	reason := u.FinishReason
	if u.StopSequence != "" {
		reason += fmt.Sprintf(" (%q)", u.StopSequence)
	}
	fmt.Fprintf(w, "; finish: %s\n", reason)
}
