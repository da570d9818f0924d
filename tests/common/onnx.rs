//! Tiny ONNX models written byte by byte (ONNX is a protobuf; a dozen
//! fields suffice), so tests can bring a model of any output shape without
//! Python or a protobuf dependency.

/// A stand-in segmentation model: waveform `[N, 1, samples]` → zeros
/// `[N, frames, classes]` whatever the window length (it keeps the first
/// `frames · classes` samples and reshapes them), so a 10 s window of
/// silence gives exactly that shape. The window must hold at least
/// `frames · classes` samples.
pub fn segmentation_like(frames: usize, classes: usize) -> Vec<u8> {
    let kept = (frames * classes) as i64;
    let nodes = [
        node("Slice", &["waveform", "starts", "ends", "axes"], &["kept"]),
        node("Reshape", &["kept", "shape"], &["scores"]),
    ];
    let initializers = [
        int64s("starts", &[0]),
        int64s("ends", &[kept]),
        int64s("axes", &[2]),
        int64s("shape", &[0, frames as i64, classes as i64]),
    ];
    let mut graph = Vec::new();
    for n in &nodes {
        message(&mut graph, 1, n);
    }
    string(&mut graph, 2, "segmentation_like");
    for t in &initializers {
        message(&mut graph, 5, t);
    }
    message(
        &mut graph,
        11,
        &float_tensor_info(
            "waveform",
            &[Dim::Param("batch"), Dim::Value(1), Dim::Param("samples")],
        ),
    );
    message(
        &mut graph,
        12,
        &float_tensor_info(
            "scores",
            &[
                Dim::Param("batch"),
                Dim::Value(frames as i64),
                Dim::Value(classes as i64),
            ],
        ),
    );
    let mut opset = Vec::new();
    string(&mut opset, 1, "");
    varint_field(&mut opset, 2, 13);
    let mut model = Vec::new();
    varint_field(&mut model, 1, 7); // ir_version
    string(&mut model, 2, "gst-speakrs tests");
    message(&mut model, 7, &graph);
    message(&mut model, 8, &opset);
    model
}

/// Writes `segmentation_like(frames, classes)` to a fresh temporary file.
pub fn write_segmentation_like(name: &str, frames: usize, classes: usize) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("speakrs-{name}-{}.onnx", std::process::id()));
    std::fs::write(&path, segmentation_like(frames, classes)).unwrap();
    path
}

enum Dim<'a> {
    Value(i64),
    Param(&'a str),
}

/// NodeProto: input 1, output 2, name 3, op_type 4.
fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in inputs {
        string(&mut out, 1, i);
    }
    for o in outputs {
        string(&mut out, 2, o);
    }
    string(&mut out, 3, &op.to_lowercase());
    string(&mut out, 4, op);
    out
}

/// TensorProto of int64: dims 1, data_type 2 (INT64 = 7), name 8, raw_data 9.
fn int64s(name: &str, values: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    varint_field(&mut out, 1, values.len() as u64);
    varint_field(&mut out, 2, 7);
    string(&mut out, 8, name);
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    message(&mut out, 9, &raw);
    out
}

/// ValueInfoProto { name 1, type 2: TypeProto { tensor_type 1: { elem_type 1
/// (FLOAT = 1), shape 2: { dim 1: { dim_value 1 | dim_param 2 } } } } }.
fn float_tensor_info(name: &str, dims: &[Dim]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d {
            Dim::Value(v) => varint_field(&mut dim, 1, *v as u64),
            Dim::Param(p) => string(&mut dim, 2, p),
        }
        message(&mut shape, 1, &dim);
    }
    let mut tensor = Vec::new();
    varint_field(&mut tensor, 1, 1);
    message(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    message(&mut ty, 1, &tensor);
    let mut out = Vec::new();
    string(&mut out, 1, name);
    message(&mut out, 2, &ty);
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    varint(out, field << 3);
    varint(out, v);
}

fn message(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn string(out: &mut Vec<u8>, field: u64, s: &str) {
    message(out, field, s.as_bytes());
}
