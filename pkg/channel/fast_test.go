package channel

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The canonical form must be exactly what encoding/json writes, and read back as encoding/json
// reads it; anything else takes encoding/json's path.
func TestEncodeWritesWhatEncodingJSONWrites(t *testing.T) {
	frames := []Frame{
		{Header: Header{Namespace: "default", ResourceKind: "dataset", ResourceName: "ds-1", Operation: OpInsert}, Content: []byte(`{"spec":{}}`), Seq: 1, Version: 42},
		{Header: Header{Operation: OpAck}, Ack: 18446744073709551615},
		{Header: Header{Operation: OpAck}, Ack: 9, Error: "not bound to this node"},
		{Header: Header{Operation: OpAck}, Ack: 9, Error: `quote " and <html> & é and \ and` + "\n"},
		{Header: Header{Namespace: "ns", ResourceKind: "Model", ResourceName: "m.v1", Operation: OpDelete}, Seq: 3},
		{Header: Header{Operation: OpSync}, Seq: 4, Content: []byte(`[]`)},
		{Header: Header{Namespace: "ns\u2028", ResourceKind: "model", ResourceName: "m", Operation: OpStatus}, Seq: 1, Content: []byte{0xff, 0}},
		{},
	}
	for _, f := range frames {
		want, err := json.Marshal(&f)
		require.NoError(t, err)
		got, err := Encode(&f)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
		prefix := []byte("prefix")
		got, err = AppendEncode(prefix, &f)
		require.NoError(t, err)
		require.Equal(t, "prefix"+string(want), string(got))
	}
}

func TestDecodeFastPathAgreesWithEncodingJSON(t *testing.T) {
	inputs := []string{
		`{"header":{"namespace":"a","resourceKind":"dataset","resourceName":"b","operation":"insert"},"content":"e30=","seq":1,"version":2}`,
		`{"header":{"namespace":"","resourceKind":"","resourceName":"","operation":"ack"},"ack":7,"error":"no"}`,
		`{"header":{"namespace":"","resourceKind":"","resourceName":"","operation":"ack"},"ack":07}`,
		`{"header":{"namespace":"","resourceKind":"","resourceName":"","operation":"ack"},"ack":0}`,
		`{"header":{"namespace":"","resourceKind":"","resourceName":"","operation":"ack"},"ack":18446744073709551616}`,
		`{"header":{"namespace":"","resourceKind":"","resourceName":"","operation":"ack"},"ack":1,"ack":2}`,
		`{"header":{"namespace":"","resourceKind":"","resourceName":"","operation":"ack"},"ack":1} `,
		`{"header":{"namespace":"","resourceKind":"","resourceName":"","operation":"ack"},"content":"","ack":1}`,
		`{"header":{"namespace":"a","resourceKind":"dataset","resourceName":"b","operation":"insert"},"content":"e30","seq":1}`,
		`{"header":{"namespace":"a","resourceKind":"dataset","resourceName":"b","operation":"insert"},"content":"%%%=","seq":1}`,
	}
	for _, in := range inputs {
		checkFastAgrees(t, []byte(in))
	}
}

// checkFastAgrees fails when the fast path accepts data and decodes it differently from
// encoding/json, or accepts what encoding/json refuses.
func checkFastAgrees(t *testing.T, data []byte) {
	t.Helper()
	fast, ok := decodeFast(data)
	if !ok {
		return
	}
	slow, err := decodeSlow(data)
	if err != nil {
		t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", data, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast path decoded %q as %+v, encoding/json as %+v", data, fast, slow)
	}
}

func FuzzDecodeFastPath(f *testing.F) {
	for _, fr := range []Frame{
		{Header: Header{Namespace: "a", ResourceKind: "dataset", ResourceName: "b", Operation: OpInsert}, Content: []byte(`{}`), Seq: 1, Version: 2},
		{Header: Header{Operation: OpAck}, Ack: 1, Error: "e"},
		{Header: Header{Operation: OpSync}, Seq: 1, Content: []byte(`[]`)},
	} {
		data, err := Encode(&fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastAgrees(t, data)
		checkNamesAgree(t, string(data))
	})
}

func TestDNSNameChecksAgreeWithValidation(t *testing.T) {
	for _, s := range []string{"", "a", "a-b", "-a", "a-", "A", "a.b", "a..b", ".a", "a.", "a_b", "0", "a.-b",
		string(make([]byte, 64)), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"} {
		checkNamesAgree(t, s)
	}
}

func checkNamesAgree(t *testing.T, s string) {
	t.Helper()
	if got, want := isDNSLabel(s), len(validation.IsDNS1123Label(s)) == 0; got != want {
		t.Fatalf("isDNSLabel(%q) = %v, validation says %v", s, got, want)
	}
	if got, want := isDNSSubdomain(s), len(validation.IsDNS1123Subdomain(s)) == 0; got != want {
		t.Fatalf("isDNSSubdomain(%q) = %v, validation says %v", s, got, want)
	}
}
