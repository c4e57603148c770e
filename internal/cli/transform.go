package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/catalog"
)

func transformCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "transform", Short: "Create, list, describe, stop and wait for batch transform jobs"}
	cmd.AddCommand(transformCreateCmd(g), transformListCmd(g), transformDescribeCmd(g), transformStopCmd(g), transformWaitCmd(g))
	return cmd
}

// transformFlags are the flags that define a job.
type transformFlags struct {
	model, input, output                 string
	contentType, accept, split, assemble string
	compression, strategy, instanceType  string
	instances, payloadMB, concurrent     int
	env                                  []string
}

func (f *transformFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.model, "model", "", "model to run")
	fl.StringVar(&f.input, "input", "", "input S3 prefix (s3://bucket/prefix/), file:// URL or path")
	fl.StringVar(&f.output, "output", "", "where the .out objects go")
	fl.StringVar(&f.contentType, "content-type", "text/csv", "the inputs' content type")
	fl.StringVar(&f.accept, "accept", "text/csv", "the outputs' content type")
	fl.StringVar(&f.split, "split", "Line", "SplitType: None, Line or RecordIO")
	fl.StringVar(&f.assemble, "assemble-with", "Line", "AssembleWith: None or Line")
	fl.StringVar(&f.compression, "compression", "", "CompressionType: None or Gzip")
	fl.StringVar(&f.strategy, "strategy", "", "BatchStrategy: MultiRecord or SingleRecord (default: the container's, else MultiRecord)")
	fl.StringVar(&f.instanceType, "instance-type", "ml.m5.large", "instance type")
	fl.IntVar(&f.instances, "instance-count", 1, "instances")
	fl.IntVar(&f.payloadMB, "max-payload-mb", 0, "MaxPayloadInMB (default: the container's, else 6)")
	fl.IntVar(&f.concurrent, "max-concurrent", 0, "MaxConcurrentTransforms per instance (default: the container's, else 1)")
	fl.StringArrayVar(&f.env, "env", nil, "container environment variable K=V (repeatable)")
}

func (f *transformFlags) job(cmd *cobra.Command, name string) (*catalog.TransformJob, error) {
	if err := required(cmd, "model", "input", "output"); err != nil {
		return nil, err
	}
	j := &catalog.TransformJob{
		TransformJobName: name, ModelName: f.model, BatchStrategy: f.strategy,
		TransformInput: catalog.TransformInput{
			DataSource:  catalog.TransformDataSource{S3DataSource: &catalog.S3DataSource{S3DataType: "S3Prefix", S3Uri: f.input}},
			ContentType: f.contentType, SplitType: f.split, CompressionType: f.compression,
		},
		TransformOutput:    catalog.TransformOutput{S3OutputPath: f.output, Accept: f.accept, AssembleWith: f.assemble},
		TransformResources: catalog.TransformResources{InstanceType: f.instanceType, InstanceCount: f.instances},
	}
	if f.payloadMB > 0 {
		j.MaxPayloadInMB = &f.payloadMB
	}
	if f.concurrent > 0 {
		j.MaxConcurrentTransforms = &f.concurrent
	}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &UsageError{Err: fmt.Errorf("--env %q: want K=V", kv), Usage: cmd.UseLine()}
		}
		if j.Environment == nil {
			j.Environment = map[string]string{}
		}
		j.Environment[k] = v
	}
	return j, nil
}

func transformCreateCmd(g *globals) *cobra.Command {
	var (
		f    transformFlags
		wait bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME --model MODEL --input URI --output URI [flags] [--wait]",
		Short: "Start a batch transform job",
		Args:  exactArgs(1, "a job name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := f.job(cmd, args[0])
			if err != nil {
				return err
			}
			if wait {
				if _, err := g.client().CreateTransformJob(cmd.Context(), j); err != nil {
					return err
				}
				return g.waitTransform(cmd, args[0])
			}
			var out catalog.TransformJob
			if ok, err := g.fetch(cmd, http.MethodPost, native.TransformJobPath(""), j, &out); !ok {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Started transform job %s (%s)\n", out.TransformJobName, out.TransformJobStatus)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the job ends, showing its progress")
	return cmd
}

func transformListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List transform jobs",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out native.TransformJobList
			if ok, err := g.fetch(cmd, http.MethodGet, native.TransformJobPath(""), nil, &out); !ok {
				return err
			}
			now := time.Now()
			t := newTable(cmd.OutOrStdout(), "NAME", "STATUS", "MODEL", "OBJECTS", "RECORDS", "CREATED")
			for _, j := range out.TransformJobs {
				objects, records := "-", "-"
				if p := j.Progress; p != nil {
					objects = fmt.Sprintf("%d/%d", p.ObjectsCompleted, p.ObjectsTotal)
					records = fmt.Sprint(p.RecordsProcessed)
				}
				t.row(j.TransformJobName, j.TransformJobStatus, j.ModelName, objects, records, ago(j.CreationTime, now))
			}
			return t.flush()
		},
	}
}

func transformDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a transform job and its progress",
		Args:  exactArgs(1, "a job name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var j catalog.TransformJob
			if ok, err := g.fetch(cmd, http.MethodGet, native.TransformJobPath(args[0]), nil, &j); !ok {
				return err
			}
			return printTransform(cmd.OutOrStdout(), &j, time.Now())
		},
	}
}

