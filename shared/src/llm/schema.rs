//! A JSON Schema validator for the subset structured output uses.
//!
//! The `jsonschema` crate would pull in an HTTP client and a regex engine for remote
//! `$ref`s and `format`s that LLM answer schemas never use; this covers what they do:
//! `type` (one or a list; `integer` is a number with no fraction), `enum`, `const`,
//! `properties`, `required`, `additionalProperties` (bool or schema), `items` (one schema),
//! `prefixItems`, `minItems`/`maxItems`, `uniqueItems`, `minLength`/`maxLength` (in
//! characters), `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum`, `multipleOf`,
//! `minProperties`/`maxProperties`, `allOf`/`anyOf`/`oneOf`/`not`, and local `$ref`s
//! (`#`, `#/$defs/...`, `#/definitions/...`), `pattern` (the `regex` crate's syntax, which
//! agrees with ECMA 262 on what answer schemas use: classes, anchors, repetition; no
//! look-around or backreferences, which it refuses as an invalid pattern), and `format`
//! as an assertion for `date-time`, `date`, `time`, `email`, `uuid` and `uri` (what the
//! hosted providers' structured outputs accept: a caller who names one wants it held;
//! others are annotations). Other keywords are ignored, as a validator must for unknown ones.

use serde_json::Value;

/// Validation problems, each as `path: what`, at most a handful.
pub fn validate(schema: &Value, value: &Value) -> Result<(), Vec<String>> {
    let mut v = Validator { root: schema, errors: Vec::new(), depth: 0, patterns: Default::default() };
    v.check(schema, value, "");
    if v.errors.is_empty() { Ok(()) } else { Err(v.errors) }
}

const MAX_ERRORS: usize = 8;
/// `$ref` cycles that never consume input would recurse forever.
const MAX_DEPTH: usize = 64;

struct Validator<'a> {
    root: &'a Value,
    errors: Vec<String>,
    depth: usize,
    /// Compiled `pattern`s: a schema is checked against many values (arrays, retries).
    patterns: std::collections::HashMap<&'a str, Option<regex::Regex>>,
}

