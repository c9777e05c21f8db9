package channel

import (
	"encoding/base64"
	"slices"
	"strconv"
)

// The channel carries one JSON document per frame in upstream's envelope. encoding/json's
// reflection costs more CPU per frame than the TLS record and the system calls that carry it, so
// frames in the canonical form — the exact bytes encoding/json produces for a frame whose strings
// need no escaping — are written and read by the functions below, and everything else (escaped
// strings, other field orders, whitespace: all still valid from any peer) goes through
// encoding/json. Both paths produce the same bytes and the same Frame; the tests and FuzzDecode
// compare them.

// AppendEncode appends the encoding of f to dst, the same bytes Encode returns.
func AppendEncode(dst []byte, f *Frame) ([]byte, error) {
	h := &f.Header
	if !plain(h.Namespace) || !plain(h.ResourceKind) || !plain(h.ResourceName) || !plain(h.Operation) || !plain(f.Error) {
		data, err := encodeSlow(f)
		if err != nil {
			return dst, err
		}
		return append(dst, data...), nil
	}
	dst = slices.Grow(dst, 140+len(h.Namespace)+len(h.ResourceKind)+len(h.ResourceName)+len(h.Operation)+
		base64.StdEncoding.EncodedLen(len(f.Content))+len(f.Error))
	dst = append(dst, `{"header":{"namespace":"`...)
	dst = append(dst, h.Namespace...)
	dst = append(dst, `","resourceKind":"`...)
	dst = append(dst, h.ResourceKind...)
	dst = append(dst, `","resourceName":"`...)
	dst = append(dst, h.ResourceName...)
	dst = append(dst, `","operation":"`...)
	dst = append(dst, h.Operation...)
	dst = append(dst, `"}`...)
	if len(f.Content) > 0 {
		dst = append(dst, `,"content":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, f.Content)
		dst = append(dst, '"')
	}
	if f.Seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, f.Seq, 10)
	}
	if f.Ack != 0 {
		dst = append(dst, `,"ack":`...)
		dst = strconv.AppendUint(dst, f.Ack, 10)
	}
	if f.Version != 0 {
		dst = append(dst, `,"version":`...)
		dst = strconv.AppendUint(dst, f.Version, 10)
	}
	if f.Error != "" {
		dst = append(dst, `,"error":"`...)
		dst = append(dst, f.Error...)
		dst = append(dst, '"')
	}
	return append(dst, '}'), nil
}

// plain reports whether encoding/json writes s between quotes unchanged: printable ASCII without
// the characters it escapes (quote, backslash, and <, > and & which it escapes for HTML).
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			return false
		}
	}
	return true
}

func plainByte(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// fastParser reads a frame in the canonical form. Any deviation makes it give up (ok false), and
// the frame is decoded by encoding/json instead, which accepts or rejects it with its own message.
type fastParser struct {
	data []byte
	pos  int
	ok   bool
}

func (p *fastParser) lit(s string) {
	if !p.ok || len(p.data)-p.pos < len(s) || string(p.data[p.pos:p.pos+len(s)]) != s {
		p.ok = false
		return
	}
	p.pos += len(s)
}

// has consumes s if the input continues with it.
func (p *fastParser) has(s string) bool {
	if p.ok && len(p.data)-p.pos >= len(s) && string(p.data[p.pos:p.pos+len(s)]) == s {
		p.pos += len(s)
		return true
	}
	return false
}

// str reads the rest of a string whose opening quote was consumed, and its closing quote.
func (p *fastParser) str() []byte {
	if !p.ok {
		return nil
	}
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			p.pos++
			return s
		}
		if !plainByte(c) {
			break
		}
		p.pos++
	}
	p.ok = false
	return nil
}

// uint reads a non-zero decimal without leading zeros that fits in 64 bits.
func (p *fastParser) uint() uint64 {
	if !p.ok || p.pos >= len(p.data) || p.data[p.pos] < '1' || p.data[p.pos] > '9' {
		p.ok = false
		return 0
	}
	var v uint64
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		d := uint64(p.data[p.pos] - '0')
		if v > (^uint64(0)-d)/10 {
			p.ok = false
			return 0
		}
		v = v*10 + d
		p.pos++
	}
	return v
}

// decodeFast decodes a frame in the canonical form without validating it; ok is false for any
// other input.
func decodeFast(data []byte) (f *Frame, ok bool) {
	p := fastParser{data: data, ok: true}
	f = &Frame{}
	p.lit(`{"header":{"namespace":"`)
	ns := p.str()
	p.lit(`,"resourceKind":"`)
	kind := p.str()
	p.lit(`,"resourceName":"`)
	name := p.str()
	p.lit(`,"operation":"`)
	op := p.str()
	p.lit(`}`)
	if p.has(`,"content":"`) {
		b64 := p.str()
		if !p.ok || len(b64) == 0 {
			return nil, false
		}
		content := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
		n, err := base64.StdEncoding.Decode(content, b64)
		if err != nil {
			return nil, false
		}
		f.Content = content[:n]
	}
	if p.has(`,"seq":`) {
		f.Seq = p.uint()
	}
	if p.has(`,"ack":`) {
		f.Ack = p.uint()
	}
	if p.has(`,"version":`) {
		f.Version = p.uint()
	}
	if p.has(`,"error":"`) {
		e := p.str()
		if len(e) == 0 {
			return nil, false
		}
		f.Error = string(e)
	}
	p.lit(`}`)
	if !p.ok || p.pos != len(data) {
		return nil, false
	}
	f.Header = Header{Namespace: internOp(ns), ResourceKind: internKind(kind), ResourceName: string(name), Operation: internOp(op)}
	return f, true
}

// internOp and internKind return the common strings without allocating.
func internOp(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case OpAck:
		return OpAck
	case OpInsert:
		return OpInsert
	case OpStatus:
		return OpStatus
	case OpDelete:
		return OpDelete
	case OpSync:
		return OpSync
	case OpUpdate:
		return OpUpdate
	case "default":
		return "default"
	}
	return string(b)
}

func internKind(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "dataset":
		return "dataset"
	case "model":
		return "model"
	}
	return string(b)
}
