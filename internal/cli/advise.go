package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/advisor"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/pricebook"
)

type adviseFlags struct {
	file, latency, hourly, trace, instanceType, llmModel, pricebook string
	payloadMB, processingMs, rate, daily, inTokens, outTokens       float64
	memoryMB                                                        int
	dataset, customLLM, rules                                       bool
}

// adviseCmd runs locally: it needs the price book, not a server.
func adviseCmd(g *globals) *cobra.Command {
	var fl adviseFlags
	cmd := &cobra.Command{
		Use:   "advise [-f WORKLOAD.yaml] [--latency interactive|minutes|none] [--rate R | --hourly R1,...,R24 | --daily N | --trace FILE] ...",
		Short: "Recommend an inference mode for a workload, with each mode's monthly cost and latency",
		Long: `Describe a workload (a YAML/JSON file with -f, and/or flags, which override
the file) and get the recommended mode, the decision rules that chose it, and a
table of monthly cost and expected latency for every mode that fits, from a
replay of the traffic through each mode's scaling decisions (the server's
own autoscaling and serverless code). Prices come from the price book
(--pricebook overrides it); a missing price is shown as UNPRICED.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var w advisor.Workload
			if fl.file != "" {
				f, err := os.Open(fl.file)
				if err != nil {
					return err
				}
				w, err = advisor.ParseWorkload(f, filepath.Dir(fl.file))
				f.Close()
				if err != nil {
					return err
				}
			}
			if err := fl.apply(cmd, &w); err != nil {
				return err
			}
			types, err := instancetype.Default()
			if err != nil {
				return err
			}
			book, err := pricebook.Load(fl.pricebook, types)
			if err != nil {
				return err
			}
			a, err := advisor.Advise(w, book)
			if err != nil {
				return err
			}
			if g.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(a)
			}
			return a.WriteText(cmd.OutOrStdout(), fl.rules)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&fl.file, "file", "f", "", "workload file (YAML or JSON)")
	f.StringVar(&fl.latency, "latency", "", "latency need: interactive, minutes or none")
	f.Float64Var(&fl.payloadMB, "payload-mb", 0, "request payload size in MB")
	f.Float64Var(&fl.processingMs, "processing-ms", 0, "processing time per request in ms")
	f.IntVar(&fl.memoryMB, "memory-mb", 0, "model memory in MB (serverless memory size; default 2048)")
	f.StringVar(&fl.instanceType, "instance-type", "", "instance type (default ml.m5.large)")
	f.Float64Var(&fl.rate, "rate", 0, "constant traffic in requests per second")
	f.StringVar(&fl.hourly, "hourly", "", "24 comma-separated rates (requests per second), one per hour of the day")
	f.Float64Var(&fl.daily, "daily", 0, "requests (records) per day")
	f.StringVar(&fl.trace, "trace", "", "file of request timestamps, one a line (RFC 3339 or seconds)")
	f.BoolVar(&fl.dataset, "dataset", false, "the traffic is a whole dataset processed at once")
	f.StringVar(&fl.llmModel, "llm-model", "", "foundation model id (an LLM workload)")
	f.BoolVar(&fl.customLLM, "custom-llm", false, "a custom (fine-tuned) LLM")
	f.Float64Var(&fl.inTokens, "input-tokens", 0, "LLM input tokens per request")
	f.Float64Var(&fl.outTokens, "output-tokens", 0, "LLM output tokens per request")
	f.StringVar(&fl.pricebook, "pricebook", "", "price book override file")
	f.BoolVar(&fl.rules, "rules", false, "also print the decision rules")
	return cmd
}

// apply sets the fields whose flags were given.
func (fl *adviseFlags) apply(cmd *cobra.Command, w *advisor.Workload) error {
	set := cmd.Flags().Changed
	if set("latency") {
		w.Latency = fl.latency
	}
	if set("payload-mb") {
		w.PayloadMB = fl.payloadMB
	}
	if set("processing-ms") {
		w.ProcessingMs = fl.processingMs
	}
	if set("memory-mb") {
		w.MemoryMB = fl.memoryMB
	}
	if set("instance-type") {
		w.InstanceType = fl.instanceType
	}
	if set("dataset") {
		w.Dataset = fl.dataset
	}
	traffic := func() { w.Traffic = advisor.Traffic{} }
	switch {
	case set("rate"):
		traffic()
		r := fl.rate
		w.Traffic.Rate = &r
	case set("hourly"):
		traffic()
		for i, s := range strings.Split(fl.hourly, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return fmt.Errorf("--hourly: value %d %q is not a number", i+1, s)
			}
			w.Traffic.Hourly = append(w.Traffic.Hourly, r)
		}
	case set("daily"):
		traffic()
		w.Traffic.DailyRequests = fl.daily
	case set("trace"):
		traffic()
		fh, err := os.Open(fl.trace)
		if err != nil {
			return err
		}
		defer fh.Close()
		w.Traffic.Trace = fl.trace
		if w.Traffic.Times, err = advisor.ParseTrace(fh); err != nil {
			return fmt.Errorf("--trace %s: %w", fl.trace, err)
		}
	}
	if set("llm-model") || set("custom-llm") || set("input-tokens") || set("output-tokens") {
		if w.LLM == nil {
			w.LLM = &advisor.LLM{}
		}
		if set("llm-model") {
			w.LLM.Model = fl.llmModel
		}
		if set("custom-llm") {
			w.LLM.Custom = fl.customLLM
		}
		if set("input-tokens") {
			w.LLM.InputTokens = fl.inTokens
		}
		if set("output-tokens") {
			w.LLM.OutputTokens = fl.outTokens
		}
	}
	return nil
}
