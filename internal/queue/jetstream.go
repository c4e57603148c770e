package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures a JetStream queue. Zero values take the defaults noted.
type Config struct {
	// URL is an external NATS server or cluster; empty runs a server
	// embedded in the process with file storage under Dir and no network
	// listener (clients connect in-process).
	URL string
	Dir string
	// SyncAlways makes the embedded server fsync every write; without it
	// a stored message survives a process crash (it is in the kernel's
	// page cache) but not a power loss between periodic syncs.
	SyncAlways bool
	// Stream names the JetStream stream; default "INFERBOX_WORK". Its
	// subjects are "<lower-case stream>.<topic>".
	Stream string
	// Replicas for a stream on an external cluster; default 1.
	Replicas int
	// AckWait is the lease; default 60 s.
	AckWait time.Duration
	// MaxDeliver bounds deliveries before Exhausted; default 3.
	MaxDeliver int
	// PollWait is how long one pull request waits at the server before
	// Next asks again; default 5 s. Next returns as soon as a message
	// arrives, whatever this is.
	PollWait time.Duration
	Logger   *slog.Logger
}

// JetStream is a Queue on NATS JetStream. Create it with Open; Close it.
type JetStream struct {
	cfg    Config
	log    *slog.Logger
	ns     *server.Server // nil with an external URL
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	prefix string

	mu   sync.Mutex
	cons map[string]jetstream.Consumer

	drains    sync.WaitGroup // pulls abandoned by a cancelled Next; Close waits
	closing   chan struct{}  // closed by Close: drains stop
	closeOnce sync.Once
}

var _ Queue = (*JetStream)(nil)

// Open connects to (or starts) NATS and creates the stream if needed.
func Open(ctx context.Context, cfg Config) (*JetStream, error) {
	if cfg.Stream == "" {
		cfg.Stream = "INFERBOX_WORK"
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 60 * time.Second
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 3
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	q := &JetStream{cfg: cfg, log: cfg.Logger.With("component", "queue"), prefix: strings.ToLower(cfg.Stream), cons: map[string]jetstream.Consumer{}, closing: make(chan struct{})}
	var err error
	if cfg.URL == "" {
		if cfg.Dir == "" {
			return nil, errors.New("queue: Dir is required for the embedded server")
		}
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		q.ns, err = server.NewServer(&server.Options{
			ServerName: "inferbox", JetStream: true, StoreDir: cfg.Dir, SyncAlways: cfg.SyncAlways,
			DontListen: true, NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
		})
		if err != nil {
			return nil, fmt.Errorf("queue: embedded nats: %w", err)
		}
		q.ns.Start()
		if !q.ns.ReadyForConnections(30 * time.Second) {
			q.ns.Shutdown()
			return nil, errors.New("queue: embedded nats did not start")
		}
		q.nc, err = nats.Connect("", nats.InProcessServer(q.ns), nats.Name("inferbox"))
	} else {
		q.nc, err = nats.Connect(cfg.URL, nats.Name("inferbox"), nats.MaxReconnects(-1))
	}
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("queue: connect: %w", err)
	}
	if q.js, err = jetstream.New(q.nc); err != nil {
		q.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	q.stream, err = q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Stream, Subjects: []string{q.prefix + ".>"}, Storage: jetstream.FileStorage,
		Retention: jetstream.WorkQueuePolicy, Duplicates: 2 * time.Minute, Replicas: cfg.Replicas,
	})
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("queue: stream %s: %w", cfg.Stream, err)
	}
	if q.ns != nil {
		if err := q.releaseLeases(ctx); err != nil {
			q.Close()
			return nil, err
		}
	}
	return q, nil
}

// releaseLeases voids the leases held before a restart of the embedded
// server: no other process can hold them, so the messages they covered
// are delivered again at once instead of when the leases lapse. It
// deletes the durable consumers (the messages stay: the stream keeps
// every unacknowledged message), which also restarts their delivery
// counts.
func (q *JetStream) releaseLeases(ctx context.Context) error {
	names := q.stream.ConsumerNames(ctx)
	var all []string
	for n := range names.Name() {
		all = append(all, n)
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("queue: list consumers: %w", err)
	}
	for _, n := range all {
		if err := q.stream.DeleteConsumer(ctx, n); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("queue: release consumer %s: %w", n, err)
		}
	}
	return nil
}

// Conn is the NATS connection, for plain publishes (notifications).
func (q *JetStream) Conn() *nats.Conn { return q.nc }

// Close closes the connection and stops the embedded server. Stored
// messages stay on disk for the next Open. It is idempotent.
func (q *JetStream) Close() {
	q.closeOnce.Do(func() { close(q.closing) })
	if q.nc != nil {
		// Acks and nacks are published without waiting for a reply: flush
		// them so a nack at shutdown makes the message available at once.
		if !q.nc.IsClosed() {
			_ = q.nc.FlushTimeout(5 * time.Second)
		}
		q.nc.Close()
	}
	q.drains.Wait()
	if q.ns != nil {
		q.ns.Shutdown()
		q.ns.WaitForShutdown()
	}
}

func (q *JetStream) subject(topic string) string { return q.prefix + "." + topic }

// checkTopic refuses topics NATS cannot carry as one subject token.
func checkTopic(topic string) error {
	if topic == "" || strings.ContainsAny(topic, ".*> \t\r\n") {
		return fmt.Errorf("queue: bad topic %q", topic)
	}
	return nil
}

// Enqueue stores body under topic; it returns once JetStream acknowledged
// the write.
func (q *JetStream) Enqueue(ctx context.Context, topic, id string, body []byte) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	msg := &nats.Msg{Subject: q.subject(topic), Data: body, Header: nats.Header{}}
	msg.Header.Set("Inferbox-Id", id)
	_, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
	if err != nil {
		if q.nc.IsClosed() {
			return ErrClosed
		}
		return fmt.Errorf("queue: enqueue %s: %w", topic, err)
	}
	return nil
}

