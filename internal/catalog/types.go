package catalog

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Records are SageMaker's and Application Auto Scaling's resource shapes:
// JSON member names are the services' own, so the protocol adapters can
// return them as they are. Timestamps marshal as epoch seconds, as AWS JSON
// protocols send them.

// Time is a timestamp that marshals as fractional epoch seconds.
type Time struct{ time.Time }

// Now returns the current time truncated to milliseconds.
func Now() Time { return Time{time.Now().UTC().Truncate(time.Millisecond)} }

// MarshalJSON writes epoch seconds with millisecond precision.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)), nil
}

// UnmarshalJSON reads epoch seconds (a number) or an RFC 3339 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		p, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return err
		}
		t.Time = p.UTC()
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC()
	return nil
}

// Tag is a resource tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// ContainerDefinition is CreateModel's PrimaryContainer.
type ContainerDefinition struct {
	Image             string            `json:"Image,omitempty"`
	ModelDataUrl      string            `json:"ModelDataUrl,omitempty"`
	Environment       map[string]string `json:"Environment,omitempty"`
	Mode              string            `json:"Mode,omitempty"`
	ContainerHostname string            `json:"ContainerHostname,omitempty"`
}

// Model is a SageMaker model: what to run and where its artifact is.
type Model struct {
	ModelName              string                `json:"ModelName"`
	ModelArn               string                `json:"ModelArn"`
	PrimaryContainer       *ContainerDefinition  `json:"PrimaryContainer,omitempty"`
	Containers             []ContainerDefinition `json:"Containers,omitempty"`
	ExecutionRoleArn       string                `json:"ExecutionRoleArn,omitempty"`
	EnableNetworkIsolation bool                  `json:"EnableNetworkIsolation,omitempty"`
	CreationTime           Time                  `json:"CreationTime"`
	Tags                   []Tag                 `json:"Tags,omitempty"`
}

// ServerlessConfig is a serverless variant's memory and concurrency.
type ServerlessConfig struct {
	MemorySizeInMB         int `json:"MemorySizeInMB"`
	MaxConcurrency         int `json:"MaxConcurrency"`
	ProvisionedConcurrency int `json:"ProvisionedConcurrency,omitempty"`
}

// RoutingConfig picks how a variant routes among its instances.
type RoutingConfig struct {
	RoutingStrategy string `json:"RoutingStrategy"` // LEAST_OUTSTANDING_REQUESTS | RANDOM
}

// ProductionVariant is one variant of an endpoint config.
type ProductionVariant struct {
	VariantName                                 string            `json:"VariantName"`
	ModelName                                   string            `json:"ModelName,omitempty"`
	InitialInstanceCount                        *int              `json:"InitialInstanceCount,omitempty"`
	InstanceType                                string            `json:"InstanceType,omitempty"`
	InitialVariantWeight                        *float64          `json:"InitialVariantWeight,omitempty"`
	ServerlessConfig                            *ServerlessConfig `json:"ServerlessConfig,omitempty"`
	RoutingConfig                               *RoutingConfig    `json:"RoutingConfig,omitempty"`
	ContainerStartupHealthCheckTimeoutInSeconds *int              `json:"ContainerStartupHealthCheckTimeoutInSeconds,omitempty"`
	ModelDataDownloadTimeoutInSeconds           *int              `json:"ModelDataDownloadTimeoutInSeconds,omitempty"`
	VolumeSizeInGB                              *int              `json:"VolumeSizeInGB,omitempty"`
}

// AsyncInferenceConfig makes an endpoint asynchronous (async issue).
type AsyncInferenceConfig struct {
	ClientConfig *struct {
		MaxConcurrentInvocationsPerInstance int `json:"MaxConcurrentInvocationsPerInstance,omitempty"`
	} `json:"ClientConfig,omitempty"`
	OutputConfig json.RawMessage `json:"OutputConfig,omitempty"`
}

// EndpointConfig is a named set of production variants.
type EndpointConfig struct {
	EndpointConfigName   string                `json:"EndpointConfigName"`
	EndpointConfigArn    string                `json:"EndpointConfigArn"`
	ProductionVariants   []ProductionVariant   `json:"ProductionVariants"`
	AsyncInferenceConfig *AsyncInferenceConfig `json:"AsyncInferenceConfig,omitempty"`
	DataCaptureConfig    json.RawMessage       `json:"DataCaptureConfig,omitempty"`
	KmsKeyId             string                `json:"KmsKeyId,omitempty"`
	CreationTime         Time                  `json:"CreationTime"`
	Tags                 []Tag                 `json:"Tags,omitempty"`
}

