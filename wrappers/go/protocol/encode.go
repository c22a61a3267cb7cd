package protocol

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// EncodeValue writes v in the canonical form of docs/protocol.md, section 3: the smallest
// int/str/bin/array/map forms, floats always float64, Map keys in their order.
// v must hold only the types DecodeBody produces.
func EncodeValue(buf *bytes.Buffer, v any) error {
	e := msgpack.NewEncoder(buf)
	return encodeValue(e, v)
}

func encodeValue(e *msgpack.Encoder, v any) error {
	switch t := v.(type) {
	case nil:
		return e.EncodeNil()
	case bool:
		return e.EncodeBool(t)
	case int64:
		return e.EncodeInt(t) // the smallest form, unsigned forms for n >= 0
	case uint64:
		return e.EncodeUint(t)
	case float64:
		return e.EncodeFloat64(t)
	case string:
		return e.EncodeString(t)
	case []byte:
		return e.EncodeBytes(t)
	case []any:
		if err := e.EncodeArrayLen(len(t)); err != nil {
			return err
		}
		for _, item := range t {
			if err := encodeValue(e, item); err != nil {
				return err
			}
		}
		return nil
	case Map:
		if err := e.EncodeMapLen(len(t)); err != nil {
			return err
		}
		for _, kv := range t {
			if err := e.EncodeString(kv.Key); err != nil {
				return err
			}
			if err := encodeValue(e, kv.Value); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("protocol: cannot encode a value of Go type %T", v)
}

// Normalize turns any Go value msgpack can encode (structs, maps, slices, numbers of any
// width...) into the value types DecodeBody produces, checking it on the way exactly as a
// receiver would: map keys must be strings, str valid UTF-8, at most MaxNesting deep.
// Go maps are sorted by key, struct fields keep their order; float32 stays what it is
// until re-encoded, then float64.
func Normalize(v any) (any, error) {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	e.UseCompactInts(true)
	e.SetSortMapKeys(true)
	e.SetCustomStructTag("json")
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return DecodeBody(buf.Bytes())
}

// FrameHeaderSize is the size of the length prefix of every frame.
const FrameHeaderSize = 4

// DefaultMaxFrame is the largest body a default peer accepts (1 MiB).
const DefaultMaxFrame = 1 << 20

// Encode returns m as one frame: its 4-byte big-endian length, then its canonical body.
// It refuses a body over DefaultMaxFrame, which the supervisor would refuse.
func Encode(m Message) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, FrameHeaderSize, 64))
	if err := EncodeValue(buf, m.Map()); err != nil {
		return nil, err
	}
	frame := buf.Bytes()
	n := len(frame) - FrameHeaderSize
	if n > DefaultMaxFrame {
		return nil, fmt.Errorf("%s is %d bytes encoded, more than the %d-byte frame limit", m.Type, n, DefaultMaxFrame)
	}
	binary.BigEndian.PutUint32(frame, uint32(n))
	return frame, nil
}
