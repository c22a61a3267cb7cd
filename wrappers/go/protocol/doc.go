// Package protocol is the jobvisor wire protocol, version 2, without any I/O: frames,
// the strict msgpack decoding, the message table, the canonical encoding and the
// handshake proofs (docs/protocol.md). Bytes go into a Decoder, messages come out;
// Encode turns a message into the exact bytes every jobvisor implementation sends.
//
// Theory of operation. msgpack's decoder (github.com/vmihailenco/msgpack/v5) reads the
// primitives; DecodeBody walks the value with it and adds the rules msgpack itself does
// not keep: valid UTF-8, string map keys, no extension but the timestamp, a nesting
// limit, lengths checked against what is left before anything is allocated, nothing
// after the value. Validate then checks the body against one table (schema) that is
// docs/protocol.md's message table as data, and returns the message with its fields in
// wire order, so that encoding it gives the canonical bytes. Every error is an *Error
// carrying the code of docs/protocol.md, section 7; anything else is a bug.
package protocol
