// Encode every valid vector's message with vmihailenco/msgpack/v5 and compare bytes.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

type pair struct {
	k string
	v json.RawMessage
}

// ordered reads a JSON object keeping its key order.
func ordered(raw json.RawMessage) ([]pair, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var out []pair
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, pair{t.(string), v})
	}
	return out, nil
}

// value turns the vectors' JSON conventions into the Go values a program would hold.
func value(raw json.RawMessage) any {
	var x any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	_ = d.Decode(&x)
	return conv(x)
}

func conv(x any) any {
	switch t := x.(type) {
	case json.Number:
		n, _ := strconv.ParseInt(string(t), 10, 64)
		return n
	case []any:
		for i := range t {
			t[i] = conv(t[i])
		}
		return t
	case map[string]any:
		if s, ok := t["$int"]; ok {
			b, _ := new(big.Int).SetString(s.(string), 10)
			if b.IsInt64() {
				return b.Int64()
			}
			return b.Uint64()
		}
		if s, ok := t["$float"]; ok {
			f, _ := strconv.ParseFloat(s.(string), 64)
			return f
		}
		if s, ok := t["$bin"]; ok {
			b, _ := hex.DecodeString(s.(string))
			return b
		}
		if r, ok := t["$repeat"]; ok {
			a := r.([]any)
			n, _ := strconv.Atoi(string(a[1].(json.Number)))
			return strings.Repeat(a[0].(string), n)
		}
		for k, v := range t {
			t[k] = conv(v)
		}
		return t
	}
	return x
}

func main() {
	data, _ := os.ReadFile(os.Args[1])
	var vectors struct {
		Valid []struct {
			Name    string          `json:"name"`
			Hex     string          `json:"hex"`
			Message json.RawMessage `json:"message"`
		} `json:"valid"`
	}
	if err := json.Unmarshal(data, &vectors); err != nil {
		panic(err)
	}
	compact := len(os.Args) > 2 && os.Args[2] == "compact"
	ok, bad := 0, []string{}
	for _, c := range vectors.Valid {
		if c.Hex == "" {
			continue
		}
		want, _ := hex.DecodeString(c.Hex)
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.SetSortMapKeys(true)
		enc.UseCompactInts(compact)
		fields, err := ordered(c.Message)
		if err != nil {
			panic(err)
		}
		// The top level in wire order: a struct with fields in table order does the
		// same; here the pairs are written one by one.
		_ = enc.EncodeMapLen(len(fields))
		for _, f := range fields {
			_ = enc.EncodeString(f.k)
			if err := enc.Encode(value(f.v)); err != nil {
				panic(err)
			}
		}
		if bytes.Equal(buf.Bytes(), want[4:]) {
			ok++
		} else {
			bad = append(bad, c.Name)
		}
	}
	fmt.Printf("compact=%v ok=%d bad=%v\n", compact, ok, bad)
}
