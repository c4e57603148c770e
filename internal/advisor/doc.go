// Package advisor owns `inferbox advise`: given a workload (latency need,
// payload size, processing time, traffic, LLM details), it says which
// inference mode fits it, why, and what each fitting mode would cost a
// month with what latency.
//
// The decision rules are written out in [Rules] and applied by [Advise].
// The costs come from a discrete-event replay of the traffic, in ticks of
// the autoscaler's own Tick (5 s by default; a real-time replay takes the
// tick and every other timing from RealtimeConfig.Timing, so it can mirror
// a server run with shortened timings), through each mode's scaling behaviour
// using the server's own decision code: real-time runs autoscale.Decide
// with a target-tracking policy on SageMakerVariantInvocationsPerInstance
// (MinCapacity 1); serverless and async run pool.Needed to start instances
// and pool.IdleVictims to stop idle ones (serverless down to zero after its
// idle timeout; async down to zero once its queue is empty for the async
// idle timeout). Batch is instance-hours for the daily volume; LLM modes
// are token prices (batch at the book's discount) or model-unit-hours.
// Prices come from internal/pricebook; a price the book lacks is an
// explicit "unpriced" cell, never zero.
//
// The replay is a fluid model inside a tick: arrivals in a tick are served
// up to the capacity of the instances present, the rest waits (queue wait
// is Little's law over the backlog). New instances are ready after the cold
// start; real-time instances added by a scale-out are ready at the next
// tick.
//
// [Recommend] turns the same replays on recorded usage: each endpoint's
// invocations in a period (from the meter ledger) are replayed through
// the other modes its latency need allows and compared with what
// cost.Compute says the recorded usage cost; LLM token rows get the
// input-token share, batch and provisioned-throughput lines.
//
// advisor imports autoscale, pool, catalog (policy records), pricebook,
// instancetype, meter (the ledger records) and cost (what recorded usage
// cost) only: never a mode service, an adapter or the composition root.
package advisor
