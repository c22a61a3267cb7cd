package protocol

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Version is the protocol version this package speaks (hello.v).
const Version = 2

// MaxPayloadDepth is how deeply a payload (data, result...) may nest containers; the body
// map counts one more level. Deeper is invalid_message (docs/protocol.md, section 3).
const MaxPayloadDepth = 64

// NonceSize is the size of hello.nonce and challenge.nonce; proofs have the same size.
const NonceSize = 32

// Message types (docs/protocol.md, section 4).
const (
	TypeHello     = "hello"
	TypeChallenge = "challenge"
	TypeAuth      = "auth"
	TypeWelcome   = "welcome"
	TypeError     = "error"
	TypeStarted   = "started"
	TypeProgress  = "progress"
	TypeHeartbeat = "heartbeat"
	TypeLog       = "log"
	TypeCompleted = "completed"
	TypeFailed    = "failed"
	TypeAck       = "ack"
	TypeCancel    = "cancel"
)

// LogLevels are the values log.level may take.
var LogLevels = []string{"debug", "info", "warn", "error"}

// Message is one validated message: its type and its fields in wire order, optional
// fields that are not set left out (welcome.data is always there, maybe nil).
type Message struct {
	Type   string
	Fields Map
}

// Map returns the whole body: "type" first, then the fields.
func (m Message) Map() Map {
	return append(Map{{"type", m.Type}}, m.Fields...)
}

// Get returns a field's value (nil when absent).
func (m Message) Get(name string) any {
	v, _ := m.Fields.Get(name)
	return v
}

// String returns a field that validation made sure is a string ("" when absent).
func (m Message) String(name string) string {
	s, _ := m.Get(name).(string)
	return s
}

// Number returns a number field as float64 (0 when absent).
func (m Message) Number(name string) float64 {
	switch n := m.Get(name).(type) {
	case int64:
		return float64(n)
	case uint64:
		return float64(n)
	case float64:
		return n
	}
	return 0
}

// Bytes returns a bin field (nil when absent).
func (m Message) Bytes(name string) []byte {
	b, _ := m.Get(name).([]byte)
	return b
}

// check validates a field's value; it returns what the value must be when it is wrong.
type check func(v any) (ok bool, want string)

type field struct {
	name     string
	required bool
	check    check
}

// schema is the whole message table of docs/protocol.md, section 4, as data: the fields
// of each type in wire order. Every type may also carry ts, last.
var schema = map[string][]field{
	TypeHello: {
		{"v", true, integerAtLeast(0)},
		{"job_id", true, nonEmptyString},
		{"pid", true, integerAtLeast(1)},
		{"nonce", false, bin32},
	},
	TypeChallenge: {{"nonce", true, bin32}, {"proof", true, bin32}},
	TypeAuth:      {{"proof", true, bin32}},
	TypeWelcome: {
		{"job_id", true, nonEmptyString},
		{"name", true, isString},
		{"data", true, anything},
		{"attempt", true, integerAtLeast(1)},
		{"heartbeat_interval", true, positiveNumber},
		{"reconnect_interval", true, positiveNumber},
		{"give_up_after", true, positiveNumber},
	},
	TypeError:     {{"code", true, isString}, {"message", true, isString}},
	TypeStarted:   {},
	TypeProgress:  {{"percent", true, percent}, {"message", false, isString}, {"data", false, anything}},
	TypeHeartbeat: {},
	TypeLog: {
		{"level", true, oneOf(LogLevels...)},
		{"message", true, isString},
		{"data", false, anything},
	},
	TypeCompleted: {{"result", false, anything}},
	TypeFailed:    {{"error", true, isString}, {"stack", false, isString}},
	TypeAck:       {{"of", true, oneOf(TypeCompleted, TypeFailed)}},
	TypeCancel:    {{"reason", false, isString}},
}

var tsField = field{"ts", false, finiteNumber}

// alwaysSent names the one field sent even when nil.
var alwaysSent = map[string]bool{TypeWelcome + ".data": true}

