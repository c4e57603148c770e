package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrock"
	bdtypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"
)

// The custom-model commands speak the server's Bedrock control plane
// (CreateModelImportJob and the imported-model operations) with the AWS
// SDK, signed with --access-key's id and secret.

// bedrockClient is a Bedrock control-plane client for the server. Without
// an access key it signs with placeholder credentials, which a server
// without access keys accepts.
func (g *globals) bedrockClient() *bedrock.Client {
	key := g.accessKey
	if key == "" {
		key = g.envAccessKey
	}
	id, secret, ok := strings.Cut(key, ":")
	if !ok || id == "" {
		id, secret = "inferbox", "inferbox"
	}
	return bedrock.New(bedrock.Options{
		Region:           "us-east-1", // the server verifies the signature's own region
		Credentials:      credentials.NewStaticCredentialsProvider(id, secret, ""),
		BaseEndpoint:     aws.String(g.server),
		RetryMaxAttempts: 1,
	})
}

// apiMessage turns an SDK error into the server's message.
func apiMessage(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}

func customModelCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "custom-model",
		Short: "Import GGUF files as custom models (served through provisioned throughput only)",
		Long: `Custom models are GGUF files imported into the server (Bedrock's
CreateModelImportJob). Like Bedrock's custom models, they serve only through a
provisioned throughput created on them (aws bedrock
create-provisioned-model-throughput --model-id ARN); naming one directly in
InvokeModel or Converse is refused.`,
	}
	cmd.AddCommand(customImportCmd(g), customListCmd(g), customDescribeCmd(g), customDeleteCmd(g))
	return cmd
}

func customImportCmd(g *globals) *cobra.Command {
	var jobName, role string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "import NAME SOURCE [--job-name NAME] [--role-arn ARN] [--no-wait]",
		Short: "Import a .gguf file (a local path or an s3:// URI in the server's store) as custom model NAME",
		Long: `Start a model import job for SOURCE: an s3:// URI naming a .gguf object or a
prefix holding exactly one, or a local path. A local path is made absolute
and read by the server itself, so it must be on the server's machine. The
command waits for the job and prints the imported model's ARN; --no-wait
prints the job's ARN at once.`,
		Args: exactArgs(2, "NAME and SOURCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, source := args[0], args[1]
			if !strings.Contains(source, "://") {
				abs, err := filepath.Abs(source)
				if err != nil {
					return err
				}
				source = abs
			}
			if jobName == "" {
				jobName = fmt.Sprintf("import-%s-%d", name, time.Now().Unix())
			}
			bc := g.bedrockClient()
			ctx := cmd.Context()
			out, err := bc.CreateModelImportJob(ctx, &bedrock.CreateModelImportJobInput{
				JobName: aws.String(jobName), ImportedModelName: aws.String(name), RoleArn: aws.String(role),
				ModelDataSource: &bdtypes.ModelDataSourceMemberS3DataSource{Value: bdtypes.S3DataSource{S3Uri: aws.String(source)}},
			})
			if err != nil {
				return apiMessage(err)
			}
			if noWait {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), *out.JobArn)
				return err
			}
			job, err := g.waitImport(ctx, bc, *out.JobArn)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd, job)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), aws.ToString(job.ImportedModelArn))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&jobName, "job-name", "", "the import job's name (default import-NAME-<unix time>)")
	f.StringVar(&role, "role-arn", "arn:aws:iam::000000000000:role/inferbox-import", "roleArn sent with the job (Bedrock requires one; inferbox records it)")
	f.BoolVar(&noWait, "no-wait", false, "print the job's ARN and return without waiting")
	return cmd
}

// waitImport polls the job until it leaves InProgress; a Failed job is an
// error carrying its failure message.
func (g *globals) waitImport(ctx context.Context, bc *bedrock.Client, arn string) (*bedrock.GetModelImportJobOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	tick := time.NewTicker(g.poll)
	defer tick.Stop()
	for {
		job, err := bc.GetModelImportJob(ctx, &bedrock.GetModelImportJobInput{JobIdentifier: aws.String(arn)})
		if err != nil {
			return nil, apiMessage(err)
		}
		switch job.Status {
		case bdtypes.ModelImportJobStatusCompleted:
			return job, nil
		case bdtypes.ModelImportJobStatusFailed:
			return nil, fmt.Errorf("import job %s failed: %s", aws.ToString(job.JobName), aws.ToString(job.FailureMessage))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("import job %s: still %s after %s", aws.ToString(job.JobName), job.Status, g.timeout)
		case <-tick.C:
		}
	}
}

// writeJSON prints an SDK output as indented JSON (its exported members).
func writeJSON(cmd *cobra.Command, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return printJSON(cmd.OutOrStdout(), b)
}

func customListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the imported custom models",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bc := g.bedrockClient()
			var all []bdtypes.ImportedModelSummary
			p := bedrock.NewListImportedModelsPaginator(bc, &bedrock.ListImportedModelsInput{SortOrder: bdtypes.SortOrderAscending})
			for p.HasMorePages() {
				page, err := p.NextPage(cmd.Context())
				if err != nil {
					return apiMessage(err)
				}
				all = append(all, page.ModelSummaries...)
			}
			if g.json {
				return writeJSON(cmd, map[string]any{"ModelSummaries": all})
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "ARCHITECTURE", "INSTRUCT", "CREATED", "ARN")
			for _, m := range all {
				t.row(aws.ToString(m.ModelName), aws.ToString(m.ModelArchitecture), aws.ToBool(m.InstructSupported),
					aws.ToTime(m.CreationTime).UTC().Format(time.RFC3339), aws.ToString(m.ModelArn))
			}
			return t.flush()
		},
	}
}

func customDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME|ARN",
		Short: "Describe an imported custom model",
		Args:  exactArgs(1, "a model name or ARN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.bedrockClient().GetImportedModel(cmd.Context(), &bedrock.GetImportedModelInput{ModelIdentifier: aws.String(args[0])})
			if err != nil {
				return apiMessage(err)
			}
			if g.json {
				return writeJSON(cmd, m)
			}
			source := ""
			if s, ok := m.ModelDataSource.(*bdtypes.ModelDataSourceMemberS3DataSource); ok {
				source = aws.ToString(s.Value.S3Uri)
			}
			return fields(cmd.OutOrStdout(),
				"Name", aws.ToString(m.ModelName),
				"ARN", aws.ToString(m.ModelArn),
				"Architecture", aws.ToString(m.ModelArchitecture),
				"Instruct", fmt.Sprint(aws.ToBool(m.InstructSupported)),
				"Source", source,
				"Job", aws.ToString(m.JobName),
				"Created", aws.ToTime(m.CreationTime).UTC().Format(time.RFC3339))
		},
	}
}

func customDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME|ARN",
		Short: "Delete an imported custom model (refused while a provisioned throughput uses it)",
		Args:  exactArgs(1, "a model name or ARN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := g.bedrockClient().DeleteImportedModel(cmd.Context(), &bedrock.DeleteImportedModelInput{ModelIdentifier: aws.String(args[0])}); err != nil {
				return apiMessage(err)
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Deleted custom model %s\n", args[0])
			return err
		},
	}
}
