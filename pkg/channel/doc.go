// Package channel defines the frames that sedna-gm and sedna-lc exchange over their websocket:
// upstream Sedna's envelope (a header naming the resource and the operation, and a content that
// is JSON encoded as base64) extended with what reliable delivery needs — a sequence number, an
// acknowledgement, a resource version and an error for rejected reports.
//
// The package owns the wire format and its validation only. Delivery (desired state, resends,
// replay) lives in pkg/globalmanager/messagelayer and pkg/localcontroller/gmclient.
package channel
