package store

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func TestTupleRoundTripAndOrder(t *testing.T) {
	// Sorted part-by-part; the encoded keys must sort the same way.
	tuples := [][]string{
		{"", "", ""},
		{"", "", "\x00"},
		{"", "a", ""},
		{"a", "", "b"},
		{"a", "\x00", ""},
		{"a", "\x00\x00", ""},
		{"a", "\x00\x01", ""},
		{"a", "\x00\xff", ""},
		{"a", "\x01", ""},
		{"a", "b", "c"},
		{"a", "b/c", ""},
		{"a/b", "c", ""},
		{"ab", "", ""},
		{"dataset", "default", "d"},
		{"dataset", "default", "d\xff"},
		{"datasetx", "", ""},
	}
	var previous []byte
	for i, tuple := range tuples {
		key := encodeTuple(tuple...)
		decoded, err := decodeTuple(key, 3)
		require.NoError(t, err, "tuple %q", tuple)
		require.Equal(t, tuple, decoded)
		if i > 0 {
			require.Negative(t, bytes.Compare(previous, key), "%q must sort before %q", tuples[i-1], tuple)
		}
		previous = key
	}
}

func TestDecodeTupleRejectsMalformedKeys(t *testing.T) {
	tests := map[string]struct {
		key         []byte
		want        int
		wantContain string
	}{
		"empty":              {key: nil, want: 1, wantContain: "0 parts, want 1"},
		"unterminated":       {key: []byte("abc"), want: 1, wantContain: "unterminated"},
		"dangling escape":    {key: []byte("abc\x00"), want: 1, wantContain: "inside an escape"},
		"invalid escape":     {key: []byte("a\x00\x02"), want: 1, wantContain: "invalid escape byte 0x02"},
		"too many parts":     {key: encodeTuple("a", "b"), want: 1, wantContain: "2 parts, want 1"},
		"too few parts":      {key: encodeTuple("a"), want: 3, wantContain: "1 parts, want 3"},
		"trailing part text": {key: append(encodeTuple("a"), 'b'), want: 1, wantContain: "unterminated"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decodeTuple(tc.key, tc.want)
			require.ErrorContains(t, err, tc.wantContain)
		})
	}
}

func TestFrameRoundTrip(t *testing.T) {
	frame := encodeFrame(recordOutbox, []byte("head"), nil, []byte("body"))
	kind, body, err := decodeFrame(frame)
	require.NoError(t, err)
	require.Equal(t, recordOutbox, kind)
	require.Equal(t, []byte("headbody"), body)
	body[0] = 'X'
	require.Equal(t, byte('h'), frame[frameHeaderLen], "decodeFrame must return a copy")
}

func TestDecodeFrameDetectsDamage(t *testing.T) {
	good := encodeFrame(recordState, []byte(`{"numberOfSamples":12}`))
	tests := map[string]struct {
		damage      func([]byte) []byte
		wantContain string
	}{
		"flipped body bit": {
			damage:      func(b []byte) []byte { b[len(b)-3] ^= 0x04; return b },
			wantContain: "checksum mismatch",
		},
		"flipped kind byte": {
			damage:      func(b []byte) []byte { b[1] = byte(recordOutbox); return b },
			wantContain: "checksum mismatch",
		},
		"flipped checksum": {
			damage:      func(b []byte) []byte { b[3] ^= 0xff; return b },
			wantContain: "checksum mismatch",
		},
		"truncated body": {
			damage:      func(b []byte) []byte { return b[:len(b)-1] },
			wantContain: "checksum mismatch",
		},
		"truncated header": {
			damage:      func(b []byte) []byte { return b[:4] },
			wantContain: "shorter than the 6-byte frame header",
		},
		"unknown format": {
			damage:      func(b []byte) []byte { b[0] = 9; return b },
			wantContain: "unknown frame format 9",
		},
		"zeroed": {
			damage:      func(b []byte) []byte { return make([]byte, len(b)) },
			wantContain: "unknown frame format 0",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := decodeFrame(tc.damage(bytes.Clone(good)))
			require.ErrorContains(t, err, tc.wantContain)
		})
	}
}

