package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/api/native"
)

// defaultUploadTo is where invoke-async --file puts inputs by default.
const defaultUploadTo = "s3://inferbox-async-inputs"

type invokeAsyncFlags struct {
	file, input, uploadTo, output  string
	contentType, accept, attrs, id string
	wait, noProgress               bool
}

func invokeAsyncCmd(g *globals) *cobra.Command {
	var fl invokeAsyncFlags
	cmd := &cobra.Command{
		Use:   "invoke-async ENDPOINT (--file PATH | --input s3://BUCKET/KEY) [--wait [--output PATH]]",
		Short: "Queue a request on an async endpoint; with --wait, wait for it and write the output",
		Long: `Queue a request on an asynchronous endpoint (InvokeEndpointAsync).

--file uploads a local file to the server's object store first (under
--upload-to, default ` + defaultUploadTo + `, created if missing); --input names
an object already there. Without --wait it prints the inference id and where
the output and failure objects will be. With --wait it polls the request's
status, then downloads the output to --output (default: stdout), or fails with
the failure object's reason. Progress bars go to stderr (--no-progress: none).`,
		Args: exactArgs(1, "an endpoint name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (fl.file == "") == (fl.input == "") {
				return &UsageError{Err: errors.New("give exactly one of --file and --input"), Usage: cmd.UseLine()}
			}
			if fl.output != "" && !fl.wait {
				return &UsageError{Err: errors.New("--output needs --wait"), Usage: cmd.UseLine()}
			}
			return g.invokeAsync(cmd, args[0], fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.file, "file", "", "local file to upload and use as the input")
	f.StringVar(&fl.input, "input", "", "input already in the object store (s3://bucket/key)")
	f.StringVar(&fl.uploadTo, "upload-to", defaultUploadTo, "where --file is uploaded (s3://bucket[/prefix])")
	f.StringVar(&fl.contentType, "content-type", "text/csv", "MIME type of the input")
	f.StringVar(&fl.accept, "accept", "", "MIME type wanted for the output")
	f.StringVar(&fl.attrs, "custom-attributes", "", "X-Amzn-SageMaker-Custom-Attributes for the model")
	f.StringVar(&fl.id, "inference-id", "", "inference id (default: a new UUID)")
	f.BoolVar(&fl.wait, "wait", false, "wait for the request to finish and write its output")
	f.StringVar(&fl.output, "output", "", "with --wait: file to write the output to (default: stdout)")
	f.BoolVar(&fl.noProgress, "no-progress", false, "no progress bars on stderr")
	return cmd
}

// s3Client is an S3 client for the server's embedded object store, signed
// with the CLI's access key (any key when the server has none).
func (g *globals) s3Client() *s3.Client {
	key := g.accessKey
	if key == "" {
		key = g.envAccessKey
	}
	id, secret, _ := strings.Cut(key, ":")
	if id == "" {
		id, secret = "inferbox", "inferbox"
	}
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(g.server), UsePathStyle: true, Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "inferbox"}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func (g *globals) invokeAsync(cmd *cobra.Command, endpoint string, fl invokeAsyncFlags) error {
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	input := fl.input
	if fl.file != "" {
		var err error
		if input, err = g.upload(ctx, fl.file, fl.uploadTo, stderr, fl.noProgress); err != nil {
			return err
		}
	}
	c := g.client()
	acc, err := c.InvokeAsync(ctx, endpoint, native.AsyncInvokeInput{
		InputLocation: input, ContentType: fl.contentType, Accept: fl.accept,
		CustomAttributes: fl.attrs, InferenceId: fl.id,
	})
	if err != nil {
		return err
	}
	if !fl.wait {
		if g.json {
			return json.NewEncoder(cmd.OutOrStdout()).Encode(acc)
		}
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "InferenceId:     %s\nInputLocation:   %s\nOutputLocation:  %s\nFailureLocation: %s\n",
			acc.InferenceId, input, acc.OutputLocation, acc.FailureLocation)
		return err
	}
	st, err := g.waitAsync(ctx, c, endpoint, acc.InferenceId, stderr, fl.noProgress)
	if err != nil {
		return err
	}
	if st.Status == "Failed" {
		return fmt.Errorf("inference %s failed (%s): %s", st.InferenceId, st.FailureLocation, st.FailureReason)
	}
	out := cmd.OutOrStdout()
	if fl.output != "" {
		f, err := os.Create(fl.output)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := g.download(ctx, st.OutputLocation, f, stderr, fl.noProgress); err != nil {
			return err
		}
		return f.Close()
	}
	return g.download(ctx, st.OutputLocation, out, stderr, fl.noProgress)
}