// Validate checks a decoded body against the message table and returns the message in
// canonical form: fields in wire order, unknown fields dropped, a nil optional field
// left out. Every error is an *Error (invalid_message or unknown_type).
func Validate(body any) (Message, error) {
	m, ok := body.(Map)
	if !ok {
		return Message{}, errorf(InvalidMessage, "a message must be a map, got %s", describe(body))
	}
	t, ok := m.Get("type")
	if !ok {
		return Message{}, errorf(InvalidMessage, "a message must have a 'type' field")
	}
	typ, ok := t.(string)
	if !ok {
		return Message{}, errorf(InvalidMessage, "'type' must be a string, got %s", describe(t))
	}
	fields, ok := schema[typ]
	if !ok {
		return Message{}, errorf(UnknownType, "unknown message type %q", typ)
	}
	out := Message{Type: typ, Fields: Map{}}
	for _, f := range append(fields[:len(fields):len(fields)], tsField) {
		v, present := m.Get(f.name)
		if !present || (v == nil && !alwaysSent[typ+"."+f.name]) {
			if f.required {
				return Message{}, requiredError(typ, f, v, present)
			}
			continue
		}
		if ok, want := f.check(v); !ok {
			return Message{}, errorf(InvalidMessage, "%s.%s must be %s, got %s", typ, f.name, want, describe(v))
		}
		out.Fields = append(out.Fields, KV{f.name, v})
	}
	if depth(m) > MaxPayloadDepth+1 {
		return Message{}, errorf(InvalidMessage, "%s nests deeper than %d levels", typ, MaxPayloadDepth)
	}
	return out, nil
}

func requiredError(typ string, f field, v any, present bool) error {
	if !present {
		return errorf(InvalidMessage, "%s is missing required field '%s'", typ, f.name)
	}
	_, want := f.check(v)
	return errorf(InvalidMessage, "%s.%s must be %s, got %s", typ, f.name, want, describe(v))
}

// New builds a message from fields given in any order, validating it exactly as a
// receiver would; nil values are left out.
func New(typ string, fields ...KV) (Message, error) {
	body := Map{{"type", typ}}
	for _, kv := range fields {
		body = body.set(kv.Key, kv.Value)
	}
	return Validate(body)
}

func isInteger(v any) bool {
	switch v.(type) {
	case int64, uint64:
		return true
	}
	return false
}

func integerAtLeast(low int64) check {
	want := fmt.Sprintf("an integer >= %d", low)
	return func(v any) (bool, string) {
		switch n := v.(type) {
		case int64:
			return n >= low, want
		case uint64:
			return true, want
		}
		return false, want
	}
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, !math.IsNaN(n) && !math.IsInf(n, 0)
	}
	return 0, false
}

func finiteNumber(v any) (bool, string) {
	_, ok := number(v)
	return ok, "a finite number"
}

func positiveNumber(v any) (bool, string) {
	n, ok := number(v)
	return ok && n > 0, "a number > 0"
}

func percent(v any) (bool, string) {
	n, ok := number(v)
	return ok && n >= 0 && n <= 100, "a number from 0 to 100"
}

func isString(v any) (bool, string) {
	_, ok := v.(string)
	return ok, "a string"
}

func nonEmptyString(v any) (bool, string) {
	s, ok := v.(string)
	return ok && s != "", "a non-empty string"
}

func bin32(v any) (bool, string) {
	b, ok := v.([]byte)
	return ok && len(b) == NonceSize, "bin of exactly 32 bytes"
}

func anything(any) (bool, string) { return true, "any value" }

func oneOf(values ...string) check {
	sorted := append([]string(nil), values...)
	sort.Strings(sorted)
	want := "one of " + strings.Join(sorted, ", ")
	return func(v any) (bool, string) {
		s, ok := v.(string)
		if !ok {
			return false, want
		}
		for _, allowed := range values {
			if s == allowed {
				return true, want
			}
		}
		return false, want
	}
}

// describe names a bad value in an error: its msgpack type and, for scalars, the value.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "nil"
	case bool:
		return fmt.Sprintf("bool %v", t)
	case int64, uint64:
		return fmt.Sprintf("int %d", t)
	case float64:
		return fmt.Sprintf("float %v", t)
	case string:
		if len(t) > 40 {
			t = t[:40] + "..."
		}
		return fmt.Sprintf("str %q", t)
	case []byte:
		return fmt.Sprintf("bytes of length %d", len(t))
	case []any:
		return fmt.Sprintf("list of length %d", len(t))
	case Map:
		return fmt.Sprintf("map of %d keys", len(t))
	}
	return fmt.Sprintf("%T", v)
}