// damageValue rewrites the stored value under key in bucket with a damaged copy, the way a
// torn write or a bit flip on disk would leave it.
func damageValue(t *testing.T, s *Store, bucket, key []byte, damage func([]byte) []byte) {
	t.Helper()
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		raw := b.Get(key)
		require.NotNil(t, raw, "no value under %x", key)
		return b.Put(key, damage(bytes.Clone(raw)))
	}))
}

func flipLastByte(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }

// A damaged value must be reported as an error naming its key, never returned as data.
func TestReadsOfDamagedValuesNameTheKey(t *testing.T) {
	damagedKey := ResourceKey{Kind: "dataset", Namespace: "default", Name: "broken"}
	tests := map[string]struct {
		damage      func(t *testing.T, s *Store)
		read        func(s *Store) error
		wantContain string
	}{
		"GetResource": {
			damage: func(t *testing.T, s *Store) { damageValue(t, s, bucketResources, damagedKey.encode(), flipLastByte) },
			read: func(s *Store) error {
				_, _, err := s.GetResource(damagedKey)
				return err
			},
			wantContain: `resources record "dataset/default/broken"`,
		},
		"ListResources": {
			damage: func(t *testing.T, s *Store) { damageValue(t, s, bucketResources, damagedKey.encode(), flipLastByte) },
			read: func(s *Store) error {
				_, err := s.ListResources("dataset")
				return err
			},
			wantContain: `resources record "dataset/default/broken"`,
		},
		"tombstone with a body": {
			damage: func(t *testing.T, s *Store) {
				damageValue(t, s, bucketResources, damagedKey.encode(), func([]byte) []byte {
					return encodeFrame(recordTombstone, encodeUint64(3), []byte("extra"))
				})
			},
			read: func(s *Store) error {
				_, _, err := s.GetResource(damagedKey)
				return err
			},
			wantContain: "tombstone body is 13 bytes",
		},
		"resource holding a state record": {
			damage: func(t *testing.T, s *Store) {
				damageValue(t, s, bucketResources, damagedKey.encode(), func([]byte) []byte {
					return encodeFrame(recordState, []byte("not a resource"))
				})
			},
			read: func(s *Store) error {
				_, err := s.ListResources("")
				return err
			},
			wantContain: "holds a state record",
		},
		"GetState": {
			damage: func(t *testing.T, s *Store) {
				damageValue(t, s, bucketState, encodeTuple("dataset", "default/d"), flipLastByte)
			},
			read: func(s *Store) error {
				_, _, err := s.GetState("dataset", "default/d")
				return err
			},
			wantContain: `state record "dataset/default/d"`,
		},
		"ListState": {
			damage: func(t *testing.T, s *Store) {
				damageValue(t, s, bucketState, encodeTuple("dataset", "default/d"), flipLastByte)
			},
			read: func(s *Store) error {
				_, err := s.ListState("dataset")
				return err
			},
			wantContain: `state record "dataset/default/d"`,
		},
		"Pending": {
			damage: func(t *testing.T, s *Store) { damageValue(t, s, bucketOutbox, outboxKey(2), flipLastByte) },
			read: func(s *Store) error {
				_, err := s.Pending(0, 0)
				return err
			},
			wantContain: `outbox record "2"`,
		},
		"Pending with a truncated entry": {
			damage: func(t *testing.T, s *Store) {
				damageValue(t, s, bucketOutbox, outboxKey(2), func([]byte) []byte { return encodeFrame(recordOutbox, []byte{1, 2}) })
			},
			read: func(s *Store) error {
				_, err := s.Pending(1, 1)
				return err
			},
			wantContain: "too short for a timestamp",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := openTestStore(t, Options{})
			_, err := s.PutResource(Resource{Key: damagedKey, Version: 3, Object: []byte(`{"spec":{"url":"/data/index.txt"}}`)})
			require.NoError(t, err)
			require.NoError(t, s.PutState("dataset", "default/d", []byte(`{"numberOfSamples":12}`)))
			enqueueN(t, s, 3)

			tc.damage(t, s)
			err = tc.read(s)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, tc.wantContain)
			var corrupt *CorruptError
			require.ErrorAs(t, err, &corrupt)
		})
	}
}