// Endpoint statuses (SageMaker's EndpointStatus enum).
const (
	StatusCreating     = "Creating"
	StatusInService    = "InService"
	StatusUpdating     = "Updating"
	StatusRollingBack  = "RollingBack"
	StatusDeleting     = "Deleting"
	StatusFailed       = "Failed"
	StatusOutOfService = "OutOfService"
)

// VariantState is what an endpoint wants of one variant now: it starts from
// the config and changes with UpdateEndpointWeightsAndCapacities and the
// autoscaler.
type VariantState struct {
	VariantName          string            `json:"VariantName"`
	DesiredInstanceCount int               `json:"DesiredInstanceCount"`
	DesiredWeight        float64           `json:"DesiredWeight"`
	ServerlessConfig     *ServerlessConfig `json:"DesiredServerlessConfig,omitempty"`
}

// Endpoint is a deployed endpoint config.
type Endpoint struct {
	EndpointName       string         `json:"EndpointName"`
	EndpointArn        string         `json:"EndpointArn"`
	EndpointConfigName string         `json:"EndpointConfigName"`
	EndpointStatus     string         `json:"EndpointStatus"`
	FailureReason      string         `json:"FailureReason,omitempty"`
	CreationTime       Time           `json:"CreationTime"`
	LastModifiedTime   Time           `json:"LastModifiedTime"`
	Variants           []VariantState `json:"Variants,omitempty"`
	Tags               []Tag          `json:"Tags,omitempty"`
}

// ScalableTarget is an Application Auto Scaling target
// (ResourceId endpoint/<ep>/variant/<v>, dimension sagemaker:variant:DesiredInstanceCount).
type ScalableTarget struct {
	ServiceNamespace  string          `json:"ServiceNamespace"`
	ResourceId        string          `json:"ResourceId"`
	ScalableDimension string          `json:"ScalableDimension"`
	MinCapacity       int             `json:"MinCapacity"`
	MaxCapacity       int             `json:"MaxCapacity"`
	RoleARN           string          `json:"RoleARN,omitempty"`
	ScalableTargetARN string          `json:"ScalableTargetARN,omitempty"`
	SuspendedState    json.RawMessage `json:"SuspendedState,omitempty"`
	CreationTime      Time            `json:"CreationTime"`
}

// MetricDimension is a CloudWatch dimension.
type MetricDimension struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

// PredefinedMetricSpecification names a predefined metric.
type PredefinedMetricSpecification struct {
	PredefinedMetricType string `json:"PredefinedMetricType"`
	ResourceLabel        string `json:"ResourceLabel,omitempty"`
}

// CustomizedMetricSpecification names a CloudWatch metric.
type CustomizedMetricSpecification struct {
	MetricName string            `json:"MetricName,omitempty"`
	Namespace  string            `json:"Namespace,omitempty"`
	Dimensions []MetricDimension `json:"Dimensions,omitempty"`
	Statistic  string            `json:"Statistic,omitempty"`
	Unit       string            `json:"Unit,omitempty"`
}

// TargetTrackingConfig is TargetTrackingScalingPolicyConfiguration.
type TargetTrackingConfig struct {
	TargetValue                   float64                        `json:"TargetValue"`
	PredefinedMetricSpecification *PredefinedMetricSpecification `json:"PredefinedMetricSpecification,omitempty"`
	CustomizedMetricSpecification *CustomizedMetricSpecification `json:"CustomizedMetricSpecification,omitempty"`
	ScaleOutCooldown              *int                           `json:"ScaleOutCooldown,omitempty"`
	ScaleInCooldown               *int                           `json:"ScaleInCooldown,omitempty"`
	DisableScaleIn                bool                           `json:"DisableScaleIn,omitempty"`
}

// ScalingPolicy is an Application Auto Scaling policy.
type ScalingPolicy struct {
	PolicyARN                                string                `json:"PolicyARN"`
	PolicyName                               string                `json:"PolicyName"`
	ServiceNamespace                         string                `json:"ServiceNamespace"`
	ResourceId                               string                `json:"ResourceId"`
	ScalableDimension                        string                `json:"ScalableDimension"`
	PolicyType                               string                `json:"PolicyType"`
	TargetTrackingScalingPolicyConfiguration *TargetTrackingConfig `json:"TargetTrackingScalingPolicyConfiguration,omitempty"`
	StepScalingPolicyConfiguration           json.RawMessage       `json:"StepScalingPolicyConfiguration,omitempty"`
	Alarms                                   []json.RawMessage     `json:"Alarms,omitempty"`
	CreationTime                             Time                  `json:"CreationTime"`
}
