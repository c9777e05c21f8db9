// Package store is the durable local store of sedna-lc: one bbolt file (by convention
// <dataDir>/lc.db) that survives restarts and offline periods of the edge node.
//
// It owns three things, each in its own bucket:
//
//   - resources: the objects bound to this node exactly as GM sent them (kind, namespace, name,
//     version, JSON). Writes are ordered by version and deletes leave a tombstone, so a replayed
//     or reordered frame from GM never rolls a resource back or resurrects a deleted one. A full
//     snapshot from GM ends with PruneExcept, which removes what GM no longer binds to the node.
//     A frame the store already has (a snapshot replayed on every reconnect) and a prune with
//     nothing to remove are decided in a read transaction: they commit, and fsync, nothing.
//   - state: small records of the LC managers (dataset sample counters, model records, trigger
//     and stage state of learning jobs), addressed by a namespace and a key.
//   - outbox: reports to GM, numbered by a sequence that never goes back or repeats, even across
//     restarts and after acknowledged entries are removed. Enqueue returns only once the report
//     is committed to disk, so a report the LC has accepted survives a crash and is replayed in
//     order by the GM client after it reconnects. Upstream's LC kept this queue in memory and
//     lost it on restart.
//
// The outbox is bounded in bytes (Options.MaxOutboxBytes, default 64 MiB) as well as in count.
// Each report has a Class: the LC's own reports (stage reports, dataset counts) may use the whole
// budget; reports relayed from workers, whom anything on the node network can impersonate or a
// buggy worker can turn into a flood, may use half of it, and their periodic metrics a quarter,
// so a flood can neither crowd out stage reports nor worker events. A worker-metrics report
// names a stream (owner, worker, phase) and replaces the queued report of its stream in the same
// transaction, so the outbox holds the newest state per worker however long the node is offline.
// A report that does not fit is refused with ErrOutboxFull; the store never discards a queued
// report to make room. The usage per class and the stream index are written in the same
// transaction as the entries and checked against them at Open, so a restart starts from the
// exact usage. OutboxStats reports usage, bounds and refusals for metrics.
//
// Every value is framed with a format byte, a record kind and a CRC32-C, so a damaged value is
// reported as an error naming its key (see CorruptError) instead of being handed out as data.
// Keys that combine several strings use an escaped, order-preserving tuple encoding, so no two
// distinct (kind, namespace, name) or (namespace, key) combinations can share a key, whatever
// characters they contain.
//
// The package knows nothing about the meaning of the objects, state records or reports it
// keeps: it does not parse them, talk to GM, or run managers. Delivery, acknowledgement and the
// snapshot protocol belong to pkg/localcontroller/gmclient; the managers own their records.
package store
