//! Constrained decoding for the local model: which bytes may come next so the output
//! stays a prefix of JSON valid against a schema.
//!
//! A schema is compiled to a [`Node`] tree; [`Grammar`] walks it byte by byte with a
//! stack of frames. Structure the schema fixes (braces, property names, commas, enum
//! values, booleans, small integer ranges) is the only thing allowed where it goes, so
//! even a 135M model produces the right shape; the model chooses the values within their
//! type. Properties are laid out in the order of `required`, then the rest by name
//! (serde_json keeps object keys sorted, so the order of `properties` is not known).
//! Output is canonical (no whitespace). What the compiler cannot follow (`anyOf`, `$ref`,
//! type lists, objects without `properties`) is any JSON value ([`JsonPrefix`]), checked
//! against the schema afterwards like a hosted answer.

use serde_json::Value;
use std::sync::Arc;

/// Consecutive whitespace bytes allowed in free-form JSON, so a model cannot pad forever.
const MAX_JSON_WHITESPACE: u8 = 8;
/// Integer ranges up to this size are offered as a choice of their values.
const MAX_INT_CHOICES: i64 = 100;

/// A compiled schema.
#[derive(Debug)]
pub(crate) enum Node {
    Object(Vec<(String, Arc<Node>)>),
    Array {
        item: Arc<Node>,
        min: usize,
        max: Option<usize>,
    },
    String {
        min: usize,
        max: Option<usize>,
    },
    /// One of these exact JSON texts.
    Choice(Arc<Vec<Vec<u8>>>),
    Number {
        integer: bool,
    },
    Any,
}

impl Node {
    pub(crate) fn compile(schema: &Value) -> Arc<Node> {
        Arc::new(Self::build(schema, 0))
    }

    fn build(s: &Value, depth: usize) -> Node {
        let Some(obj) = s.as_object() else { return Node::Any };
        if depth > 32 {
            return Node::Any;
        }
        let texts = |vals: &[Value]| Node::Choice(Arc::new(vals.iter().map(|v| v.to_string().into_bytes()).collect()));
        if let Some(c) = obj.get("const") {
            return texts(std::slice::from_ref(c));
        }
        if let Some(Value::Array(options)) = obj.get("enum")
            && !options.is_empty()
        {
            return texts(options);
        }
        if ["anyOf", "oneOf", "allOf", "$ref", "not"].iter().any(|k| obj.contains_key(*k)) {
            return Node::Any;
        }
        let u = |k: &str| obj.get(k).and_then(Value::as_u64).map(|n| n as usize);
        match obj.get("type").and_then(Value::as_str) {
            Some("object") => match obj.get("properties").and_then(Value::as_object) {
                Some(props) if !props.is_empty() => {
                    // serde_json keeps maps sorted, so the order the schema's author chose
                    // survives only in `required`: required properties in that order, then
                    // the others by name.
                    let required: Vec<&str> = obj
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| r.iter().filter_map(Value::as_str).filter(|k| props.contains_key(*k)).collect())
                        .unwrap_or_default();
                    let mut order: Vec<&str> = Vec::with_capacity(props.len());
                    for k in required.into_iter().chain(props.keys().map(String::as_str)) {
                        if !order.contains(&k) {
                            order.push(k);
                        }
                    }
                    Node::Object(
                        order
                            .into_iter()
                            .map(|k| (k.to_string(), Arc::new(Self::build(&props[k], depth + 1))))
                            .collect(),
                    )
                }
                _ => Node::Any,
            },
            Some("array") => {
                let item = obj.get("items").map(|i| Self::build(i, depth + 1)).unwrap_or(Node::Any);
                Node::Array { item: Arc::new(item), min: u("minItems").unwrap_or(0), max: u("maxItems") }
            }
            Some("string") => Node::String { min: u("minLength").unwrap_or(0), max: u("maxLength") },
            Some("boolean") => texts(&[Value::Bool(true), Value::Bool(false)]),
            Some("null") => texts(&[Value::Null]),
            Some("integer") => {
                let (lo, hi) = (obj.get("minimum").and_then(Value::as_i64), obj.get("maximum").and_then(Value::as_i64));
                match (lo, hi) {
                    (Some(lo), Some(hi)) if hi >= lo && hi - lo < MAX_INT_CHOICES => {
                        texts(&(lo..=hi).map(Value::from).collect::<Vec<_>>())
                    }
                    _ => Node::Number { integer: true },
                }
            }
            Some("number") => Node::Number { integer: false },
            _ => Node::Any,
        }
    }
}

