package channel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Operations. insert/update/delete flow from GM to LC, status (a report) from LC to GM, ack both
// ways, and sync closes the snapshot GM sends on every (re)connect.
const (
	OpInsert = "insert"
	// OpUpdate is accepted as an insert: upstream's GM sent it and upstream's LC dropped it.
	OpUpdate = "update"
	OpDelete = "delete"
	OpStatus = "status"
	OpAck    = "ack"
	OpSync   = "sync"
)

// StoreIDHeader carries the identity of the LC's store when it connects. Report sequence numbers
// are only comparable within one store: when an LC's store is wiped and numbering starts again,
// GM sees a new identity and forgets the last sequence number it saw for the node.
const StoreIDHeader = "Sedna-Store-Id"

// DefaultMaxFrameBytes bounds one frame on the wire. Objects larger than etcd's 1.5 MiB request
// limit cannot exist, so 4 MiB leaves room for base64 and the envelope.
const DefaultMaxFrameBytes = 4 << 20

// Header names the resource a frame is about, as in upstream's envelope.
type Header struct {
	Namespace    string `json:"namespace"`
	ResourceKind string `json:"resourceKind"`
	ResourceName string `json:"resourceName"`
	Operation    string `json:"operation"`
}

// Frame is one websocket text message.
type Frame struct {
	Header Header `json:"header"`
	// Content is the JSON document the operation carries (the object, or the report).
	Content []byte `json:"content,omitempty"`
	// Seq numbers frames that must be acknowledged: GM numbers its frames per connection, the LC
	// uses the durable outbox sequence of the report.
	Seq uint64 `json:"seq,omitempty"`
	// Ack is the Seq of the frame an ack frame acknowledges.
	Ack uint64 `json:"ack,omitempty"`
	// Version orders the states of one resource (the object's resourceVersion); the receiver
	// drops a frame older than what it has.
	Version uint64 `json:"version,omitempty"`
	// Error says why a report was rejected; set only on acks.
	Error string `json:"error,omitempty"`
}

// Key identifies a resource on the channel: lower-case kind, namespace and name.
type Key struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

func (k Key) String() string { return k.Kind + "/" + k.Namespace + "/" + k.Name }

// Key returns the key of the resource the header names.
func (h Header) Key() Key {
	return Key{Kind: strings.ToLower(h.ResourceKind), Namespace: h.Namespace, Name: h.ResourceName}
}

// SyncEntry is one resource present in a snapshot; a sync frame's content is a list of them.
type SyncEntry struct {
	Key
	Version uint64 `json:"version"`
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed frame")

// Encode marshals a frame.
func Encode(f *Frame) ([]byte, error) {
	return AppendEncode(nil, f)
}

func encodeSlow(f *Frame) ([]byte, error) {
	data, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encoding %s frame for %s: %w", f.Header.Operation, f.Header.Key(), err)
	}
	return data, nil
}

// Decode parses and validates one frame of at most maxBytes. Errors wrap ErrMalformed and say
// what is wrong; nothing a peer sends can make it panic.
func Decode(data []byte, maxBytes int) (*Frame, error) {
	if maxBytes > 0 && len(data) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes exceed the limit of %d", ErrMalformed, len(data), maxBytes)
	}
	f, ok := decodeFast(data)
	if !ok {
		var err error
		if f, err = decodeSlow(data); err != nil {
			return nil, err
		}
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

func decodeSlow(data []byte) (*Frame, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f Frame
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the frame", ErrMalformed)
	}
	return &f, nil
}

// Validate checks that the frame is well-formed for its operation.
func (f *Frame) Validate() error {
	h := f.Header
	switch h.Operation {
	case OpAck:
		if f.Ack == 0 {
			return fmt.Errorf("%w: ack without the acknowledged sequence number", ErrMalformed)
		}
		return nil
	case OpSync:
		if f.Seq == 0 {
			return fmt.Errorf("%w: sync without a sequence number", ErrMalformed)
		}
		return nil
	case OpInsert, OpUpdate, OpDelete, OpStatus:
	case "":
		return fmt.Errorf("%w: missing header.operation", ErrMalformed)
	default:
		return fmt.Errorf("%w: unknown operation %q", ErrMalformed, truncate(h.Operation))
	}
	if f.Seq == 0 {
		return fmt.Errorf("%w: %s frame without a sequence number", ErrMalformed, h.Operation)
	}
	if err := validateKey(h); err != nil {
		return err
	}
	if h.Operation != OpDelete && len(f.Content) == 0 {
		return fmt.Errorf("%w: %s frame for %s without content", ErrMalformed, h.Operation, h.Key())
	}
	if len(f.Content) > 0 && !json.Valid(f.Content) {
		return fmt.Errorf("%w: content of the %s frame for %s is not JSON", ErrMalformed, h.Operation, h.Key())
	}
	return nil
}

func validateKey(h Header) error {
	kind := h.ResourceKind
	if kind == "" || len(kind) > 63 || strings.Trim(strings.ToLower(kind), "abcdefghijklmnopqrstuvwxyz") != "" {
		return fmt.Errorf("%w: resourceKind %q is not a kind name", ErrMalformed, truncate(kind))
	}
	if !isDNSLabel(h.Namespace) {
		if errs := validation.IsDNS1123Label(h.Namespace); len(errs) > 0 {
			return fmt.Errorf("%w: namespace %q: %s", ErrMalformed, truncate(h.Namespace), strings.Join(errs, "; "))
		}
	}
	if !isDNSSubdomain(h.ResourceName) {
		if errs := validation.IsDNS1123Subdomain(h.ResourceName); len(errs) > 0 {
			return fmt.Errorf("%w: resourceName %q: %s", ErrMalformed, truncate(h.ResourceName), strings.Join(errs, "; "))
		}
	}
	return nil
}

// isDNSLabel and isDNSSubdomain accept only names that validation.IsDNS1123Label and
// IsDNS1123Subdomain accept, without their regular expressions; a name they refuse is checked
// again by those functions, which say what is wrong.
func isDNSLabel(s string) bool {
	return len(s) <= validation.DNS1123LabelMaxLength && isLabelChars(s)
}

// isLabelChars reports whether s is a non-empty run of lower-case letters, digits and inner dashes.
func isLabelChars(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

func isDNSSubdomain(s string) bool {
	if len(s) == 0 || len(s) > validation.DNS1123SubdomainMaxLength {
		return false
	}
	// A subdomain's labels are not limited to 63 characters, only the whole name.
	for label := range strings.SplitSeq(s, ".") {
		if !isLabelChars(label) {
			return false
		}
	}
	return true
}

// truncate keeps error messages short whatever a peer sends.
func truncate(s string) string {
	const limit = 64
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}