// The authoritative write from GM (or the manager) heals a damaged record; Ack removes damaged
// entries. Without this one damaged value would block its resource forever.
func TestWritesReplaceDamagedValues(t *testing.T) {
	s := openTestStore(t, Options{})
	_, err := s.PutResource(Resource{Key: keyA, Version: 10, Object: []byte(`{"v":10}`)})
	require.NoError(t, err)
	_, err = s.PutResource(Resource{Key: keyB, Version: 10, Object: []byte(`{"v":10}`)})
	require.NoError(t, err)
	require.NoError(t, s.PutState("model", "m", []byte("record")))
	enqueueN(t, s, 3)
	damageValue(t, s, bucketResources, keyA.encode(), flipLastByte)
	damageValue(t, s, bucketResources, keyB.encode(), flipLastByte)
	damageValue(t, s, bucketState, encodeTuple("model", "m"), flipLastByte)
	damageValue(t, s, bucketOutbox, outboxKey(2), flipLastByte)

	changed, err := s.PutResource(Resource{Key: keyA, Version: 4, Object: []byte(`{"v":4}`)})
	require.NoError(t, err)
	require.True(t, changed)
	got, found, err := s.GetResource(keyA)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, uint64(4), got.Version)

	_, err = s.DeleteResource(keyB, 4)
	require.NoError(t, err)
	_, found, err = s.GetResource(keyB)
	require.NoError(t, err)
	require.False(t, found)

	require.NoError(t, s.PutState("model", "m", []byte("fresh")))
	value, _, err := s.GetState("model", "m")
	require.NoError(t, err)
	require.Equal(t, []byte("fresh"), value)

	removed, err := s.Ack(2)
	require.NoError(t, err)
	require.Equal(t, 2, removed)
	entries, err := s.Pending(0, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{3}, seqsOf(entries))
}

func TestPruneDropsDamagedRecords(t *testing.T) {
	s := openTestStore(t, Options{})
	for _, key := range []ResourceKey{keyA, keyB, keyM} {
		_, err := s.PutResource(Resource{Key: key, Version: 1, Object: []byte(`{}`)})
		require.NoError(t, err)
	}
	damageValue(t, s, bucketResources, keyA.encode(), flipLastByte) // absent from the snapshot
	damageValue(t, s, bucketResources, keyB.encode(), flipLastByte) // present in the snapshot
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketResources).Put([]byte("no tuple here"), encodeResourceValue(1, nil))
	}))

	removed, err := s.PruneExcept(map[ResourceKey]uint64{keyB: 2, keyM: 1})
	require.NoError(t, err)
	require.Equal(t, []ResourceKey{keyA}, removed)

	// keyB is still damaged until the snapshot's put replaces it.
	_, err = s.ListResources("")
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = s.PutResource(Resource{Key: keyB, Version: 2, Object: []byte(`{"v":2}`)})
	require.NoError(t, err)
	all, err := s.ListResources("")
	require.NoError(t, err)
	require.Len(t, all, 2)
}

func FuzzDecodeTuple(f *testing.F) {
	f.Add(encodeTuple("dataset", "default", "d"), 3)
	f.Add(encodeTuple("a\x00b", ""), 2)
	f.Add([]byte("\x00\x00\x01"), 1)
	f.Fuzz(func(t *testing.T, key []byte, want int) {
		if want < 0 || want > 8 {
			return
		}
		parts, err := decodeTuple(key, want)
		if err != nil {
			return
		}
		// Whatever decodes must be exactly what encodeTuple makes of it, or two keys could
		// name the same tuple.
		if reencoded := encodeTuple(parts...); !bytes.Equal(reencoded, key) {
			t.Fatalf("key %q decodes to %q which encodes to %q", key, parts, reencoded)
		}
	})
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add(encodeFrame(recordResource, encodeUint64(1), []byte(`{}`)))
	f.Add(encodeFrame(recordMeta, encodeUint64(7)))
	f.Add([]byte(strings.Repeat("\x01", 10)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		kind, body, err := decodeFrame(raw)
		if err != nil {
			return
		}
		if reencoded := encodeFrame(kind, body); !bytes.Equal(reencoded, raw) {
			t.Fatalf("frame %x decodes but re-encodes to %x", raw, reencoded)
		}
	})
}
