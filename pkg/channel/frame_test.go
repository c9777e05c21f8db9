package channel

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeAcceptsValidFrames(t *testing.T) {
	cases := map[string]Frame{
		"insert": {Header: Header{Namespace: "default", ResourceKind: "dataset", ResourceName: "ds-1", Operation: OpInsert},
			Content: []byte(`{"spec":{}}`), Seq: 1, Version: 42},
		"upstream upper-case kind": {Header: Header{Namespace: "ns", ResourceKind: "IncrementalLearningJob", ResourceName: "job", Operation: OpStatus},
			Content: []byte(`{"phase":"train"}`), Seq: 7},
		"delete without content": {Header: Header{Namespace: "ns", ResourceKind: "model", ResourceName: "m.v1", Operation: OpDelete}, Seq: 3},
		"ack":                    {Header: Header{Operation: OpAck}, Ack: 9},
		"ack with error":         {Header: Header{Operation: OpAck}, Ack: 9, Error: "not bound to this node"},
		"sync":                   {Header: Header{Operation: OpSync}, Seq: 4, Content: []byte(`[]`)},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			data, err := Encode(&f)
			require.NoError(t, err)
			got, err := Decode(data, DefaultMaxFrameBytes)
			require.NoError(t, err)
			require.Equal(t, f, *got)
		})
	}
}

func TestDecodeContentIsBase64LikeUpstream(t *testing.T) {
	data, err := Encode(&Frame{Header: Header{Namespace: "n", ResourceKind: "dataset", ResourceName: "d", Operation: OpStatus},
		Content: []byte(`{"numberOfSamples":3}`), Seq: 1})
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(data, &raw))
	require.Equal(t, "eyJudW1iZXJPZlNhbXBsZXMiOjN9", raw["content"])
}

func TestDecodeRejectsMalformedFrames(t *testing.T) {
	cases := map[string]struct {
		frame string
		want  string
	}{
		"not json":           {`{"header":`, "unexpected EOF"},
		"trailing data":      {`{"header":{"operation":"ack"},"ack":1} {}`, "trailing data"},
		"unknown field":      {`{"header":{"operation":"ack"},"ack":1,"extra":1}`, `unknown field "extra"`},
		"missing operation":  {`{"header":{}}`, "missing header.operation"},
		"unknown operation":  {`{"header":{"operation":"explode"},"seq":1}`, `unknown operation "explode"`},
		"ack without seq":    {`{"header":{"operation":"ack"}}`, "ack without"},
		"insert without seq": {`{"header":{"namespace":"a","resourceKind":"dataset","resourceName":"b","operation":"insert"},"content":"e30="}`, "without a sequence number"},
		"bad kind":           {`{"header":{"namespace":"a","resourceKind":"data/set","resourceName":"b","operation":"status"},"seq":1,"content":"e30="}`, "resourceKind"},
		"bad namespace":      {`{"header":{"namespace":"../etc","resourceKind":"dataset","resourceName":"b","operation":"status"},"seq":1,"content":"e30="}`, "namespace"},
		"bad name":           {`{"header":{"namespace":"a","resourceKind":"dataset","resourceName":"B!","operation":"status"},"seq":1,"content":"e30="}`, "resourceName"},
		"no content":         {`{"header":{"namespace":"a","resourceKind":"dataset","resourceName":"b","operation":"status"},"seq":1}`, "without content"},
		"content not json":   {`{"header":{"namespace":"a","resourceKind":"dataset","resourceName":"b","operation":"status"},"seq":1,"content":"bm90IGpzb24="}`, "not JSON"},
		"content not base64": {`{"header":{"namespace":"a","resourceKind":"dataset","resourceName":"b","operation":"status"},"seq":1,"content":"%%%"}`, "illegal base64"},
		"negative seq":       {`{"header":{"operation":"ack"},"ack":-1}`, "cannot unmarshal"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(tc.frame), DefaultMaxFrameBytes)
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrMalformed), "error does not wrap ErrMalformed: %v", err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestDecodeEnforcesMaxSize(t *testing.T) {
	big := `{"header":{"operation":"ack"},"ack":1,"error":"` + strings.Repeat("x", 2000) + `"}`
	_, err := Decode([]byte(big), 1024)
	require.ErrorIs(t, err, ErrMalformed)
	require.Contains(t, err.Error(), "exceed the limit of 1024")
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"header":{"namespace":"a","resourceKind":"dataset","resourceName":"b","operation":"insert"},"content":"e30=","seq":1,"version":2}`))
	f.Add([]byte(`{"header":{"operation":"ack"},"ack":1}`))
	f.Add([]byte(`{"header":{"operation":"sync"},"seq":1,"content":"W10="}`))
	f.Add([]byte(`{"header":{"namespace":"","resourceKind":"","resourceName":"","operation":""}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		frame, err := Decode(data, 1<<16)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		// A frame that decodes re-encodes to a frame that decodes to the same value.
		again, err := Encode(frame)
		if err != nil {
			t.Fatalf("re-encoding a decoded frame: %v", err)
		}
		back, err := Decode(again, 0)
		if err != nil {
			t.Fatalf("decoding a re-encoded frame: %v", err)
		}
		if back.Header != frame.Header || back.Seq != frame.Seq || back.Ack != frame.Ack || back.Version != frame.Version {
			t.Fatalf("round trip changed the frame: %+v != %+v", back, frame)
		}
	})
}
