package protocol

import (
	"encoding/binary"
)

// Decoder turns a byte stream cut anywhere into messages (docs/protocol.md, section 2).
// It refuses an oversized length as soon as the 4 header bytes are in, and after any
// invalid frame it fails for good: the stream cannot be trusted any more.
type Decoder struct {
	MaxFrame int // bodies longer than this are frame_too_large; 0 means DefaultMaxFrame
	buf      []byte
	off      int
	failed   *Error
}

// Feed appends bytes read from the connection.
func (d *Decoder) Feed(data []byte) {
	if d.off > 0 {
		// Once per read, not per frame: move the unread tail to the front, so the
		// buffer holds at most one partial frame plus what was just read.
		n := copy(d.buf, d.buf[d.off:])
		d.buf, d.off = d.buf[:n], 0
	}
	d.buf = append(d.buf, data...)
}

// Next returns the next complete message, or (nil, nil) when more bytes are needed.
// Every error is an *Error, and once one is returned every later call returns it again.
func (d *Decoder) Next() (*Message, error) {
	if d.failed != nil {
		return nil, d.failed
	}
	pending := d.buf[d.off:]
	if len(pending) < FrameHeaderSize {
		return nil, nil
	}
	n := binary.BigEndian.Uint32(pending)
	limit := d.MaxFrame
	if limit <= 0 {
		limit = DefaultMaxFrame
	}
	if uint64(n) > uint64(limit) {
		return nil, d.fail(errorf(FrameTooLarge, "a frame of %d bytes is over the %d-byte limit", n, limit))
	}
	end := FrameHeaderSize + int(n)
	if len(pending) < end {
		return nil, nil
	}
	body := pending[FrameHeaderSize:end]
	d.off += end
	value, err := DecodeBody(body)
	if err != nil {
		return nil, d.fail(err.(*Error))
	}
	m, err := Validate(value)
	if err != nil {
		return nil, d.fail(err.(*Error))
	}
	return &m, nil
}

func (d *Decoder) fail(err *Error) *Error {
	d.failed = err
	return err
}
