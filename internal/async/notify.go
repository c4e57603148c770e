package async

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Notifications go through a durable outbox: the worker enqueues the
// message (a queue topic of its own) and a separate sender delivers it,
// so a slow or dead webhook never holds up the endpoint's queue. Delivery
// is at least once: a webhook that does not answer 2xx is retried with
// exponential backoff (NotifyBackoff doubling, at most a minute) up to
// NotifyAttempts times; the message carries the inferenceId so receivers
// can drop duplicates.
//
// Topics: an http:// or https:// URL is a webhook (POST, JSON body); an
// SNS topic ARN is looked up in Config.Topics for its webhook URL; a
// "nats:<subject>" topic is published on the queue's NATS connection.

// Event is the notification message, in SageMaker's shape (success: the
// documented fields; failure: the same with invocationStatus "Failed",
// failureReason and responseParameters.failureLocation).
type Event struct {
	AwsRegion          string             `json:"awsRegion"`
	EventTime          string             `json:"eventTime"`
	ReceivedTime       string             `json:"receivedTime"`
	InvocationStatus   string             `json:"invocationStatus"`
	FailureReason      string             `json:"failureReason,omitempty"`
	RequestParameters  RequestParameters  `json:"requestParameters"`
	ResponseParameters ResponseParameters `json:"responseParameters"`
	InferenceID        string             `json:"inferenceId"`
	EventVersion       string             `json:"eventVersion"`
	EventSource        string             `json:"eventSource"`
	EventName          string             `json:"eventName"`
	ResponseBody       *ResponseBody      `json:"responseBody,omitempty"`
}

// RequestParameters describe the request in an Event.
type RequestParameters struct {
	ContentType   string `json:"contentType,omitempty"`
	EndpointName  string `json:"endpointName"`
	InputLocation string `json:"inputLocation,omitempty"`
}

// ResponseParameters say where the result is.
type ResponseParameters struct {
	ContentType     string `json:"contentType,omitempty"`
	OutputLocation  string `json:"outputLocation,omitempty"`
	FailureLocation string `json:"failureLocation,omitempty"`
}

// ResponseBody is the inline response (≤ 128 KB), base64.
type ResponseBody struct {
	Content  string `json:"content"`
	Encoding string `json:"encoding"`
}

const timeFormat = "2006-01-02T15:04:05.000Z"

// outboxItem is one notification waiting in the outbox.
type outboxItem struct {
	Topic string          `json:"topic"`
	Event json.RawMessage `json:"event"`
}

// notify puts a request's notification in the outbox, if its config has
// a topic for the outcome.
func (s *Service) notify(ctx context.Context, r *Request, success bool, reason string, inline []byte) {
	topic := r.ErrorTopic
	if success {
		topic = r.SuccessTopic
	}
	if topic == "" {
		return
	}
	ev := Event{
		AwsRegion: s.cfg.Region, EventTime: s.cfg.Now().UTC().Format(timeFormat), ReceivedTime: r.Received.UTC().Format(timeFormat),
		InvocationStatus:  "Completed",
		RequestParameters: RequestParameters{ContentType: r.ContentType, EndpointName: r.Endpoint, InputLocation: r.InputLocation},
		InferenceID:       r.InferenceID, EventVersion: "1.0", EventSource: "aws:sagemaker", EventName: "InferenceResult",
	}
	if success {
		ev.ResponseParameters = ResponseParameters{ContentType: r.Accept, OutputLocation: r.OutputLocation}
		if inline != nil {
			ev.ResponseBody = &ResponseBody{Content: base64.StdEncoding.EncodeToString(inline), Encoding: "BASE64"}
		}
	} else {
		ev.InvocationStatus, ev.FailureReason = "Failed", reason
		ev.ResponseParameters = ResponseParameters{ContentType: "text/plain", FailureLocation: r.FailureLocation}
		if r.InlineError && len(reason) <= MaxInlineResponse {
			ev.ResponseBody = &ResponseBody{Content: base64.StdEncoding.EncodeToString([]byte(reason)), Encoding: "BASE64"}
		}
	}
	evb, _ := json.Marshal(ev)
	item, _ := json.Marshal(outboxItem{Topic: topic, Event: evb})
	kind := "error"
	if success {
		kind = "success"
	}
	if err := s.q.Enqueue(ctx, notifyTopic, r.InferenceID+"/"+kind, item); err != nil {
		s.log.Error("notification outbox", "id", r.InferenceID, "err", err)
	}
}

const notifySenders = 4

// runNotifier delivers outbox items until ctx ends.
func (s *Service) runNotifier(ctx context.Context) {
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for range notifySenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				d, err := s.q.Next(ctx, notifyTopic)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
					continue
				}
				fin := finishCtx(ctx)
				var it outboxItem
				if err := json.Unmarshal(d.Body(), &it); err != nil {
					_ = d.Ack(fin.ctx)
					fin.cancel()
					continue
				}
				err = s.deliver(ctx, client, it)
				switch {
				case err == nil:
					_ = d.Ack(fin.ctx)
				case d.Attempt() >= s.cfg.NotifyAttempts || errors.Is(err, errUndeliverable):
					s.metrics.notifyFailed()
					s.log.Error("notification dropped", "id", d.ID(), "topic", it.Topic, "attempts", d.Attempt(), "err", err)
					_ = d.Ack(fin.ctx)
				default:
					delay := min(s.cfg.NotifyBackoff<<(d.Attempt()-1), time.Minute)
					s.metrics.notifyFailed()
					s.log.Warn("notification failed; retrying", "id", d.ID(), "topic", it.Topic, "attempt", d.Attempt(), "delay", delay, "err", err)
					_ = d.Nack(fin.ctx, delay)
				}
				fin.cancel()
			}
		}()
	}
	wg.Wait()
}

var errUndeliverable = errors.New("undeliverable topic")

func (s *Service) deliver(ctx context.Context, client *http.Client, it outboxItem) error {
	url := it.Topic
	switch {
	case strings.HasPrefix(it.Topic, "nats:"):
		if s.pub == nil {
			return fmt.Errorf("%w: no NATS connection for %s", errUndeliverable, it.Topic)
		}
		return s.pub.Publish(strings.TrimPrefix(it.Topic, "nats:"), it.Event)
	case strings.HasPrefix(it.Topic, "arn:"):
		u, ok := s.cfg.Topics[it.Topic]
		if !ok {
			return fmt.Errorf("%w: SNS topic %s is not mapped to a URL in async.topics", errUndeliverable, it.Topic)
		}
		url = u
	case strings.HasPrefix(it.Topic, "http://"), strings.HasPrefix(it.Topic, "https://"):
	default:
		return fmt.Errorf("%w: %s", errUndeliverable, it.Topic)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(it.Event))
	if err != nil {
		return fmt.Errorf("%w: %v", errUndeliverable, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