#[derive(Debug, Clone)]
enum Frame {
    /// A value still to be laid out.
    Value(Arc<Node>),
    /// Exact bytes, e.g. `,"name":`.
    Lit(Arc<[u8]>, usize),
    /// One of several exact texts; `alive` are the ones still matching after `pos` bytes.
    Choice(Arc<Vec<Vec<u8>>>, Vec<u16>, usize),
    /// A string's content after its opening quote; `len` in characters.
    Str {
        escape: Escape,
        len: usize,
        /// `minLength`: the closing quote is refused before this many characters.
        min: usize,
        max: Option<usize>,
    },
    Num {
        integer: bool,
        st: Option<Num>,
    },
    /// An object's properties, `next` the next to lay out.
    Obj(Arc<Node>, usize),
    /// An array after `[`, with `count` items so far.
    Arr {
        item: Arc<Node>,
        count: usize,
        min: usize,
        max: Option<usize>,
    },
    Any(JsonPrefix),
}

enum Step {
    Consumed,
    Reject,
    /// The frame is complete without this byte; the frame below gets it.
    Finished,
    /// The byte completed the frame.
    ConsumedAndPop,
    /// The byte opened a new value (an array's `,`).
    ConsumedAndPush(Arc<Node>),
    /// A new value (an array's first item) starts with this very byte.
    Delegate(Arc<Node>),
}

/// Where a constrained generation stands.
#[derive(Debug, Clone)]
pub(crate) struct Grammar {
    stack: Vec<Frame>,
}

impl Grammar {
    pub(crate) fn new(root: Arc<Node>) -> Self {
        let mut g = Grammar { stack: vec![Frame::Value(root)] };
        g.expand();
        g
    }

    /// The whole value is complete: nothing more may follow.
    pub(crate) fn done(&self) -> bool {
        self.stack.is_empty()
    }

    /// Generation may stop here (complete, or a top-level number/choice that could end).
    pub(crate) fn can_end(&self) -> bool {
        match self.stack.as_slice() {
            [] => true,
            [Frame::Num { st, .. }] => st.is_some_and(Num::terminal),
            [Frame::Choice(opts, alive, pos)] => alive.iter().any(|&i| opts[i as usize].len() == *pos),
            [Frame::Any(p)] => p.can_end(),
            _ => false,
        }
    }

    pub(crate) fn accepts(&self, bytes: &[u8]) -> bool {
        let mut g = self.clone();
        bytes.iter().all(|&b| g.push(b))
    }

    /// Lay out pending values until the top frame consumes bytes itself.
    fn expand(&mut self) {
        loop {
            match self.stack.last_mut() {
                Some(Frame::Value(node)) => {
                    let node = node.clone();
                    self.stack.pop();
                    match &*node {
                        Node::Object(_) => {
                            self.stack.push(Frame::Obj(node.clone(), 0));
                            self.stack.push(Frame::Lit(Arc::from(&b"{"[..]), 0));
                        }
                        Node::Array { item, min, max } => {
                            self.stack.push(Frame::Arr { item: item.clone(), count: 0, min: *min, max: *max });
                            self.stack.push(Frame::Lit(Arc::from(&b"["[..]), 0));
                        }
                        Node::String { min, max } => {
                            let min = (*min).min(max.unwrap_or(usize::MAX));
                            self.stack.push(Frame::Str { escape: Escape::None, len: 0, min, max: *max });
                            self.stack.push(Frame::Lit(Arc::from(&b"\""[..]), 0));
                        }
                        Node::Choice(opts) => {
                            self.stack.push(Frame::Choice(opts.clone(), (0..opts.len() as u16).collect(), 0))
                        }
                        Node::Number { integer } => self.stack.push(Frame::Num { integer: *integer, st: None }),
                        Node::Any => self.stack.push(Frame::Any(JsonPrefix::default())),
                    }
                }
                Some(Frame::Obj(node, next)) => {
                    let Node::Object(props) = &**node else { unreachable!("Obj frames hold objects") };
                    if *next < props.len() {
                        let (name, value) = &props[*next];
                        let sep = if *next > 0 { "," } else { "" };
                        let key = Value::String(name.clone()).to_string();
                        *next += 1;
                        let value = value.clone();
                        self.stack.push(Frame::Value(value));
                        self.stack.push(Frame::Lit(Arc::from(format!("{sep}{key}:").into_bytes()), 0));
                    } else {
                        self.stack.pop();
                        self.stack.push(Frame::Lit(Arc::from(&b"}"[..]), 0));
                    }
                }
                _ => return,
            }
        }
    }

