package v1alpha1

// TransmitterKind names how a federated job's workers exchange weights. The values are what
// upstream's GM writes into the workers' TRANSMITTER environment variable.
type TransmitterKind string

// Transmitter kinds.
const (
	// TransmitterWS exchanges weights over the aggregation worker's websocket.
	TransmitterWS TransmitterKind = "ws"
	// TransmitterS3 exchanges weights through the bucket path of spec.transmitter.s3.
	TransmitterS3 TransmitterKind = "s3"
)

// Effective is the transmitter the workers use, with upstream's precedence: s3 whenever it is set,
// even if ws is set too; otherwise ws, which is also what a job without a transmitter (t nil) or
// with an empty one gets.
func (t *Transmitter) Effective() TransmitterKind {
	if t != nil && t.S3 != nil {
		return TransmitterS3
	}
	return TransmitterWS
}

// Ignored returns a warning when the spec sets a transmitter that Effective overrides (ws next to
// s3), for the controller's Warning event, and "" otherwise. Setting both is accepted because
// upstream's samples do it.
func (t *Transmitter) Ignored() string {
	if t != nil && t.S3 != nil && t.WS != nil {
		return "spec.transmitter sets both s3 and ws; s3 is used and ws is ignored"
	}
	return ""
}