func newBar(max int64, desc string, w io.Writer, hidden bool) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w), progressbar.OptionSetVisibility(!hidden),
		progressbar.OptionSetDescription(desc), progressbar.OptionShowBytes(max >= 0),
		progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
}

// progressFile reads a file into a progress bar; Seek (the SDK rewinds
// to retry) moves the bar with it.
type progressFile struct {
	f   *os.File
	bar *progressbar.ProgressBar
}

func (p *progressFile) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	_ = p.bar.Add(n)
	return n, err
}

func (p *progressFile) Seek(off int64, whence int) (int64, error) {
	pos, err := p.f.Seek(off, whence)
	if err == nil {
		_ = p.bar.Set64(pos)
	}
	return pos, err
}

// upload puts a local file under dest (s3://bucket[/prefix]), creating the
// bucket if needed, and returns its location.
func (g *globals) upload(ctx context.Context, path, dest string, stderr io.Writer, quiet bool) (string, error) {
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(dest, "s3://"), "/")
	if !strings.HasPrefix(dest, "s3://") || bucket == "" {
		return "", fmt.Errorf("--upload-to %q: want s3://bucket[/prefix]", dest)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	client := g.s3Client()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		var owned *s3types.BucketAlreadyOwnedByYou
		var exists *s3types.BucketAlreadyExists
		if !errors.As(err, &owned) && !errors.As(err, &exists) {
			return "", fmt.Errorf("create bucket %s: %w", bucket, err)
		}
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	key := strings.Trim(prefix+"/"+hex.EncodeToString(rnd[:])+"/"+filepath.Base(path), "/")
	bar := newBar(info.Size(), "upload", stderr, quiet)
	// The body streams unsigned (UNSIGNED-PAYLOAD): nothing reads a large
	// file twice to hash it first.
	_, err = client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: &progressFile{f: f, bar: bar},
		ContentLength: aws.Int64(info.Size()),
	}, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", path, err)
	}
	_ = bar.Finish()
	return "s3://" + bucket + "/" + key, nil
}

// waitAsync polls an inference's status until it is no longer Pending,
// showing a spinner.
func (g *globals) waitAsync(ctx context.Context, c *native.Client, endpoint, id string, stderr io.Writer, quiet bool) (*native.AsyncInvocation, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	bar := newBar(-1, "waiting for "+id, stderr, quiet)
	defer func() { _ = bar.Finish() }()
	t := time.NewTicker(g.poll)
	defer t.Stop()
	for {
		st, err := c.AsyncStatus(ctx, endpoint, id)
		if err != nil {
			return nil, err
		}
		if st.Status != "Pending" {
			return st, nil
		}
		_ = bar.Add(1)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("inference %s still pending after %s: %w", id, g.timeout, ctx.Err())
		case <-t.C:
		}
	}
}

// download copies an object to w with a progress bar.
func (g *globals) download(ctx context.Context, uri string, w io.Writer, stderr io.Writer, quiet bool) error {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
	out, err := g.s3Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("download %s: %w", uri, err)
	}
	defer out.Body.Close()
	bar := newBar(aws.ToInt64(out.ContentLength), "download", stderr, quiet)
	if _, err := io.Copy(io.MultiWriter(w, bar), out.Body); err != nil {
		return fmt.Errorf("download %s: %w", uri, err)
	}
	return bar.Finish()
}
