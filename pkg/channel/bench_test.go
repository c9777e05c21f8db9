package channel

import "testing"

var (
	benchInsert = &Frame{Header: Header{Namespace: "default", ResourceKind: "dataset", ResourceName: "d-node-1", Operation: OpInsert},
		Content: []byte(`{"apiVersion":"sedna.io/v1alpha1","kind":"Dataset","metadata":{"name":"d","namespace":"default"},"spec":{"url":"/data/train.txt","format":"txt","nodeName":"n"}}`),
		Seq:     12345, Version: 678901}
	benchAck = &Frame{Header: Header{Operation: OpAck}, Ack: 12345}
)

func BenchmarkEncode(b *testing.B) {
	for name, f := range map[string]*Frame{"insert": benchInsert, "ack": benchAck} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := Encode(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for name, f := range map[string]*Frame{"insert": benchInsert, "ack": benchAck} {
		data, err := Encode(f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := Decode(data, DefaultMaxFrameBytes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