    /// Feed one byte; false if it cannot continue a valid value.
    pub(crate) fn push(&mut self, b: u8) -> bool {
        loop {
            let Some(top) = self.stack.last_mut() else { return false };
            match Self::step(top, b) {
                Step::Reject => return false,
                Step::Finished => {
                    self.stack.pop();
                    self.expand();
                    // The byte goes to whatever comes next: loop.
                }
                Step::Delegate(node) => {
                    self.stack.push(Frame::Value(node));
                    self.expand();
                }
                Step::ConsumedAndPush(node) => {
                    self.stack.push(Frame::Value(node));
                    self.expand();
                    return true;
                }
                Step::ConsumedAndPop => {
                    self.stack.pop();
                    self.expand();
                    return true;
                }
                Step::Consumed => {
                    let complete = match self.stack.last() {
                        Some(Frame::Lit(t, pos)) => *pos == t.len(),
                        Some(Frame::Choice(opts, alive, pos)) => alive.iter().all(|&i| opts[i as usize].len() == *pos),
                        Some(Frame::Any(p)) => p.done,
                        _ => false,
                    };
                    if complete {
                        self.stack.pop();
                        self.expand();
                    }
                    return true;
                }
            }
        }
    }

    fn step(top: &mut Frame, b: u8) -> Step {
        match top {
            Frame::Value(_) | Frame::Obj(..) => Step::Reject, // expanded before any byte
            Frame::Lit(t, pos) => {
                if t.get(*pos) == Some(&b) {
                    *pos += 1;
                    Step::Consumed
                } else {
                    Step::Reject
                }
            }
            Frame::Choice(opts, alive, pos) => {
                let next: Vec<u16> =
                    alive.iter().copied().filter(|&i| opts[i as usize].get(*pos) == Some(&b)).collect();
                if !next.is_empty() {
                    *alive = next;
                    *pos += 1;
                    Step::Consumed
                } else if alive.iter().any(|&i| opts[i as usize].len() == *pos) {
                    Step::Finished
                } else {
                    Step::Reject
                }
            }
            Frame::Str { escape, len, min, max } => match escape {
                Escape::Backslash => {
                    *escape = match b {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Escape::None,
                        b'u' => Escape::Hex(0),
                        _ => return Step::Reject,
                    };
                    Step::Consumed
                }
                Escape::Hex(n) => {
                    if !b.is_ascii_hexdigit() {
                        return Step::Reject;
                    }
                    *escape = if *n == 3 { Escape::None } else { Escape::Hex(*n + 1) };
                    Step::Consumed
                }
                Escape::None => match b {
                    b'"' if *len < *min => Step::Reject,
                    b'"' => Step::ConsumedAndPop,
                    0..=0x1f => Step::Reject,
                    _ => {
                        // Count characters, not UTF-8 continuation bytes.
                        if b & 0xC0 != 0x80 {
                            if max.is_some_and(|m| *len >= m) {
                                return Step::Reject;
                            }
                            *len += 1;
                        }
                        if b == b'\\' {
                            *escape = Escape::Backslash;
                        }
                        Step::Consumed
                    }
                },
            },
            Frame::Num { integer, st } => match Num::next(*st, b, *integer) {
                Some(n) => {
                    *st = Some(n);
                    Step::Consumed
                }
                None if st.is_some_and(Num::terminal) => Step::Finished,
                None => Step::Reject,
            },
            Frame::Arr { item, count, min, max } => {
                let room = max.is_none_or(|m| *count < m);
                match b {
                    b']' if *count >= *min => Step::ConsumedAndPop,
                    b',' if *count > 0 && room => {
                        *count += 1;
                        Step::ConsumedAndPush(item.clone())
                    }
                    _ if *count == 0 && room => {
                        *count += 1;
                        Step::Delegate(item.clone())
                    }
                    _ => Step::Reject,
                }
            }
            Frame::Any(p) => {
                if p.push(b) {
                    Step::Consumed
                } else if p.can_end() {
                    Step::Finished
                } else {
                    Step::Reject
                }
            }
        }
    }
}

