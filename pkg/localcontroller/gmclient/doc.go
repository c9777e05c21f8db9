// Package gmclient is sedna-lc's end of the GM↔LC channel: it dials GM's websocket over TLS,
// presents the node's projected service-account token, applies what GM sends to the local store
// and delivers the local store's outbox of reports to GM.
//
// It owns:
//
//   - the connection: dialling with exponential backoff and full jitter, re-reading the token
//     and the CA bundle on every dial (both rotate), pings and deadlines that detect half-open
//     connections;
//   - downstream application: every insert, update, delete and sync frame is written to the
//     store first and acknowledged only after the write committed, so a crash between the two
//     makes GM resend instead of losing the change; the Handler hears about a change only when
//     the store accepted it, so replays and stale versions reach no manager;
//   - upstream delivery: the outbox is sent in sequence order with a bounded window of
//     unacknowledged reports and replayed from its first pending entry after every reconnect.
//     GM drops what it has already seen, which turns at-least-once into exactly once in GM's
//     view. A report GM rejects is logged and dropped, because resending it cannot succeed;
//   - the outbox payload format (Report, EncodeReport, DecodeReport, EnqueueReport,
//     EnqueueReportAs) and the outbox's metrics (sedna_lc_outbox_*: budget, bytes and reports
//     per class, refusals per class, coalesced reports).
//
// It does not interpret the objects GM sends or the reports managers write, does not decide
// what a change means (the Handler does), and never edits the store except through its
// resource and outbox operations.
package gmclient
