package protocol

// Values decoded from msgpack have these Go types: nil, bool, int64 (every integer that
// fits), uint64 (integers above math.MaxInt64), float64 (float32 is widened; the
// timestamp extension becomes float seconds), string (valid UTF-8), []byte (bin),
// []any (array) and Map (a map with string keys, in wire order).

// KV is one key and value of a Map.
type KV struct {
	Key   string
	Value any
}

// Map is a msgpack map with string keys that keeps its keys in order: the order they
// arrived in, or the order they are to be sent in (docs/protocol.md, section 3).
type Map []KV

// Get returns the value of key and whether the map holds it.
func (m Map) Get(key string) (any, bool) {
	for _, kv := range m {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// set replaces the value of key in place, or appends it: a duplicate key keeps its
// first position and its last value, as msgpack-python does.
func (m Map) set(key string, value any) Map {
	for i := range m {
		if m[i].Key == key {
			m[i].Value = value
			return m
		}
	}
	return append(m, KV{key, value})
}

// depth counts nested containers: a scalar is 0, [] and {} are 1, [[1]] is 2.
func depth(v any) int {
	deepest := 0
	switch t := v.(type) {
	case []any:
		for _, item := range t {
			deepest = max(deepest, depth(item))
		}
	case Map:
		for _, kv := range t {
			deepest = max(deepest, depth(kv.Value))
		}
	default:
		return 0
	}
	return deepest + 1
}
