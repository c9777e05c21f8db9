package federated

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Message types on the wire. The first four are upstream's; the last is ours
// and is only ever sent to the one client it concerns.
const (
	TypeSubscribe    = "subscribe"
	TypeClientJoin   = "CLIENT_JOIN"
	TypeUpdateWeight = "update_weight"
	TypeRecvWeight   = "recv_weight"
	TypeError        = "error"
)

// Exit flags of a recv_weight message.
const (
	ExitOK       = "ok"
	ExitContinue = "continue"
)

// BinarySubprotocol is the WebSocket subprotocol a Go client offers to send
// and receive weights as binary frames. Python clients offer none and get
// upstream's JSON.
const BinarySubprotocol = "sedna.fl.binary.v1"

// DType is the element type of binary layer values.
type DType byte

const (
	Float32 DType = 4
	Float64 DType = 8
)

func (d DType) valid() bool { return d == Float32 || d == Float64 }

// envelope is what every text frame is decoded into first. Unknown fields are
// ignored, as upstream's dict handling does.
type envelope struct {
	Type     string          `json:"type"`
	ClientID string          `json:"client_id"`
	Client   string          `json:"client"`
	JobName  string          `json:"job_name"`
	Data     json.RawMessage `json:"data"`
	// Sync is our extension of subscribe: a Go client asks for the current
	// global model right after the acknowledgement.
	Sync bool `json:"sync"`
}

