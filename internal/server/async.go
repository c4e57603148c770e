package server

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/inferbox/inferbox/internal/async"
	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/hosting"
	"github.com/inferbox/inferbox/internal/queue"
)

// openQueue opens the durable queue: an embedded NATS JetStream under
// <data>/queue, or the configured external NATS.
func openQueue(ctx context.Context, cfg config.Config, log *slog.Logger) (*queue.JetStream, error) {
	return queue.Open(ctx, queue.Config{
		URL:        cfg.Queue.URL,
		Dir:        filepath.Join(cfg.Data, "queue"),
		SyncAlways: cfg.Queue.SyncAlways,
		AckWait:    cfg.Queue.AckWait.D(),
		MaxDeliver: cfg.Queue.MaxDeliver,
		Logger:     log,
	})
}

// newAsync builds the async mode over hosting, the queue and storage, and
// feeds its backlog into hosting's autoscaling statistics.
func newAsync(cfg config.Config, h *hosting.Service, q *queue.JetStream, st storage, log *slog.Logger) *async.Service {
	a := async.New(async.Config{
		Region:         cfg.Region,
		MaxDeliver:     cfg.Queue.MaxDeliver,
		RetryDelay:     cfg.Async.RetryDelay.D(),
		MinRequestTTL:  cfg.Async.MinRequestTTL.D(),
		LeaseRenew:     max(cfg.Queue.AckWait.D()/3, 1),
		Topics:         cfg.Async.Topics,
		NotifyAttempts: cfg.Async.NotifyAttempts,
		IndexRetention: cfg.Async.IndexRetention.D(),
		CapacityPoll:   cfg.Async.CapacityPoll.D(),
	}, h, q, st.objects, q.Conn(), log)
	h.SetBacklog(a.BacklogSize)
	return a
}

// startAsync starts the async workers for the endpoints hosting restored.
func (s *Server) startAsync(ctx context.Context) error {
	eps, err := s.hosting.ListEndpoints(ctx)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(eps))
	for _, ep := range eps {
		names = append(names, ep.EndpointName)
	}
	s.async.Start(names)
	return nil
}
