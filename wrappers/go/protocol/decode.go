package protocol

import (
	"bytes"
	"errors"
	"io"
	"math"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// MaxNesting is how deeply containers may nest in a frame body, the body map included;
// deeper is invalid_msgpack (docs/protocol.md, section 3).
const MaxNesting = 1024

// timestampExt is the msgpack timestamp extension type, the only one accepted.
const timestampExt = -1

// DecodeBody decodes one frame body strictly: exactly one msgpack value, str valid UTF-8,
// map keys strings, no extension type but the timestamp, at most MaxNesting deep.
// msgpack's own decoder reads the primitives; this walk adds the rules it does not keep.
func DecodeBody(body []byte) (any, error) {
	if len(body) == 0 {
		return nil, errorf(InvalidMsgpack, "the body is empty: it ends in the middle of a value")
	}
	r := bytes.NewReader(body)
	w := walker{d: msgpack.NewDecoder(r), r: r}
	value, err := w.value(1)
	if err != nil {
		return nil, err
	}
	if r.Len() > 0 {
		return nil, errorf(InvalidMsgpack, "%d trailing bytes after the body's value", r.Len())
	}
	return value, nil
}

type walker struct {
	d *msgpack.Decoder
	r *bytes.Reader
}

func (w *walker) value(level int) (any, error) {
	c, err := w.d.PeekCode()
	if err != nil {
		return nil, truncated(err)
	}
	switch {
	case c == msgpcode.Nil:
		return nil, truncated(w.d.DecodeNil())
	case c == msgpcode.False || c == msgpcode.True:
		b, err := w.d.DecodeBool()
		return b, truncated(err)
	case msgpcode.IsFixedNum(c) || c == msgpcode.Int8 || c == msgpcode.Int16 ||
		c == msgpcode.Int32 || c == msgpcode.Int64 || c == msgpcode.Uint8 ||
		c == msgpcode.Uint16 || c == msgpcode.Uint32:
		n, err := w.d.DecodeInt64()
		return n, truncated(err)
	case c == msgpcode.Uint64:
		n, err := w.d.DecodeUint64()
		if err != nil {
			return nil, truncated(err)
		}
		if n <= math.MaxInt64 {
			return int64(n), nil
		}
		return n, nil
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := w.d.DecodeFloat64()
		return f, truncated(err)
	case msgpcode.IsString(c):
		return w.str()
	case msgpcode.IsBin(c):
		n, err := w.d.DecodeBytesLen()
		if err != nil {
			return nil, truncated(err)
		}
		if err := w.fits(n, 1); err != nil {
			return nil, err
		}
		b := make([]byte, n)
		return b, truncated(w.d.ReadFull(b))
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		return w.array(level)
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		return w.mapping(level)
	case msgpcode.IsExt(c):
		return w.ext()
	default:
		return nil, errorf(InvalidMsgpack, "reserved byte 0x%02x", c)
	}
}

func (w *walker) str() (string, error) {
	n, err := w.d.DecodeBytesLen() // str and bin headers share the length forms
	if err != nil {
		return "", truncated(err)
	}
	if err := w.fits(n, 1); err != nil {
		return "", err
	}
	b := make([]byte, n)
	if err := w.d.ReadFull(b); err != nil {
		return "", truncated(err)
	}
	if !utf8.Valid(b) {
		return "", errorf(InvalidMsgpack, "a str is not valid UTF-8")
	}
	return string(b), nil
}

func (w *walker) array(level int) (any, error) {
	if level > MaxNesting {
		return nil, errorf(InvalidMsgpack, "nesting too deep: more than %d levels", MaxNesting)
	}
	n, err := w.d.DecodeArrayLen()
	if err != nil {
		return nil, truncated(err)
	}
	if err := w.fits(n, 1); err != nil {
		return nil, err
	}
	items := make([]any, 0, n)
	for range n {
		item, err := w.value(level + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, item)
	}
	return items, nil
}

func (w *walker) mapping(level int) (any, error) {
	if level > MaxNesting {
		return nil, errorf(InvalidMsgpack, "nesting too deep: more than %d levels", MaxNesting)
	}
	n, err := w.d.DecodeMapLen()
	if err != nil {
		return nil, truncated(err)
	}
	if err := w.fits(n, 2); err != nil {
		return nil, err
	}
	m := make(Map, 0, n)
	for range n {
		c, err := w.d.PeekCode()
		if err != nil {
			return nil, truncated(err)
		}
		if !msgpcode.IsString(c) {
			return nil, errorf(InvalidMsgpack, "a map key is not a string (byte 0x%02x)", c)
		}
		key, err := w.str()
		if err != nil {
			return nil, err
		}
		value, err := w.value(level + 1)
		if err != nil {
			return nil, err
		}
		m = m.set(key, value)
	}
	return m, nil
}

func (w *walker) ext() (any, error) {
	id, n, err := w.d.DecodeExtHeader()
	if err != nil {
		return nil, truncated(err)
	}
	if id != timestampExt {
		return nil, errorf(InvalidMsgpack, "extension type %d is not allowed", id)
	}
	if err := w.fits(n, 1); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if err := w.d.ReadFull(b); err != nil {
		return nil, truncated(err)
	}
	return timestampSeconds(b)
}

// timestampSeconds reads the three layouts of the msgpack timestamp extension.
func timestampSeconds(b []byte) (float64, error) {
	be := func(b []byte) uint64 {
		var n uint64
		for _, x := range b {
			n = n<<8 | uint64(x)
		}
		return n
	}
	// Nanoseconds above 999999999 are refused, as msgpack-python (the reference) does.
	tooManyNanos := func(ns uint64) (float64, error) {
		return 0, errorf(InvalidMsgpack, "timestamp nanoseconds must be at most 999999999, got %d", ns)
	}
	switch len(b) {
	case 4:
		return float64(be(b)), nil
	case 8:
		v := be(b)
		if v>>34 > 999999999 {
			return tooManyNanos(v >> 34)
		}
		return float64(v&(1<<34-1)) + float64(v>>34)/1e9, nil
	case 12:
		if ns := be(b[:4]); ns > 999999999 {
			return tooManyNanos(ns)
		}
		return float64(int64(be(b[4:]))) + float64(be(b[:4]))/1e9, nil
	}
	return 0, errorf(InvalidMsgpack, "a timestamp extension of %d bytes (4, 8 or 12 expected)", len(b))
}

// fits refuses a length that runs past the end of the body before anything is allocated.
func (w *walker) fits(n, bytesEach int) error {
	if n < 0 || n > w.r.Len()/bytesEach {
		return errorf(InvalidMsgpack, "a length of %d exceeds the %d bytes left in the body", n, w.r.Len())
	}
	return nil
}

func truncated(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf(InvalidMsgpack, "the body ends in the middle of a value")
	}
	return errorf(InvalidMsgpack, "%v", err)
}