func printTransform(w io.Writer, j *catalog.TransformJob, now time.Time) error {
	input := ""
	if ds := j.TransformInput.DataSource.S3DataSource; ds != nil {
		input = ds.S3Uri
	}
	return fields(w,
		"Name", j.TransformJobName,
		"ARN", j.TransformJobArn,
		"Status", j.TransformJobStatus,
		"Failure reason", j.FailureReason,
		"Model", j.ModelName,
		"Input", input,
		"Output", j.TransformOutput.S3OutputPath,
		"Instances", fmt.Sprintf("%d × %s", j.TransformResources.InstanceCount, j.TransformResources.InstanceType),
		"Progress", progressLine(j.Progress),
		"Created", stamp(j.CreationTime, now),
		"Started", stamp(j.TransformStartTime, now),
		"Ended", stamp(j.TransformEndTime, now),
	)
}

// progressLine is "3/10 objects, 12.0/40.0 MB, 1234 records, about 5s left".
func progressLine(p *catalog.TransformProgress) string {
	if p == nil {
		return ""
	}
	s := fmt.Sprintf("%d/%d objects, %s/%s, %d records", p.ObjectsCompleted, p.ObjectsTotal,
		mb(p.BytesProcessed), mb(p.BytesTotal), p.RecordsProcessed)
	if e := p.EstimatedSecondsRemaining; e != nil {
		s += fmt.Sprintf(", about %s left", time.Duration(*e)*time.Second)
	}
	return s
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func transformStopCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stop NAME",
		Short: "Stop a transform job (its outputs are deleted)",
		Args:  exactArgs(1, "a job name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var j catalog.TransformJob
			if ok, err := g.fetch(cmd, http.MethodPost, native.TransformJobPath(args[0])+"/stop", nil, &j); !ok {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Stopping transform job %s (%s)\n", j.TransformJobName, j.TransformJobStatus)
			return nil
		},
	}
}

func transformWaitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait NAME",
		Short: "Wait for a transform job to end, showing a progress bar on a terminal",
		Long: "Wait polls the job until it is Completed, Stopped or Failed. On a terminal it draws a progress " +
			"bar of the input bytes read on stderr; otherwise it prints a line on stderr whenever the progress " +
			"changes. A Failed job exits 1 with its reason.",
		Args: exactArgs(1, "a job name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.waitTransform(cmd, args[0])
		},
	}
}

// waitTransform polls a job until it ends, drawing its progress on stderr.
func (g *globals) waitTransform(cmd *cobra.Command, name string) error {
	ctx := cmd.Context()
	c := g.client()
	deadline := time.Now().Add(g.timeout)
	w := newProgressView(cmd.ErrOrStderr(), name)
	for {
		j, err := c.DescribeTransformJob(ctx, name)
		if err != nil {
			return err
		}
		w.show(j)
		switch j.TransformJobStatus {
		case catalog.TransformCompleted, catalog.TransformStopped, catalog.TransformFailed:
			w.finish(j)
			if g.json {
				b, err := c.Raw(ctx, http.MethodGet, native.TransformJobPath(name), nil)
				if err != nil {
					return err
				}
				if err := printJSON(cmd.OutOrStdout(), b); err != nil {
					return err
				}
			}
			if j.TransformJobStatus == catalog.TransformFailed {
				return fmt.Errorf("transform job %s failed: %s", name, j.FailureReason)
			}
			if !g.json {
				fmt.Fprintf(cmd.OutOrStdout(), "Transform job %s %s: %s\n", name, j.TransformJobStatus, progressLine(j.Progress))
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("transform job %s: still %s after %s", name, j.TransformJobStatus, g.timeout)
		}
		if err := sleep(ctx, g.poll); err != nil {
			return err
		}
	}
}

// progressView draws a job's progress: a bar on a terminal, else a line
// per change.
type progressView struct {
	w    io.Writer
	name string
	bar  *progressbar.ProgressBar // nil when w is not a terminal
	tty  bool
	last string
}

func newProgressView(w io.Writer, name string) *progressView {
	f, ok := w.(*os.File)
	return &progressView{w: w, name: name, tty: ok && term.IsTerminal(int(f.Fd()))}
}

func (v *progressView) show(j *catalog.TransformJob) {
	p := j.Progress
	if !v.tty || p == nil {
		line := fmt.Sprintf("transform job %s: %s", v.name, j.TransformJobStatus)
		if pl := progressLine(p); pl != "" {
			line += " (" + pl + ")"
		}
		if line != v.last {
			fmt.Fprintln(v.w, line)
			v.last = line
		}
		return
	}
	if v.bar == nil {
		v.bar = progressbar.NewOptions64(max(p.BytesTotal, 1),
			progressbar.OptionSetWriter(v.w),
			progressbar.OptionSetDescription(v.name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
	}
	v.bar.Describe(fmt.Sprintf("%s %d/%d objects, %d records", v.name, p.ObjectsCompleted, p.ObjectsTotal, p.RecordsProcessed))
	// Bytes are read ahead of the outputs being written: the bar stays
	// short of its end until the job has ended.
	_ = v.bar.Set64(min(p.BytesProcessed, max(p.BytesTotal-1, 0)))
}

// finish completes the bar (a Completed job) or leaves it where it stopped,
// and ends its line.
func (v *progressView) finish(j *catalog.TransformJob) {
	if v.bar == nil {
		return
	}
	if j.TransformJobStatus == catalog.TransformCompleted {
		if p := j.Progress; p != nil {
			v.bar.Describe(fmt.Sprintf("%s %d/%d objects, %d records", v.name, p.ObjectsCompleted, p.ObjectsTotal, p.RecordsProcessed))
		}
		_ = v.bar.Finish()
	} else {
		_ = v.bar.Exit()
	}
	fmt.Fprintln(v.w)
}
