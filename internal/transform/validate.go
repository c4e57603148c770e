package transform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/objstore"
)

// Limits from SageMaker's API (botocore service model).
const (
	defaultPayloadMB  = 6
	maxPayloadMB      = 100
	defaultTimeoutSec = 600
	maxTimeoutSec     = 3600
	defaultRetries    = 3
	maxRetries        = 3
	maxInstances      = 100
	maxEnvironment    = 16
	maxEnvValue       = 10240
)

func enum(problems *[]string, value, field string, allowed ...string) {
	if value != "" && !slices.Contains(allowed, value) {
		*problems = append(*problems, fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: [%s]", value, field, strings.Join(allowed, ", ")))
	}
}

func required(problems *[]string, value, field string) bool {
	if value == "" {
		*problems = append(*problems, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", field))
		return false
	}
	return true
}

// validate checks a CreateTransformJob request and fills its defaults.
func (s *Service) validate(ctx context.Context, j *catalog.TransformJob) error {
	var problems []string
	if required(&problems, j.TransformJobName, "transformJobName") && (len(j.TransformJobName) > 63 || !jobNamePattern.MatchString(j.TransformJobName)) {
		problems = append(problems, fmt.Sprintf("Value '%s' at 'transformJobName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", j.TransformJobName))
	}
	required(&problems, j.ModelName, "modelName")
	in := &j.TransformInput
	if ds := in.DataSource.S3DataSource; ds == nil {
		required(&problems, "", "transformInput.dataSource.s3DataSource")
	} else {
		required(&problems, ds.S3DataType, "transformInput.dataSource.s3DataSource.s3DataType")
		enum(&problems, ds.S3DataType, "transformInput.dataSource.s3DataSource.s3DataType", "S3Prefix", "ManifestFile")
		if required(&problems, ds.S3Uri, "transformInput.dataSource.s3DataSource.s3Uri") {
			if _, err := objstore.Parse(ds.S3Uri); err != nil {
				problems = append(problems, fmt.Sprintf("Value '%s' at 'transformInput.dataSource.s3DataSource.s3Uri' is not a valid S3 URI: %v", ds.S3Uri, err))
			}
		}
	}
	enum(&problems, in.CompressionType, "transformInput.compressionType", "None", "Gzip")
	enum(&problems, in.SplitType, "transformInput.splitType", "None", "Line", "RecordIO")
	out := &j.TransformOutput
	if required(&problems, out.S3OutputPath, "transformOutput.s3OutputPath") {
		if l, err := objstore.Parse(out.S3OutputPath); err != nil {
			problems = append(problems, fmt.Sprintf("Value '%s' at 'transformOutput.s3OutputPath' is not a valid S3 URI: %v", out.S3OutputPath, err))
		} else if l.Scheme == "s3" && l.Bucket == "" {
			problems = append(problems, fmt.Sprintf("Value '%s' at 'transformOutput.s3OutputPath' names no bucket", out.S3OutputPath))
		}
	}
	enum(&problems, out.AssembleWith, "transformOutput.assembleWith", "None", "Line")
	enum(&problems, j.BatchStrategy, "batchStrategy", "MultiRecord", "SingleRecord")
	res := &j.TransformResources
	required(&problems, res.InstanceType, "transformResources.instanceType")
	if res.InstanceCount < 1 || res.InstanceCount > maxInstances {
		problems = append(problems, fmt.Sprintf("Value '%d' at 'transformResources.instanceCount' failed to satisfy constraint: Member must have value between 1 and %d", res.InstanceCount, maxInstances))
	}
	if p := j.MaxPayloadInMB; p != nil && (*p < 0 || *p > maxPayloadMB) {
		problems = append(problems, fmt.Sprintf("Value '%d' at 'maxPayloadInMB' failed to satisfy constraint: Member must have value between 0 and %d", *p, maxPayloadMB))
	}
	if m := j.MaxConcurrentTransforms; m != nil && *m < 0 {
		problems = append(problems, fmt.Sprintf("Value '%d' at 'maxConcurrentTransforms' failed to satisfy constraint: Member must have value greater than or equal to 0", *m))
	}
	if c := j.ModelClientConfig; c != nil {
		if c.InvocationsTimeoutInSeconds != 0 && (c.InvocationsTimeoutInSeconds < 1 || c.InvocationsTimeoutInSeconds > maxTimeoutSec) {
			problems = append(problems, fmt.Sprintf("Value '%d' at 'modelClientConfig.invocationsTimeoutInSeconds' failed to satisfy constraint: Member must have value between 1 and %d", c.InvocationsTimeoutInSeconds, maxTimeoutSec))
		}
		if c.InvocationsMaxRetries < 0 || c.InvocationsMaxRetries > maxRetries {
			problems = append(problems, fmt.Sprintf("Value '%d' at 'modelClientConfig.invocationsMaxRetries' failed to satisfy constraint: Member must have value between 0 and %d", c.InvocationsMaxRetries, maxRetries))
		}
	}
	if len(j.Environment) > maxEnvironment {
		problems = append(problems, fmt.Sprintf("Value at 'environment' failed to satisfy constraint: Member must have length less than or equal to %d", maxEnvironment))
	}
	for k, v := range j.Environment {
		if len(v) > maxEnvValue {
			problems = append(problems, fmt.Sprintf("Value at 'environment.%s' failed to satisfy constraint: Member must have length less than or equal to %d", k, maxEnvValue))
		}
	}
	if dp := j.DataProcessing; dp != nil {
		enum(&problems, dp.JoinSource, "dataProcessing.joinSource", "None", "Input")
		for _, f := range []struct{ v, field string }{{dp.InputFilter, "inputFilter"}, {dp.OutputFilter, "outputFilter"}} {
			if len(f.v) > 63 {
				problems = append(problems, fmt.Sprintf("Value '%s' at 'dataProcessing.%s' failed to satisfy constraint: Member must have length less than or equal to 63", f.v, f.field))
			}
		}
	}
	if len(problems) > 0 {
		return validationErrors(problems)
	}
	// Rules across fields, as SageMaker words them.
	if p, m := j.MaxPayloadInMB, j.MaxConcurrentTransforms; p != nil && m != nil && *p**m > maxPayloadMB {
		return apierr.Validationf("MaxConcurrentTransforms (%d) * MaxPayloadInMB (%d) must not exceed %d MB.", *m, *p, maxPayloadMB)
	}
	if err := checkDataProcessing(j); err != nil {
		return err
	}
	if c := j.ModelClientConfig; c == nil {
		j.ModelClientConfig = &catalog.ModelClientConfig{InvocationsTimeoutInSeconds: defaultTimeoutSec, InvocationsMaxRetries: defaultRetries}
	} else if c.InvocationsTimeoutInSeconds == 0 {
		c.InvocationsTimeoutInSeconds = defaultTimeoutSec
	}
	if _, err := s.deps.Hosting.StartFuncFor(ctx, j.ModelName, res.InstanceType, "batch", j.TransformJobName, nil); err != nil {
		return err
	}
	if err := s.deps.Hosting.CheckCapacity(res.InstanceType, res.InstanceCount); err != nil {
		if errors.Is(err, instancetype.ErrInsufficientCapacity) {
			return apierr.New(apierr.LimitExceeded, "The node cannot run this job's instances: %v", err)
		}
		return err
	}
	return nil
}

// checkDataProcessing parses the filters and checks the formats they need.
func checkDataProcessing(j *catalog.TransformJob) error {
	dp := j.DataProcessing
	if dp == nil {
		return nil
	}
	in, err := parsePath(dp.InputFilter)
	if err != nil {
		return apierr.Validationf("Invalid InputFilter: %v", err)
	}
	out, err := parsePath(dp.OutputFilter)
	if err != nil {
		return apierr.Validationf("Invalid OutputFilter: %v", err)
	}
	if in.whole() && out.whole() && dp.JoinSource != "Input" {
		return nil
	}
	inFmt, ok1 := formatOf(j.TransformInput.ContentType)
	outFmt, ok2 := formatOf(j.TransformOutput.Accept)
	if j.TransformOutput.Accept == "" {
		outFmt, ok2 = formatCSV, true // the built-in runtimes answer text/csv by default
	}
	if !ok1 || !ok2 {
		return apierr.Validationf("DataProcessing needs ContentType and Accept among text/csv, application/json and application/jsonlines (got %q and %q).", j.TransformInput.ContentType, j.TransformOutput.Accept)
	}
	if j.TransformInput.SplitType != "Line" {
		return apierr.Validationf("DataProcessing needs SplitType Line: filters and joins apply to records one line each.")
	}
	if inFmt == formatCSV && !in.indexOnly() {
		return apierr.Validationf("Invalid InputFilter %q: CSV records are arrays of columns, so only index filters ($[1:], $[0,2]) apply.", dp.InputFilter)
	}
	joined := outFmt
	if dp.JoinSource == "Input" {
		joined = inFmt
	}
	if joined == formatCSV && !out.indexOnly() {
		return apierr.Validationf("Invalid OutputFilter %q: CSV records are arrays of columns, so only index filters ($[1:], $[0,2]) apply.", dp.OutputFilter)
	}
	return nil
}

func validationErrors(problems []string) error {
	noun := "error"
	if len(problems) > 1 {
		noun = "errors"
	}
	return apierr.Validationf("%d validation %s detected: %s", len(problems), noun, strings.Join(problems, "; "))
}
