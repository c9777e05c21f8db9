package gmclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Report is one outbox entry: a report about a resource bound to this node. It becomes a status
// frame whose Seq is the entry's outbox sequence number.
type Report struct {
	// Key names the resource; GM accepts the report only if the resource is bound to this node.
	Key channel.Key
	// Content is the report body, a JSON document (for a dataset {"numberOfSamples":N}).
	Content []byte
}

// reportPayload is the stored form. Content is kept as raw JSON rather than base64 so an
// operator inspecting the store can read it.
type reportPayload struct {
	Key     channel.Key     `json:"key"`
	Content json.RawMessage `json:"content"`
}

// maxReportFrameBytes is the largest report accepted into the outbox: GM's default frame limit.
// Rejecting larger reports here keeps the outbox free of entries that could never be delivered.
const maxReportFrameBytes = channel.DefaultMaxFrameBytes

// EncodeReport validates r and returns the outbox payload for it. The kind is lowered because GM
// compares kinds case-insensitively and the store keys resources by the lower-case kind.
func EncodeReport(r Report) ([]byte, error) {
	r.Key.Kind = strings.ToLower(r.Key.Kind)
	frame := r.frame(1)
	// The frame this report will become must pass GM's validation, or GM would ignore it
	// without an acknowledgement and it would be resent on every reconnect forever.
	if err := frame.Validate(); err != nil {
		return nil, fmt.Errorf("encoding report about %s: %w", r.Key, err)
	}
	wire, err := channel.Encode(&frame)
	if err != nil {
		return nil, fmt.Errorf("encoding report about %s: %w", r.Key, err)
	}
	if len(wire) > maxReportFrameBytes {
		return nil, fmt.Errorf("encoding report about %s: the frame would be %d bytes, more than the channel's limit of %d", r.Key, len(wire), maxReportFrameBytes)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, r.Content); err != nil {
		return nil, fmt.Errorf("encoding report about %s: compacting content: %w", r.Key, err)
	}
	payload, err := json.Marshal(reportPayload{Key: r.Key, Content: compact.Bytes()})
	if err != nil {
		return nil, fmt.Errorf("encoding report about %s: %w", r.Key, err)
	}
	return payload, nil
}

// DecodeReport parses an outbox payload written by EncodeReport and validates it again: the
// payload comes from disk and may have been written by another version.
func DecodeReport(payload []byte) (Report, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var p reportPayload
	if err := dec.Decode(&p); err != nil {
		return Report{}, fmt.Errorf("decoding report: %w", err)
	}
	if dec.More() {
		return Report{}, fmt.Errorf("decoding report about %s: trailing data after the payload", p.Key)
	}
	r := Report{Key: p.Key, Content: []byte(p.Content)}
	if r.Key.Kind != strings.ToLower(r.Key.Kind) {
		return Report{}, fmt.Errorf("decoding report about %s: kind is not lower case", r.Key)
	}
	frame := r.frame(1)
	if err := frame.Validate(); err != nil {
		return Report{}, fmt.Errorf("decoding report about %s: %w", r.Key, err)
	}
	return r, nil
}

// EnqueueReport stores a report of the LC's own about key in the outbox and returns its
// sequence number. It returns once the report is durable; call Client.Notify afterwards to send
// it at once.
func EnqueueReport(st *store.Store, key channel.Key, content []byte) (uint64, error) {
	return EnqueueReportAs(st, key, content, store.EnqueueOptions{})
}

// EnqueueReportAs is EnqueueReport for a report with its class and stream (see
// store.EnqueueOptions): relayed worker reports, and worker metrics that replace the queued
// report of their stream. An error wrapping store.ErrOutboxFull means the report did not fit
// in what its class may use of the outbox.
func EnqueueReportAs(st *store.Store, key channel.Key, content []byte, opts store.EnqueueOptions) (uint64, error) {
	payload, err := EncodeReport(Report{Key: key, Content: content})
	if err != nil {
		return 0, err
	}
	seq, err := st.EnqueueWith(payload, opts)
	if err != nil {
		return 0, fmt.Errorf("queueing report about %s: %w", key, err)
	}
	return seq, nil
}

// frame returns the status frame carrying r as outbox entry seq.
func (r Report) frame(seq uint64) channel.Frame {
	return channel.Frame{
		Header: channel.Header{
			Namespace:    r.Key.Namespace,
			ResourceKind: r.Key.Kind,
			ResourceName: r.Key.Name,
			Operation:    channel.OpStatus,
		},
		Content: r.Content,
		Seq:     seq,
	}
}