// updateData is the "data" of update_weight. BaseRound and Metrics are our
// extensions (Go clients); Python clients send num_samples and weights only.
type updateData struct {
	NumSamples json.Number        `json:"num_samples"`
	Weights    json.RawMessage    `json:"weights"`
	BaseRound  *int               `json:"base_round,omitempty"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
}

// Update is one client's contribution to a round.
type Update struct {
	// Client is the sender's client_id.
	Client string
	// JobName is what the client sent as job_name.
	JobName string
	// NumSamples weighs the update in FedAvg.
	NumSamples int
	Weights    Weights
	// BaseRound is the round whose global model the client trained from
	// (0: the initial model), when the client says so; Python clients don't.
	BaseRound *int
	// Metrics are what the client measured on its own held-out data for the
	// weights it sends (Go clients only); they drive the target-metric stop.
	Metrics map[string]float64
}

func (u *Update) validate() error {
	if u.NumSamples < 0 {
		return fmt.Errorf("num_samples %d is negative", u.NumSamples)
	}
	if u.BaseRound != nil && *u.BaseRound < 0 {
		return fmt.Errorf("base_round %d is negative", *u.BaseRound)
	}
	if err := u.Weights.Validate(); err != nil {
		return err
	}
	for name, value := range u.Metrics {
		if math.IsNaN(value) || math.IsInf(value, 0) {
			return fmt.Errorf("metric %q is %v", name, value)
		}
	}
	return checkFinite(u.Weights)
}

func parseNumSamples(n json.Number) (int, error) {
	if n == "" {
		return 0, errors.New("num_samples is missing")
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		// Python may send 12.0 for a count computed with floats.
		f, ferr := strconv.ParseFloat(string(n), 64)
		if ferr != nil || f != math.Trunc(f) || f > math.MaxInt32 {
			return 0, fmt.Errorf("num_samples %q is not a whole number", n)
		}
		v = int64(f)
	}
	if v < 0 {
		return 0, fmt.Errorf("num_samples %d is negative", v)
	}
	if v > math.MaxInt32 {
		return 0, fmt.Errorf("num_samples %d is out of range", v)
	}
	return int(v), nil
}

// decodeJSONUpdate reads an update_weight text frame.
func decodeJSONUpdate(env envelope) (*Update, error) {
	if len(env.Data) == 0 {
		return nil, errors.New("update_weight has no data")
	}
	var data updateData
	decoder := json.NewDecoder(bytes.NewReader(env.Data))
	decoder.UseNumber()
	if err := decoder.Decode(&data); err != nil {
		return nil, fmt.Errorf("update_weight data: %w", err)
	}
	n, err := parseNumSamples(data.NumSamples)
	if err != nil {
		return nil, err
	}
	if len(data.Weights) == 0 || string(data.Weights) == "null" {
		return nil, errors.New("update_weight has no weights")
	}
	weights, err := parseJSONWeights(data.Weights)
	if err != nil {
		return nil, err
	}
	u := &Update{Client: env.Client, JobName: env.JobName, NumSamples: n, Weights: weights, BaseRound: data.BaseRound, Metrics: data.Metrics}
	if err := u.validate(); err != nil {
		return nil, err
	}
	return u, nil
}

// The text frames below are written by hand, in upstream's key order and
// with compact separators, so that they are the same bytes for every client
// and can be compared with the golden frames of the tests.

func appendJSONString(b []byte, s string) []byte {
	encoded, _ := json.Marshal(s) // a string always marshals
	return append(b, encoded...)
}

// subscribeFrame is the acknowledgement of a subscribe, echoed to every
// client: upstream re-sends the subscribe message itself.
func subscribeFrame(id string) []byte {
	b := []byte(`{"type":"subscribe","client_id":`)
	b = appendJSONString(b, id)
	return append(b, '}')
}

// clientJoinFrame tells existing clients about a new one.
func clientJoinFrame(id string) []byte {
	b := []byte(`{"type":"CLIENT_JOIN","data":`)
	b = appendJSONString(b, id)
	return append(b, '}')
}

// errorFrame tells one client why its message was refused. Python clients
// skip frames that are not recv_weight.
func errorFrame(reason string) []byte {
	b := []byte(`{"type":"error","data":`)
	b = appendJSONString(b, reason)
	return append(b, '}')
}

// Aggregate is the outcome of a round as clients receive it.
type Aggregate struct {
	// Round is the number of the round that produced the model (1 for the
	// first aggregation, 0 for "no aggregation yet").
	Round int
	// TotalSample is the sum of the contributors' num_samples.
	TotalSample int
	// Weights is nil when Round is 0 and no model was given at start.
	Weights Weights
	// Exit is ExitOK when training is over.
	Exit string
	// Client and JobName echo the last contributor, as upstream does.
	Client, JobName string
	// Metrics are the round's sample-weighted client metrics (binary frames
	// and checkpoints only).
	Metrics map[string]float64
	// The round's progress, for Go clients' reports (Progress; zero in a
	// model restored from a checkpoint).
	Progress
}

// Progress describes how a round closed. The server sends it to Go clients
// only (binary frames, and JSON frames of clients that subscribed with
// sync), as extra keys of recv_weight's data: "round_clients",
// "participants", "late_clients", "late_updates". Python clients never see
// them, so upstream's frames stay byte for byte.
type Progress struct {
	// RoundClients is the number of updates aggregated in the round.
	RoundClients int `json:"round_clients,omitempty"`
	// Participants is the job's PARTICIPANTS_COUNT.
	Participants int `json:"participants,omitempty"`
	// LateClients are the known clients that did not contribute to the
	// round (sorted; nil when everyone did).
	LateClients []string `json:"late_clients,omitempty"`
	// LateUpdates counts the updates the server discarded as late since it
	// started.
	LateUpdates int `json:"late_updates,omitempty"`
}

// recvWeightJSON is upstream's recv_weight: the last contributor's
// update_weight message with its type changed, its data replaced and
// round_number added at the end. extended adds the round's Progress to data
// (Go clients).
func recvWeightJSON(a *Aggregate, extended bool) []byte {
	b := make([]byte, 0, 64+a.Weights.NumParams()*20)
	b = append(b, `{"type":"recv_weight","client":`...)
	b = appendJSONString(b, a.Client)
	b = append(b, `,"data":{"total_sample":`...)
	b = strconv.AppendInt(b, int64(a.TotalSample), 10)
	b = append(b, `,"round_number":`...)
	b = strconv.AppendInt(b, int64(a.Round), 10)
	b = append(b, `,"weights":`...)
	b = appendJSONWeights(b, a.Weights)
	b = append(b, `,"exit_flag":`...)
	b = appendJSONString(b, a.Exit)
	if extended {
		b = append(b, `,"round_clients":`...)
		b = strconv.AppendInt(b, int64(a.RoundClients), 10)
		b = append(b, `,"participants":`...)
		b = strconv.AppendInt(b, int64(a.Participants), 10)
		b = append(b, `,"late_clients":[`...)
		for i, id := range a.LateClients {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, id)
		}
		b = append(b, `],"late_updates":`...)
		b = strconv.AppendInt(b, int64(a.LateUpdates), 10)
		if len(a.Metrics) > 0 {
			// Validated finite values (Update.validate); a map of
			// finite floats always marshals, keys sorted.
			if metrics, err := json.Marshal(a.Metrics); err == nil {
				b = append(b, `,"metrics":`...)
				b = append(b, metrics...)
			}
		}
	}
	b = append(b, `},"job_name":`...)
	b = appendJSONString(b, a.JobName)
	b = append(b, `,"round_number":`...)
	b = strconv.AppendInt(b, int64(a.Round), 10)
	return append(b, '}')
}

// Binary frames (negotiated with BinarySubprotocol) carry weights:
//
//	magic "SFLB" | version 1 | dtype (4 or 8) | 2 zero bytes | header length (uint32 LE)
//	| header JSON | values of every layer, in order, little-endian
//
// The header is the JSON message without its weights plus "shapes", the
// shape of each layer. WebSocket fragmentation does the chunking: gorilla
// writes a long message as a sequence of frames and the reader reassembles
// them up to the binary read limit.
var binaryMagic = [4]byte{'S', 'F', 'L', 'B'}

const (
	binaryVersion   = 1
	binaryPrefixLen = 12
	maxBinaryHeader = 16 << 20
)

type binaryHeader struct {
	Type        string             `json:"type"`
	Client      string             `json:"client,omitempty"`
	JobName     string             `json:"job_name,omitempty"`
	NumSamples  int                `json:"num_samples,omitempty"`
	BaseRound   *int               `json:"base_round,omitempty"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
	RoundNumber int                `json:"round_number,omitempty"`
	TotalSample int                `json:"total_sample,omitempty"`
	ExitFlag    string             `json:"exit_flag,omitempty"`
	Progress
	// Meta carries a checkpoint's own header.
	Meta json.RawMessage `json:"meta,omitempty"`
	// Shapes is nil when the message has no weights (a recv_weight before
	// the first round).
	Shapes [][]int `json:"shapes"`
}

func encodeBinary(h binaryHeader, w Weights, dtype DType) ([]byte, error) {
	if !dtype.valid() {
		return nil, fmt.Errorf("unknown dtype %d", dtype)
	}
	if w != nil {
		h.Shapes = make([][]int, len(w))
		for i, layer := range w {
			h.Shapes[i] = layer.Shape
			if h.Shapes[i] == nil {
				h.Shapes[i] = []int{}
			}
		}
	}
	header, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding binary header: %w", err)
	}
	out := make([]byte, binaryPrefixLen, binaryPrefixLen+len(header)+w.NumParams()*int(dtype))
	copy(out, binaryMagic[:])
	out[4], out[5] = binaryVersion, byte(dtype)
	binary.LittleEndian.PutUint32(out[8:], uint32(len(header)))
	out = append(out, header...)
	for _, layer := range w {
		for _, v := range layer.Values {
			if dtype == Float32 {
				out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(v)))
			} else {
				out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
			}
		}
	}
	return out, nil
}

// decodeBinary reads a binary frame; weights is nil when the header has no
// shapes.
func decodeBinary(frame []byte) (binaryHeader, Weights, DType, error) {
	var h binaryHeader
	if len(frame) < binaryPrefixLen || !bytes.Equal(frame[:4], binaryMagic[:]) {
		return h, nil, 0, errors.New("binary frame does not start with the SFLB prefix")
	}
	if frame[4] != binaryVersion {
		return h, nil, 0, fmt.Errorf("binary frame version %d is not %d", frame[4], binaryVersion)
	}
	dtype := DType(frame[5])
	if !dtype.valid() {
		return h, nil, 0, fmt.Errorf("binary frame dtype %d is neither 4 (float32) nor 8 (float64)", frame[5])
	}
	headerLen := binary.LittleEndian.Uint32(frame[8:])
	if headerLen > maxBinaryHeader || int(headerLen) > len(frame)-binaryPrefixLen {
		return h, nil, 0, fmt.Errorf("binary frame header length %d exceeds the frame", headerLen)
	}
	header := frame[binaryPrefixLen : binaryPrefixLen+int(headerLen)]
	if err := json.Unmarshal(header, &h); err != nil {
		return h, nil, 0, fmt.Errorf("binary frame header: %w", err)
	}
	payload := frame[binaryPrefixLen+int(headerLen):]
	if h.Shapes == nil {
		if len(payload) != 0 {
			return h, nil, 0, errors.New("binary frame has values but no shapes")
		}
		return h, nil, dtype, nil
	}
	if len(h.Shapes) > maxLayers {
		return h, nil, 0, fmt.Errorf("binary frame has %d layers, more than %d", len(h.Shapes), maxLayers)
	}
	size := int(dtype)
	total := 0
	for i, shape := range h.Shapes {
		n, err := shapeSize(shape)
		if err != nil {
			return h, nil, 0, fmt.Errorf("binary frame layer %d: %w", i, err)
		}
		total += n
		if total > len(payload)/size {
			return h, nil, 0, fmt.Errorf("binary frame shapes need more than its %d payload bytes", len(payload))
		}
	}
	if total*size != len(payload) {
		return h, nil, 0, fmt.Errorf("binary frame shapes need %d payload bytes, frame has %d", total*size, len(payload))
	}
	w := make(Weights, len(h.Shapes))
	for i, shape := range h.Shapes {
		n, _ := shapeSize(shape) // checked above
		values := make([]float64, n)
		for j := range values {
			if dtype == Float32 {
				values[j] = float64(math.Float32frombits(binary.LittleEndian.Uint32(payload)))
			} else {
				values[j] = math.Float64frombits(binary.LittleEndian.Uint64(payload))
			}
			payload = payload[size:]
		}
		w[i] = Layer{Shape: shape, Values: values}
	}
	return h, w, dtype, nil
}

// decodeBinaryUpdate reads an update_weight binary frame.
func decodeBinaryUpdate(frame []byte) (*Update, DType, error) {
	h, w, dtype, err := decodeBinary(frame)
	if err != nil {
		return nil, 0, err
	}
	if h.Type != TypeUpdateWeight {
		return nil, 0, fmt.Errorf("binary frame of type %q: only %s is sent as binary", h.Type, TypeUpdateWeight)
	}
	if w == nil {
		return nil, 0, errors.New("update_weight has no weights")
	}
	u := &Update{Client: h.Client, JobName: h.JobName, NumSamples: h.NumSamples, Weights: w, BaseRound: h.BaseRound, Metrics: h.Metrics}
	if err := u.validate(); err != nil {
		return nil, 0, err
	}
	return u, dtype, nil
}

func recvWeightBinary(a *Aggregate, dtype DType) ([]byte, error) {
	return encodeBinary(binaryHeader{
		Type: TypeRecvWeight, Client: a.Client, JobName: a.JobName, RoundNumber: a.Round,
		TotalSample: a.TotalSample, ExitFlag: a.Exit, Metrics: a.Metrics, Progress: a.Progress,
	}, a.Weights, dtype)
}

// parseRecvWeight reads a recv_weight frame of either kind (the Go client).
func parseRecvWeight(binaryFrame bool, frame []byte) (*Aggregate, error) {
	if binaryFrame {
		h, w, _, err := decodeBinary(frame)
		if err != nil {
			return nil, err
		}
		if h.Type != TypeRecvWeight {
			return nil, fmt.Errorf("binary frame of type %q, expected %s", h.Type, TypeRecvWeight)
		}
		return &Aggregate{Round: h.RoundNumber, TotalSample: h.TotalSample, Weights: w, Exit: h.ExitFlag, Client: h.Client, JobName: h.JobName, Metrics: h.Metrics, Progress: h.Progress}, nil
	}
	var msg struct {
		Client  string `json:"client"`
		JobName string `json:"job_name"`
		Data    struct {
			TotalSample int                `json:"total_sample"`
			RoundNumber int                `json:"round_number"`
			Weights     json.RawMessage    `json:"weights"`
			ExitFlag    string             `json:"exit_flag"`
			Metrics     map[string]float64 `json:"metrics"`
			Progress
		} `json:"data"`
	}
	if err := json.Unmarshal(frame, &msg); err != nil {
		return nil, fmt.Errorf("recv_weight: %w", err)
	}
	a := &Aggregate{Round: msg.Data.RoundNumber, TotalSample: msg.Data.TotalSample, Exit: msg.Data.ExitFlag, Client: msg.Client, JobName: msg.JobName,
		Metrics: msg.Data.Metrics, Progress: msg.Data.Progress}
	if len(msg.Data.Weights) > 0 && string(msg.Data.Weights) != "null" {
		w, err := parseJSONWeights(msg.Data.Weights)
		if err != nil {
			return nil, fmt.Errorf("recv_weight: %w", err)
		}
		a.Weights = w
	}
	return a, nil
}
