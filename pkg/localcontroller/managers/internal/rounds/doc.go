// Package rounds is what the LC managers of the learning jobs (incremental and lifelong learning)
// share about a job's rounds: the state machine of train → eval → deploy (Next, a table that
// refuses every pair it does not list), whether GM's published status lags behind the LC's state
// (GMLags), the round a stage pod serves (PodRound), the events GM's published status and a
// worker's report bring (PublishedEvent, WorkerEvent), and the round history (AppendRound).
package rounds
