// Encodes every valid vector's message with @msgpack/msgpack and compares the bytes.
// Usage: node check.js VECTORS [OPTIONS_JSON]; BIG=1 reads {"$int"} as BigInt.
const { encode } = require("@msgpack/msgpack");
const fs = require("fs");
const vectors = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const opts = JSON.parse(process.argv[3] || "{}");
function conv(v) {
  if (Array.isArray(v)) return v.map(conv);
  if (v !== null && typeof v === "object") {
    if ("$int" in v) return process.env.BIG ? BigInt(v["$int"]) : Number(v["$int"]);
    if ("$float" in v) return { __float: parseFloat(v["$float"]) };
    if ("$bin" in v) return Uint8Array.from(Buffer.from(v["$bin"], "hex"));
    if ("$repeat" in v) return v["$repeat"][0].repeat(v["$repeat"][1]);
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = conv(x);
    return out;
  }
  return v;
}
function plain(v) {  // floats as plain numbers: what a JS program would hold
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Uint8Array || typeof v === "bigint") return v;
  if (v !== null && typeof v === "object") {
    if ("__float" in v) return v.__float;
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}
let ok = 0, bad = [];
for (const c of vectors.valid) {
  if (!c.hex) continue;
  const body = Buffer.from(c.hex, "hex").subarray(4);
  const got = Buffer.from(encode(plain(conv(c.message)), opts));
  if (got.equals(body)) ok++; else bad.push(c.name);
}
console.log(JSON.stringify({ opts, ok, bad }));
