// Encode every valid vector's message with rmp-serde and compare to its bytes.
use rmpv::Value;
use serde::Serialize;
use serde_json::Value as J;

fn conv(j: &J) -> Value {
    match j {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => {
            if let Some(u) = n.as_u64() { Value::from(u) } else { Value::from(n.as_i64().unwrap()) }
        }
        J::String(s) => Value::from(s.as_str()),
        J::Array(a) => Value::Array(a.iter().map(conv).collect()),
        J::Object(m) => {
            if let Some(J::String(s)) = m.get("$int") {
                return if s.starts_with('-') { Value::from(s.parse::<i64>().unwrap()) } else { Value::from(s.parse::<u64>().unwrap()) };
            }
            if let Some(J::String(s)) = m.get("$float") { return Value::F64(s.parse().unwrap()); }
            if let Some(J::String(s)) = m.get("$bin") { return Value::Binary(hex::decode(s).unwrap()); }
            if let Some(J::Array(r)) = m.get("$repeat") {
                return Value::from(r[0].as_str().unwrap().repeat(r[1].as_u64().unwrap() as usize));
            }
            Value::Map(m.iter().map(|(k, v)| (Value::from(k.as_str()), conv(v))).collect())
        }
    }
}

#[derive(Serialize)]
struct Progress<'a> {
    r#type: &'a str,
    percent: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct Hello<'a> {
    r#type: &'a str,
    v: u32,
    job_id: &'a str,
    pid: u32,
    #[serde(with = "serde_bytes")]
    nonce: Vec<u8>,
}

fn main() {
    let path = std::env::args().nth(1).unwrap();
    let vectors: J = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (mut ok, mut bad) = (0, vec![]);
    for c in vectors["valid"].as_array().unwrap() {
        let Some(h) = c["hex"].as_str() else { continue };
        let want = hex::decode(h).unwrap();
        let got = rmp_serde::to_vec_named(&conv(&c["message"])).unwrap();
        if got == want[4..] { ok += 1 } else { bad.push(c["name"].as_str().unwrap().to_string()) }
    }
    println!("rmpv::Value via to_vec_named: ok={ok} bad={bad:?}");
    let p = Progress { r#type: "progress", percent: 42.5, message: Some("frames 425/1000") };
    let hello = Hello { r#type: "hello", v: 2, job_id: "01HZX3J5Q8K2V7N4M6P9R0T1WA", pid: 4242, nonce: (0u8..32).collect() };
    for (name, got) in [("progress_float", rmp_serde::to_vec_named(&p).unwrap()), ("hello", rmp_serde::to_vec_named(&hello).unwrap())] {
        let case = vectors["valid"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
        let want = hex::decode(case["hex"].as_str().unwrap()).unwrap();
        println!("struct {name} via to_vec_named: {}", if got == want[4..] { "same bytes" } else { "DIFFERENT" });
        let arr = rmp_serde::to_vec(&p).unwrap();
        if name == "progress_float" { println!("struct via to_vec (arrays): {}", if arr == want[4..] { "same" } else { "different (structs as arrays)" }); }
    }
}