/// Patterns come from the schema, which a caller may build from input: bound what one
/// may cost to compile.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// `format` assertions; `None` for formats this validator leaves as annotations.
fn format_holds(format: &str, text: &str) -> Option<bool> {
    Some(match format {
        "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        "date" => text.len() == 10 && chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
        // RFC 3339 full-time: a time with an offset (`Z` or ±hh:mm).
        "time" => chrono::DateTime::parse_from_rfc3339(&format!("2000-01-01T{text}")).is_ok(),
        "email" => {
            // RFC 5321's shape without its quoted and bracketed forms, which answers never use.
            text.rsplit_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && !local.contains(['@', ' ', '"'])
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && domain.split('.').all(|l| {
                        !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-') && !l.starts_with('-')
                    })
            })
        }
        "uuid" => text.len() == 36 && uuid::Uuid::parse_str(text).is_ok(),
        "uri" => url::Url::parse(text).is_ok(),
        _ => return None,
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "integer" => v.as_f64().is_some_and(|n| n.fract() == 0.0),
        "number" => v.is_number(),
        other => type_name(v) == other,
    }
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl<'a> Validator<'a> {
    fn fail(&mut self, path: &str, msg: String) {
        if self.errors.len() < MAX_ERRORS {
            let at = if path.is_empty() { "/" } else { path };
            self.errors.push(format!("{at}: {msg}"));
        }
    }

    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let frag = reference.strip_prefix('#')?;
        if frag.is_empty() {
            return Some(self.root);
        }
        self.root.pointer(frag)
    }

    /// Whether `value` passes `schema`, without recording errors (for anyOf/oneOf/not).
    fn passes(&mut self, schema: &'a Value, value: &Value, path: &str) -> bool {
        let saved = std::mem::take(&mut self.errors);
        self.check(schema, value, path);
        let ok = self.errors.is_empty();
        self.errors = saved;
        ok
    }

    fn check(&mut self, schema: &'a Value, value: &Value, path: &str) {
        let s = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return self.fail(path, "no value is allowed here".into()),
            Value::Object(s) => s,
            _ => return,
        };
        if self.depth > MAX_DEPTH {
            return self.fail(path, "schema nests too deeply (a $ref cycle?)".into());
        }
        self.depth += 1;

        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            match self.resolve(r) {
                Some(target) => self.check(target, value, path),
                None => self.fail(path, format!("unresolvable $ref `{r}`")),
            }
        }

        match s.get("type") {
            Some(Value::String(t)) if !is_type(value, t) => {
                self.fail(path, format!("expected {t}, found {}", type_name(value)))
            }
            Some(Value::Array(ts)) if !ts.iter().filter_map(Value::as_str).any(|t| is_type(value, t)) => {
                let names: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
                self.fail(path, format!("expected one of {}, found {}", names.join("/"), type_name(value)))
            }
            _ => {}
        }
        if let Some(Value::Array(options)) = s.get("enum")
            && !options.contains(value)
        {
            self.fail(path, format!("must be one of {}", Value::Array(options.clone())));
        }
        if let Some(c) = s.get("const")
            && c != value
        {
            self.fail(path, format!("must be {c}"));
        }

        match value {
            Value::String(text) => {
                let n = text.chars().count() as u64;
                if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                    && n < min
                {
                    self.fail(path, format!("shorter than {min} characters"));
                }
                if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                    && n > max
                {
                    self.fail(path, format!("longer than {max} characters"));
                }
                if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
                    let compiled = self.patterns.entry(pattern).or_insert_with(|| {
                        regex::RegexBuilder::new(pattern).size_limit(PATTERN_SIZE_LIMIT).build().ok()
                    });
                    match compiled {
                        Some(re) if re.is_match(text) => {}
                        Some(_) => self.fail(path, format!("does not match the pattern `{pattern}`")),
                        None => self
                            .fail(path, format!("the schema's pattern `{pattern}` is not a valid regular expression")),
                    }
                }
                if let Some(format) = s.get("format").and_then(Value::as_str)
                    && format_holds(format, text) == Some(false)
                {
                    self.fail(path, format!("not a valid {format}"));
                }
            }
            Value::Number(num) => {
                let x = num.as_f64().unwrap_or(f64::NAN);
                let bound = |k: &str| s.get(k).and_then(Value::as_f64);
                if let Some(m) = bound("minimum")
                    && x < m
                {
                    self.fail(path, format!("less than the minimum {m}"));
                }
                if let Some(m) = bound("maximum")
                    && x > m
                {
                    self.fail(path, format!("greater than the maximum {m}"));
                }
                if let Some(m) = bound("exclusiveMinimum")
                    && x <= m
                {
                    self.fail(path, format!("not greater than {m}"));
                }
                if let Some(m) = bound("exclusiveMaximum")
                    && x >= m
                {
                    self.fail(path, format!("not less than {m}"));
                }
                if let Some(m) = bound("multipleOf").filter(|m| *m > 0.0)
                    && ((x / m) - (x / m).round()).abs() > 1e-9
                {
                    self.fail(path, format!("not a multiple of {m}"));
                }
            }
            Value::Array(items) => {
                if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    self.fail(path, format!("fewer than {min} items"));
                }
                if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                    && (items.len() as u64) > max
                {
                    self.fail(path, format!("more than {max} items"));
                }
                if s.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
                    for (i, a) in items.iter().enumerate() {
                        if items[..i].contains(a) {
                            self.fail(path, format!("item {i} repeats an earlier item"));
                            break;
                        }
                    }
                }
                let prefix = s.get("prefixItems").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
                for (i, item) in items.iter().enumerate() {
                    let sub = format!("{path}/{i}");
                    if let Some(p) = prefix.get(i) {
                        self.check(p, item, &sub);
                    } else if let Some(items_schema) = s.get("items") {
                        self.check(items_schema, item, &sub);
                    }
                }
            }
            Value::Object(obj) => {
                if let Some(Value::Array(req)) = s.get("required") {
                    for k in req.iter().filter_map(Value::as_str) {
                        if !obj.contains_key(k) {
                            self.fail(path, format!("missing required property `{k}`"));
                        }
                    }
                }
                if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
                    && (obj.len() as u64) < min
                {
                    self.fail(path, format!("fewer than {min} properties"));
                }
                if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
                    && (obj.len() as u64) > max
                {
                    self.fail(path, format!("more than {max} properties"));
                }
                let props = s.get("properties").and_then(Value::as_object);
                for (k, v) in obj {
                    let sub = format!("{path}/{}", pointer_escape(k));
                    match props.and_then(|p| p.get(k)) {
                        Some(ps) => self.check(ps, v, &sub),
                        None => match s.get("additionalProperties") {
                            Some(Value::Bool(false)) => self.fail(path, format!("unexpected property `{k}`")),
                            Some(extra @ Value::Object(_)) => self.check(extra, v, &sub),
                            _ => {}
                        },
                    }
                }
            }
            _ => {}
        }

        if let Some(Value::Array(all)) = s.get("allOf") {
            for sub in all {
                self.check(sub, value, path);
            }
        }
        if let Some(Value::Array(any)) = s.get("anyOf")
            && !any.iter().any(|sub| self.passes(sub, value, path))
        {
            self.fail(path, "matches none of the anyOf alternatives".into());
        }
        if let Some(Value::Array(one)) = s.get("oneOf") {
            let n = one.iter().filter(|sub| self.passes(sub, value, path)).count();
            if n != 1 {
                self.fail(path, format!("matches {n} of the oneOf alternatives, not exactly one"));
            }
        }
        if let Some(not) = s.get("not")
            && self.passes(not, value, path)
        {
            self.fail(path, "matches a schema it must not".into());
        }
        self.depth -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_types_and_bounds() {
        let schema = json!({
            "type": "object",
            "properties": {
                "score": {"type": "integer", "minimum": 1, "maximum": 5},
                "label": {"enum": ["weak", "ok", "strong"]},
                "notes": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 2},
            },
            "required": ["score", "label"],
            "additionalProperties": false,
        });
        assert!(validate(&schema, &json!({"score": 3, "label": "ok", "notes": ["a"]})).is_ok());
        let errs = validate(&schema, &json!({"score": 3.5, "notes": ["toolong", "b", "c"], "x": 1})).unwrap_err();
        let all = errs.join("\n");
        assert!(all.contains("/score: expected integer"), "{all}");
        assert!(all.contains("missing required property `label`"), "{all}");
        assert!(all.contains("/notes/0: longer than 5"), "{all}");
        assert!(all.contains("/notes: more than 2 items"), "{all}");
        assert!(all.contains("unexpected property `x`"), "{all}");
        assert!(validate(&schema, &json!({"score": 9, "label": "ok"})).unwrap_err()[0].contains("maximum"));
    }

    #[test]
    fn patterns_and_formats_are_asserted() {
        let schema = json!({
            "type": "object",
            "properties": {
                "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
                "word": {"type": "string", "pattern": "ab"},
                "at": {"type": "string", "format": "date-time"},
                "day": {"type": "string", "format": "date"},
                "clock": {"type": "string", "format": "time"},
                "mail": {"type": "string", "format": "email"},
                "id": {"type": "string", "format": "uuid"},
                "link": {"type": "string", "format": "uri"},
                "free": {"type": "string", "format": "hostname-ish"},
                "tags": {"type": "array", "items": {"type": "string", "pattern": "^#"}},
            },
        });
        let good = json!({"code": "ABC-42", "word": "xxabyy", "at": "2026-11-25T07:00:00Z", "day": "2026-02-28",
            "clock": "07:00:00+01:00", "mail": "ada.okafor@example.co.uk", "id": "67e55044-10b1-426f-9247-bb680e5fe0c8",
            "link": "https://example.com/jobs/1", "free": "anything", "tags": ["#a", "#b"]});
        assert_eq!(validate(&schema, &good), Ok(()));
        let bad = json!({"code": "abc-42", "word": "ba", "at": "2026-11-25 07:00", "day": "2026-02-30",
            "clock": "25:00:00Z", "mail": "ada@localhost", "id": "67e55044", "link": "/jobs/1"});
        let all = validate(&schema, &bad).unwrap_err().join("\n");
        for want in [
            "/code: does not match the pattern",
            "/word: does not match",
            "/at: not a valid date-time",
            "/day: not a valid date",
            "/clock: not a valid time",
            "/mail: not a valid email",
            "/id: not a valid uuid",
            "/link: not a valid uri",
        ] {
            assert!(all.contains(want), "{want} in {all}");
        }
        let errs = validate(&schema, &json!({"tags": ["#a", "b"]})).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("/tags/1: does not match"), "{errs:?}");
        // A pattern the engine cannot take is the schema's error, named, never a panic.
        let lookahead = json!({"type": "string", "pattern": "^(?=a)a$"});
        assert!(validate(&lookahead, &json!("a")).unwrap_err()[0].contains("not a valid regular expression"));
    }

    #[test]
    fn refs_and_combinators() {
        let schema = json!({
            "$defs": {"name": {"type": "string", "minLength": 1}},
            "type": "object",
            "properties": {
                "who": {"$ref": "#/$defs/name"},
                "id": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "kind": {"oneOf": [{"const": "a"}, {"const": "b"}]},
            },
        });
        assert!(validate(&schema, &json!({"who": "x", "id": 3, "kind": "a"})).is_ok());
        assert!(validate(&schema, &json!({"who": ""})).is_err());
        assert!(validate(&schema, &json!({"id": null})).is_err());
        assert!(validate(&schema, &json!({"kind": "c"})).is_err());
        // A self-referencing schema ends with an error, not a stack overflow.
        let cyclic = json!({"$ref": "#"});
        assert!(validate(&cyclic, &json!(1)).is_err());
    }
}
