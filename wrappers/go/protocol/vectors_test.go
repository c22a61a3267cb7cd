package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The golden vectors every jobvisor implementation is tested against (docs/protocol.md,
// section 10). The committed file is the truth: it is read, never regenerated.
var vectorsPath = filepath.Join("..", "..", "..", "protocol", "vectors.json")

type generate struct {
	PrefixHex   string `json:"prefix_hex"`
	RepeatHex   string `json:"repeat_hex"`
	RepeatCount int    `json:"repeat_count"`
	SuffixHex   string `json:"suffix_hex"`
}

type frameCase struct {
	Name           string          `json:"name"`
	Hex            string          `json:"hex"`
	Generate       *generate       `json:"generate"`
	SHA256         string          `json:"sha256"`
	Message        json.RawMessage `json:"message"`
	CanonicalHex   string          `json:"canonical_hex"`
	Error          string          `json:"error"`
	MessagesBefore int             `json:"messages_before"`
}

type handshakeCase struct {
	Name               string `json:"name"`
	Token              string `json:"token"`
	JobID              string `json:"job_id"`
	WorkerNonceHex     string `json:"worker_nonce_hex"`
	SupervisorNonceHex string `json:"supervisor_nonce_hex"`
	KeyHex             string `json:"key_hex"`
	SupervisorInputHex string `json:"supervisor_input_hex"`
	SupervisorProofHex string `json:"supervisor_proof_hex"`
	WorkerInputHex     string `json:"worker_input_hex"`
	WorkerProofHex     string `json:"worker_proof_hex"`
}

type vectors struct {
	Valid        []frameCase     `json:"valid"`
	Noncanonical []frameCase     `json:"noncanonical"`
	Invalid      []frameCase     `json:"invalid"`
	Handshake    []handshakeCase `json:"handshake"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("reading the golden vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("parsing %s: %v", vectorsPath, err)
	}
	if len(v.Valid) == 0 || len(v.Noncanonical) == 0 || len(v.Invalid) == 0 || len(v.Handshake) == 0 {
		t.Fatalf("%s has an empty section", vectorsPath)
	}
	return v
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in the vectors: %v", err)
	}
	return b
}

func (c frameCase) frame(t *testing.T) []byte {
	if c.Generate == nil {
		return unhex(t, c.Hex)
	}
	g := c.Generate
	frame := append(unhex(t, g.PrefixHex), bytes.Repeat(unhex(t, g.RepeatHex), g.RepeatCount)...)
	frame = append(frame, unhex(t, g.SuffixHex)...)
	if sum := sha256.Sum256(frame); hex.EncodeToString(sum[:]) != c.SHA256 {
		t.Fatalf("%s: the generated frame does not have the vector's sha256", c.Name)
	}
	return frame
}

// wireValue reads a vector's JSON message into the values DecodeBody produces, keeping
// the key order of objects (the message's keys are in wire order).
func wireValue(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	v, err := readJSON(d)
	if err != nil {
		t.Fatalf("reading a vector's message: %v", err)
	}
	return v
}

func readJSON(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			items := []any{}
			for d.More() {
				item, err := readJSON(d)
				if err != nil {
					return nil, err
				}
				items = append(items, item)
			}
			_, err := d.Token()
			return items, err
		}
		m := Map{}
		for d.More() {
			key, err := d.Token()
			if err != nil {
				return nil, err
			}
			value, err := readJSON(d)
			if err != nil {
				return nil, err
			}
			m = append(m, KV{key.(string), value})
		}
		if _, err := d.Token(); err != nil {
			return nil, err
		}
		if len(m) == 1 && strings.HasPrefix(m[0].Key, "$") {
			return tagged(m[0].Key, m[0].Value)
		}
		return m, nil
	case json.Number:
		return strconv.ParseInt(string(t), 10, 64)
	}
	return tok, nil // nil, bool, string
}

func tagged(tag string, v any) (any, error) {
	switch tag {
	case "$float":
		return strconv.ParseFloat(v.(string), 64)
	case "$int":
		n, ok := new(big.Int).SetString(v.(string), 10)
		if !ok {
			return nil, strconv.ErrSyntax
		}
		if n.IsInt64() {
			return n.Int64(), nil
		}
		return n.Uint64(), nil
	case "$bin":
		return hex.DecodeString(v.(string))
	case "$repeat":
		parts := v.([]any)
		return strings.Repeat(parts[0].(string), int(parts[1].(int64))), nil
	}
	return nil, strconv.ErrSyntax
}

// decodeAll feeds a stream to a fresh decoder in pieces of the given size and collects
// the messages until the first error.
func decodeAll(stream []byte, piece int) ([]Message, error) {
	var d Decoder
	var out []Message
	for start := 0; start < len(stream); start += piece {
		d.Feed(stream[start:min(start+piece, len(stream))])
		for {
			m, err := d.Next()
			if err != nil {
				return out, err
			}
			if m == nil {
				break
			}
			out = append(out, *m)
		}
	}
	return out, nil
}

// pieces are the splits every stream is fed in: whole, one byte at a time, and odd cuts.
func pieces(n int) []int {
	if n > 4096 {
		return []int{n, 65536, 4093} // the 1 MiB frame: byte-at-a-time would only be slow
	}
	return []int{n + 1, 1, 3, 7}
}

func TestValidVectorsDecodeToTheirMessageAndEncodeToTheirBytes(t *testing.T) {
	for _, c := range loadVectors(t).Valid {
		t.Run(c.Name, func(t *testing.T) {
			frame := c.frame(t)
			want := wireValue(t, c.Message)
			for _, piece := range pieces(len(frame)) {
				got, err := decodeAll(frame, piece)
				if err != nil || len(got) != 1 {
					t.Fatalf("decoding in pieces of %d: %v (%d messages)", piece, err, len(got))
				}
				if !reflect.DeepEqual(got[0].Map(), want) {
					t.Fatalf("decoded %#v, want %#v", got[0].Map(), want)
				}
			}
			m, err := Validate(want)
			if err != nil {
				t.Fatalf("the vector's message does not validate: %v", err)
			}
			encoded, err := Encode(m)
			if err != nil {
				t.Fatalf("encoding: %v", err)
			}
			if !bytes.Equal(encoded, frame) {
				t.Fatalf("encoded\n%x\nwant\n%x", encoded, frame)
			}
		})
	}
}

func TestNoncanonicalVectorsDecodeAndReencodeCanonically(t *testing.T) {
	for _, c := range loadVectors(t).Noncanonical {
		t.Run(c.Name, func(t *testing.T) {
			frame := c.frame(t)
			got, err := decodeAll(frame, len(frame))
			if err != nil || len(got) != 1 {
				t.Fatalf("decoding: %v (%d messages)", err, len(got))
			}
			if want := wireValue(t, c.Message); !reflect.DeepEqual(got[0].Map(), want) {
				t.Fatalf("decoded %#v, want %#v", got[0].Map(), want)
			}
			encoded, err := Encode(got[0])
			if err != nil {
				t.Fatalf("encoding: %v", err)
			}
			if hex.EncodeToString(encoded) != c.CanonicalHex {
				t.Fatalf("re-encoded %x, want %s", encoded, c.CanonicalHex)
			}
		})
	}
}

func TestInvalidVectorsAreRejectedWithTheirCode(t *testing.T) {
	for _, c := range loadVectors(t).Invalid {
		t.Run(c.Name, func(t *testing.T) {
			stream := c.frame(t)
			for _, piece := range pieces(len(stream)) {
				got, err := decodeAll(stream, piece)
				perr, ok := err.(*Error)
				if !ok {
					t.Fatalf("pieces of %d: want an *Error with code %s, got %v", piece, c.Error, err)
				}
				if string(perr.Code) != c.Error {
					t.Fatalf("pieces of %d: code %s (%s), want %s", piece, perr.Code, perr.Message, c.Error)
				}
				if len(got) != c.MessagesBefore {
					t.Fatalf("pieces of %d: %d messages before the error, want %d", piece, len(got), c.MessagesBefore)
				}
			}
		})
	}
}

func TestDecoderFailsForGoodAfterAnInvalidFrame(t *testing.T) {
	var d Decoder
	d.Feed([]byte{0, 0, 0, 1, 0xc1})
	if _, err := d.Next(); err == nil {
		t.Fatal("the reserved byte was accepted")
	}
	d.Feed(unhex(t, "0000001081a474797065a9686561727462656174")) // a valid heartbeat
	if m, err := d.Next(); err == nil || m != nil {
		t.Fatalf("the decoder resynchronised: %v, %v", m, err)
	}
}

func TestHandshakeVectorsGiveTheirKeysInputsAndProofs(t *testing.T) {
	for _, c := range loadVectors(t).Handshake {
		t.Run(c.Name, func(t *testing.T) {
			nw, ns := unhex(t, c.WorkerNonceHex), unhex(t, c.SupervisorNonceHex)
			key := TokenKey(c.Token)
			checks := []struct {
				what string
				got  []byte
				want string
			}{
				{"key", key, c.KeyHex},
				{"supervisor input", SupervisorInput(c.JobID, nw, ns), c.SupervisorInputHex},
				{"worker input", WorkerInput(c.JobID, ns, nw), c.WorkerInputHex},
				{"supervisor proof", SupervisorProof(key, c.JobID, nw, ns), c.SupervisorProofHex},
				{"worker proof", WorkerProof(key, c.JobID, ns, nw), c.WorkerProofHex},
			}
			for _, check := range checks {
				if hex.EncodeToString(check.got) != check.want {
					t.Errorf("%s: %x, want %s", check.what, check.got, check.want)
				}
			}
			if !ProofsMatch(SupervisorProof(key, c.JobID, nw, ns), unhex(t, c.SupervisorProofHex)) {
				t.Error("ProofsMatch refuses the right proof")
			}
			if ProofsMatch(WorkerProof(key, c.JobID, ns, nw), unhex(t, c.SupervisorProofHex)) {
				t.Error("a worker proof passes as the supervisor's")
			}
		})
	}
}

func TestNormalizeSortsGoMapsAndRefusesNonStringKeys(t *testing.T) {
	v, err := Normalize(map[string]any{"b": 1, "a": []int{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	want := Map{{"a", []any{int64(1), int64(2)}}, {"b", int64(1)}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %#v, want %#v", v, want)
	}
	if _, err := Normalize(map[int]string{1: "x"}); err == nil {
		t.Fatal("a map with int keys was accepted")
	}
}