func (q *JetStream) consumer(ctx context.Context, topic string) (jetstream.Consumer, error) {
	q.mu.Lock()
	c := q.cons[topic]
	q.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := q.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: topic, FilterSubject: q.subject(topic), AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: q.cfg.AckWait, MaxDeliver: -1, MaxAckPending: 65536,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: consumer %s: %w", topic, err)
	}
	q.mu.Lock()
	q.cons[topic] = c
	q.mu.Unlock()
	return c, nil
}

// Next blocks until a message of topic is delivered or ctx ends.
func (q *JetStream) Next(ctx context.Context, topic string) (Delivery, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	c, err := q.consumer(ctx, topic)
	if err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if q.nc.IsClosed() {
			return nil, ErrClosed
		}
		wait := q.cfg.PollWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		if wait < time.Millisecond {
			return nil, context.DeadlineExceeded
		}
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(wait))
		if err != nil {
			if q.nc.IsClosed() {
				return nil, ErrClosed
			}
			return nil, fmt.Errorf("queue: fetch %s: %w", topic, err)
		}
		var got jetstream.Msg
		msgs := batch.Messages()
	read:
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					break read
				}
				got = m
			case <-ctx.Done():
				// The pull lapses at the server within its wait; a
				// message it delivers meanwhile is handed back at once
				// rather than left leased to nobody.
				q.drain(msgs)
				return nil, ctx.Err()
			}
		}
		if got != nil {
			return q.delivery(got)
		}
	}
}

// drain reads what is left of a pull whose Next was cancelled and hands
// each message back (Nak without delay), until the pull ends (its wait
// runs out) or Close begins; a message such a pull brings after that is
// released at the next Open (embedded server) or when its lease lapses.
func (q *JetStream) drain(msgs <-chan jetstream.Msg) {
	q.drains.Add(1)
	go func() {
		defer q.drains.Done()
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					return
				}
				_ = m.Nak()
			case <-q.closing:
				return
			}
		}
	}()
}

func (q *JetStream) delivery(m jetstream.Msg) (Delivery, error) {
	meta, err := m.Metadata()
	if err != nil {
		return nil, fmt.Errorf("queue: metadata: %w", err)
	}
	d := &delivery{msg: m, attempt: int(meta.NumDelivered), enqueued: meta.Timestamp, id: m.Headers().Get("Inferbox-Id")}
	d.exhausted = d.attempt > q.cfg.MaxDeliver
	return d, nil
}

// Depth counts a topic's stored messages and finds the oldest.
func (q *JetStream) Depth(ctx context.Context, topic string) (Depth, error) {
	subj := q.subject(topic)
	info, err := q.stream.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return Depth{}, fmt.Errorf("queue: depth %s: %w", topic, err)
	}
	n := int(info.State.Subjects[subj])
	if n == 0 {
		return Depth{}, nil
	}
	m, err := q.stream.GetMsg(ctx, info.State.FirstSeq, jetstream.WithGetMsgSubject(subj))
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return Depth{Messages: n}, nil
		}
		return Depth{}, fmt.Errorf("queue: oldest %s: %w", topic, err)
	}
	return Depth{Messages: n, Oldest: m.Time}, nil
}

type delivery struct {
	msg       jetstream.Msg
	id        string
	attempt   int
	exhausted bool
	enqueued  time.Time
}

func (d *delivery) ID() string          { return d.id }
func (d *delivery) Body() []byte        { return d.msg.Data() }
func (d *delivery) Attempt() int        { return d.attempt }
func (d *delivery) Exhausted() bool     { return d.exhausted }
func (d *delivery) Enqueued() time.Time { return d.enqueued }

func (d *delivery) Ack(ctx context.Context) error { return d.msg.DoubleAck(ctx) }

func (d *delivery) Nack(_ context.Context, delay time.Duration) error {
	if delay <= 0 {
		return d.msg.Nak()
	}
	return d.msg.NakWithDelay(delay)
}

func (d *delivery) InProgress(_ context.Context) error { return d.msg.InProgress() }

// Term acknowledges the message as terminated: on a work-queue stream
// JetStream treats it as an ack (the message is removed) and publishes a
// terminated-delivery advisory with the reason.
func (d *delivery) Term(_ context.Context, reason string) error {
	return d.msg.TermWithReason(reason)
}

// TopicStats is what JetStream knows of a topic's consumer, for tests and
// diagnostics: how often its messages were handed out and how many are
// waiting or leased now.
type TopicStats struct {
	Delivered   uint64 // deliveries so far, redeliveries included (since the last Open)
	Redelivered int    // messages leased now that were delivered before
	Waiting     uint64 // messages not yet delivered
	Leased      int    // messages delivered and not yet acked, nacked or termed
}

// Stats reads a topic's consumer info. A topic nobody called Next on yet
// has no consumer: its stats are zero.
func (q *JetStream) Stats(ctx context.Context, topic string) (TopicStats, error) {
	if err := checkTopic(topic); err != nil {
		return TopicStats{}, err
	}
	c, err := q.stream.Consumer(ctx, topic)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return TopicStats{}, nil
	}
	if err != nil {
		return TopicStats{}, fmt.Errorf("queue: stats %s: %w", topic, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return TopicStats{}, fmt.Errorf("queue: stats %s: %w", topic, err)
	}
	return TopicStats{Delivered: info.Delivered.Consumer, Redelivered: info.NumRedelivered, Waiting: info.NumPending, Leased: info.NumAckPending}, nil
}
