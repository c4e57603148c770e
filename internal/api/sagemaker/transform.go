package sagemaker

import (
	"net/http"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/transform"
)

// RegisterTransform adds the batch transform operations to the control
// plane's op table.
func RegisterTransform(svc *awsproto.JSONService, t *transform.Service) {
	tc := &transformControl{t: t}
	svc.Ops["CreateTransformJob"] = tc.create
	svc.Ops["DescribeTransformJob"] = tc.describe
	svc.Ops["ListTransformJobs"] = tc.list
	svc.Ops["StopTransformJob"] = tc.stop
}

type transformControl struct{ t *transform.Service }

type jobNameInput struct{ TransformJobName string }

func (c *transformControl) create(r *http.Request, body []byte) (any, error) {
	var in catalog.TransformJob
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	j, err := c.t.Create(r.Context(), &in)
	if err != nil {
		return nil, err
	}
	return map[string]string{"TransformJobArn": j.TransformJobArn}, nil
}

func (c *transformControl) describe(r *http.Request, body []byte) (any, error) {
	var in jobNameInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	j, err := c.t.Describe(r.Context(), in.TransformJobName)
	if err != nil {
		return nil, err
	}
	out := *j
	out.Tags = nil
	return out, nil
}

func (c *transformControl) stop(r *http.Request, body []byte) (any, error) {
	var in jobNameInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	return nil, c.t.Stop(r.Context(), in.TransformJobName)
}

func (c *transformControl) list(r *http.Request, body []byte) (any, error) {
	var in listInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	js, err := c.t.List(r.Context())
	if err != nil {
		return nil, err
	}
	items := make([]listItem, 0, len(js))
	for _, j := range js {
		v := map[string]any{
			"TransformJobName": j.TransformJobName, "TransformJobArn": j.TransformJobArn,
			"CreationTime": j.CreationTime, "TransformJobStatus": j.TransformJobStatus,
		}
		if !j.TransformEndTime.IsZero() {
			v["TransformEndTime"] = j.TransformEndTime
			v["LastModifiedTime"] = j.TransformEndTime
		}
		if j.FailureReason != "" {
			v["FailureReason"] = j.FailureReason
		}
		modified := j.TransformEndTime
		if modified.IsZero() {
			modified = j.CreationTime
		}
		items = append(items, listItem{name: j.TransformJobName, created: j.CreationTime, modified: modified, status: j.TransformJobStatus, value: v})
	}
	page, next, err := in.apply(items)
	if err != nil {
		return nil, err
	}
	return listOutput("TransformJobSummaries", page, next), nil
}