/// An incremental check that bytes so far are a prefix of one JSON value.
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonPrefix {
    /// Open containers: `true` for an object.
    stack: Vec<bool>,
    state: St,
    /// The value is complete; nothing more may follow.
    pub(crate) done: bool,
    whitespace: u8,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum St {
    /// A value must come (start of input, after `:`, after `,` in an array).
    #[default]
    Value,
    /// After `[`: a value or `]`.
    ArrayStart,
    /// After `{`: a key or `}`.
    ObjectStart,
    /// After `,` in an object: a key.
    Key,
    /// Inside a string; `key` says whether it is an object key.
    Str {
        key: bool,
        escape: Escape,
    },
    /// After a key: `:`.
    Colon,
    /// After a value: `,` or a closing bracket.
    After,
    Num(Num),
    /// Inside `true`/`false`/`null`: which literal and how far.
    Lit {
        which: u8,
        at: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Escape {
    None,
    Backslash,
    Hex(u8),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigits,
}

const LITERALS: [&[u8]; 3] = [b"true", b"false", b"null"];

impl JsonPrefix {
    /// Whether generation may stop here: the value is complete (a top-level number
    /// counts once it has a digit in a final position).
    pub(crate) fn can_end(&self) -> bool {
        self.done
            || (self.stack.is_empty()
                && matches!(self.state, St::Num(Num::Zero | Num::Int | Num::Frac | Num::ExpDigits)))
    }

    fn end_value(&mut self) {
        self.state = St::After;
        if self.stack.is_empty() {
            self.done = true;
        }
    }

    /// Feed one byte; false if it cannot continue a JSON value.
    pub(crate) fn push(&mut self, b: u8) -> bool {
        if self.done {
            return false;
        }
        let ws = matches!(b, b' ' | b'\n' | b'\t' | b'\r');
        let in_token = matches!(self.state, St::Str { .. } | St::Lit { .. } | St::Num(_));
        if ws && !in_token {
            self.whitespace += 1;
            return self.whitespace <= MAX_JSON_WHITESPACE;
        }
        if !in_token {
            self.whitespace = 0;
        }
        match self.state {
            St::Value | St::ArrayStart => {
                if self.state == St::ArrayStart && b == b']' {
                    self.stack.pop();
                    self.end_value();
                    return true;
                }
                self.start_value(b)
            }
            St::ObjectStart | St::Key => match b {
                b'"' => {
                    self.state = St::Str { key: true, escape: Escape::None };
                    true
                }
                b'}' if self.state == St::ObjectStart => {
                    self.stack.pop();
                    self.end_value();
                    true
                }
                _ => false,
            },
            St::Colon => {
                if b == b':' {
                    self.state = St::Value;
                    true
                } else {
                    false
                }
            }
            St::After => self.after(b),
            St::Str { key, escape } => {
                match escape {
                    Escape::Backslash => {
                        self.state = match b {
                            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                                St::Str { key, escape: Escape::None }
                            }
                            b'u' => St::Str { key, escape: Escape::Hex(0) },
                            _ => return false,
                        };
                    }
                    Escape::Hex(n) => {
                        if !b.is_ascii_hexdigit() {
                            return false;
                        }
                        self.state = St::Str { key, escape: if n == 3 { Escape::None } else { Escape::Hex(n + 1) } };
                    }
                    Escape::None => match b {
                        b'"' => {
                            if key {
                                self.state = St::Colon;
                            } else {
                                self.end_value();
                            }
                        }
                        b'\\' => self.state = St::Str { key, escape: Escape::Backslash },
                        0..=0x1f => return false,
                        _ => {}
                    },
                }
                true
            }
            St::Lit { which, at } => {
                let lit = LITERALS[which as usize];
                if lit[at as usize] != b {
                    return false;
                }
                if at as usize + 1 == lit.len() {
                    self.end_value();
                } else {
                    self.state = St::Lit { which, at: at + 1 };
                }
                true
            }
            St::Num(n) => {
                let next = match (n, b) {
                    (Num::Minus, b'0') => Some(Num::Zero),
                    (Num::Minus, b'1'..=b'9') => Some(Num::Int),
                    (Num::Int, b'0'..=b'9') => Some(Num::Int),
                    (Num::Zero | Num::Int, b'.') => Some(Num::Dot),
                    (Num::Dot | Num::Frac, b'0'..=b'9') => Some(Num::Frac),
                    (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Some(Num::Exp),
                    (Num::Exp, b'+' | b'-') => Some(Num::ExpSign),
                    (Num::Exp | Num::ExpSign | Num::ExpDigits, b'0'..=b'9') => Some(Num::ExpDigits),
                    _ => None,
                };
                match next {
                    Some(n) => {
                        self.state = St::Num(n);
                        true
                    }
                    None if matches!(n, Num::Zero | Num::Int | Num::Frac | Num::ExpDigits)
                        && !self.stack.is_empty() =>
                    {
                        // The number ended; this byte belongs to what follows it.
                        self.state = St::After;
                        if ws {
                            self.whitespace = 1;
                            return true;
                        }
                        self.after(b)
                    }
                    None => false,
                }
            }
        }
    }

    fn start_value(&mut self, b: u8) -> bool {
        self.state = match b {
            b'{' => {
                self.stack.push(true);
                St::ObjectStart
            }
            b'[' => {
                self.stack.push(false);
                St::ArrayStart
            }
            b'"' => St::Str { key: false, escape: Escape::None },
            b'-' => St::Num(Num::Minus),
            b'0' => St::Num(Num::Zero),
            b'1'..=b'9' => St::Num(Num::Int),
            b't' => St::Lit { which: 0, at: 1 },
            b'f' => St::Lit { which: 1, at: 1 },
            b'n' => St::Lit { which: 2, at: 1 },
            _ => return false,
        };
        true
    }

    fn after(&mut self, b: u8) -> bool {
        let Some(&object) = self.stack.last() else { return false };
        match (b, object) {
            (b',', true) => self.state = St::Key,
            (b',', false) => self.state = St::Value,
            (b'}', true) | (b']', false) => {
                self.stack.pop();
                self.end_value();
            }
            _ => return false,
        }
        true
    }
}

impl Num {
    fn terminal(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::ExpDigits)
    }

    /// The state after `b`, from `st` (`None`: nothing yet).
    fn next(st: Option<Num>, b: u8, integer: bool) -> Option<Num> {
        match (st, b) {
            (None, b'-') => Some(Num::Minus),
            (None | Some(Num::Minus), b'0') => Some(Num::Zero),
            (None | Some(Num::Minus), b'1'..=b'9') => Some(Num::Int),
            (Some(Num::Int), b'0'..=b'9') => Some(Num::Int),
            (Some(Num::Zero | Num::Int), b'.') if !integer => Some(Num::Dot),
            (Some(Num::Dot | Num::Frac), b'0'..=b'9') => Some(Num::Frac),
            (Some(Num::Zero | Num::Int | Num::Frac), b'e' | b'E') if !integer => Some(Num::Exp),
            (Some(Num::Exp), b'+' | b'-') => Some(Num::ExpSign),
            (Some(Num::Exp | Num::ExpSign | Num::ExpDigits), b'0'..=b'9') => Some(Num::ExpDigits),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn feed(s: &str) -> Option<JsonPrefix> {
        let mut p = JsonPrefix::default();
        s.bytes().all(|b| p.push(b)).then_some(p)
    }

    #[test]
    fn json_prefixes_are_recognised() {
        for ok in [r#"{"a": [1, -2.5e3, true, null, "x\"\u00e9"], "b": {}}"#, "[]", "0", r#""s""#, "[0]"] {
            let p = feed(ok).unwrap_or_else(|| panic!("rejected {ok}"));
            assert!(p.can_end(), "{ok} should be complete");
        }
        for prefix in [r#"{"a": [1, "#, "{", r#"{"k"#, "-", "tr"] {
            let p = feed(prefix).unwrap_or_else(|| panic!("rejected prefix {prefix}"));
            assert!(!p.can_end(), "{prefix} is not complete");
        }
        for bad in ["{]", r#"{"a" 1}"#, "[1,]x", "01", "{\"a\":1}}", "tru e", "\"a\nb\"", r#"{"a":1,}"#] {
            assert!(feed(bad).is_none() || !feed(bad).unwrap().can_end(), "accepted {bad:?}");
        }
        assert!(feed("{}").unwrap().done);
        assert!(feed("{} ").is_none(), "nothing may follow a complete value");
        assert!(feed(&format!("{{{}", " ".repeat(20))).is_none(), "whitespace runs are bounded");
    }

    fn run(schema: &Value, text: &str) -> Option<Grammar> {
        let mut g = Grammar::new(Node::compile(schema));
        text.bytes().all(|b| g.push(b)).then_some(g)
    }

    #[test]
    fn strings_keep_to_min_and_max_length() {
        let schema = json!({"type": "string", "minLength": 3, "maxLength": 5});
        assert!(run(&schema, r#""ab""#).is_none(), "closed before minLength");
        assert!(run(&schema, r#""abc""#).is_some_and(|g| g.done()));
        assert!(run(&schema, r#""é€""#).is_none(), "counted in characters, not bytes");
        assert!(run(&schema, r#""é€ab""#).is_some_and(|g| g.done()));
        assert!(run(&schema, r#""abcdef"#).is_none(), "past maxLength");
    }

    #[test]
    fn schema_structure_is_enforced() {
        let schema = json!({
            "type": "object",
            "properties": {
                "score": {"type": "integer", "minimum": 1, "maximum": 10},
                "reason": {"type": "string", "maxLength": 8},
                "tags": {"type": "array", "items": {"enum": ["star", "vague"]}, "maxItems": 2},
                "ok": {"type": "boolean"},
                "extra": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "ratio": {"type": "number"},
            },
            "required": ["score", "reason", "tags", "ok", "extra", "ratio"],
        });
        let good = r#"{"score":10,"reason":"clear","tags":["star","vague"],"ok":false,"extra": null,"ratio":-0.5e2}"#;
        let g = run(&schema, good).unwrap_or_else(|| panic!("rejected {good}"));
        assert!(g.done());
        assert!(crate::llm::schema::validate(&schema, &serde_json::from_str(good).unwrap()).is_ok());
        for bad in [
            r#"{"reason""#,   // properties come in schema order
            r#"{"score":11"#, // out of range
            r#"{"score":0"#,
            r#"{"score":1,"reason":"too long!""#,
            r#"{"score":1,"reason":"a","tags":["other""#,
            r#"{"score":1,"reason":"a","tags":["star","star","star""#,
            r#"{ "score""#, // canonical: no whitespace in fixed structure
            r#"{"score":1,"reason":"a","tags":[],"ok":yes"#,
        ] {
            assert!(run(&schema, bad).is_none(), "accepted {bad}");
        }
        let partial = run(&schema, r#"{"score":1"#).unwrap();
        assert!(!partial.can_end() && partial.accepts(b",\"reason") && !partial.accepts(b"}"));
    }

    #[test]
    fn scalar_roots_and_choices_end_cleanly() {
        let g = run(&json!({"type": "integer"}), "42").unwrap();
        assert!(g.can_end() && !g.done());
        let g = run(&json!({"enum": ["a", "ab"]}), "\"a\"").unwrap();
        assert!(g.done());
        let g = run(&json!({"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 12}}), "[1,12]")
            .unwrap();
        assert!(g.done());
        assert!(run(&json!({"type": "array", "items": {"type": "integer"}, "minItems": 1}), "[]").is_none());
    }
}
