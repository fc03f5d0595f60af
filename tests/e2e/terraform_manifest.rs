//! One source of truth: `infra/functions.toml` against both Terraform stacks.
//!
//! Each stack keeps its per-function wiring in one `locals` block (`terraform/aws/manifest.tf`,
//! `terraform/gcp/manifest.tf`) that mirrors the manifest. This test parses the manifest
//! and the HCL (with `hcl-rs`), fails on any function, route, storage trigger, queue,
//! schedule, collection, secret, memory, timeout or access prefix that differs, checks the
//! AWS six-field cron against the manifest's five-field one, and checks that the resources
//! really iterate over those locals, so the block cannot go stale unnoticed.
//!
//! `terraform init`/`validate` cannot run here (no provider downloads); this test and
//! checkov (`infra/terraform-check.sh`) stand in.

use hcl::eval::{Context, Evaluate};
use hcl::{Block, Body, Expression};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The wiring manifest, normalised to the shape of the Terraform locals: every list
/// present (empty when absent), schedules as `{name, cron, payload}`.
fn manifest() -> Value {
    let text = std::fs::read_to_string(repo().join("infra/functions.toml")).expect("read infra/functions.toml");
    let doc: toml::Value = toml::from_str(&text).expect("infra/functions.toml is TOML");
    let doc = serde_json::to_value(doc).expect("TOML converts to JSON");
    let mut functions = serde_json::Map::new();
    for (name, f) in doc["function"].as_object().expect("[function.*] tables") {
        let list = |k: &str| f.get(k).cloned().unwrap_or_else(|| json!([]));
        let storage: Vec<Value> = list("storage")
            .as_array()
            .expect("storage is a list")
            .iter()
            .map(|s| json!({"prefix": s["prefix"], "suffix": s.get("suffix").cloned().unwrap_or(json!(""))}))
            .collect();
        let schedules: Vec<Value> = list("schedules")
            .as_array()
            .expect("schedules is a list")
            .iter()
            .map(|s| json!({"name": s["name"], "cron": s["cron"], "payload": s.get("payload").cloned().unwrap_or(json!({}))}))
            .collect();
        functions.insert(
            name.clone(),
            json!({
                "memory_mb": f["memory_mb"],
                "timeout_s": f["timeout_s"],
                "authorizer": f.get("authorizer").cloned().unwrap_or(json!(false)),
                "routes": list("routes"),
                "storage": storage,
                "queues": list("queues"),
                "schedules": schedules,
                "reads": list("reads"),
                "writes": list("writes"),
                "publishes": list("publishes"),
                "collections": list("collections"),
                "secrets": list("secrets"),
            }),
        );
    }
    json!({
        "functions": functions,
        "collections": doc.pointer("/store/collections").cloned().unwrap_or(json!([])),
        "max_attempts": doc.pointer("/defaults/max_attempts").cloned().unwrap_or(json!(5)),
    })
}

/// Every `.tf` file of a stack, parsed, by file name.
fn stack_files(name: &str) -> BTreeMap<String, Body> {
    let dir = repo().join("terraform").join(name);
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "tf") {
            let text = std::fs::read_to_string(&path).expect("read .tf file");
            let body = hcl::parse(&text).unwrap_or_else(|e| panic!("{} is not valid HCL: {e}", path.display()));
            files.insert(path.file_name().expect("file name").to_string_lossy().into_owned(), body);
        }
    }
    files
}

/// A local value defined in any `locals` block of a stack.
fn local<'a>(files: &'a BTreeMap<String, Body>, name: &str) -> Option<&'a Expression> {
    files
        .values()
        .flat_map(|b| b.blocks())
        .filter(|b| b.identifier() == "locals")
        .find_map(|b| b.body().attributes().find(|a| a.key() == name).map(|a| a.expr()))
}

/// The literal wiring locals of `manifest.tf`, evaluated (they must be plain data).
fn wiring(files: &BTreeMap<String, Body>, stack: &str) -> Value {
    let body = files.get("manifest.tf").unwrap_or_else(|| panic!("terraform/{stack}/manifest.tf is missing"));
    let locals: Vec<&Block> = body.blocks().filter(|b| b.identifier() == "locals").collect();
    let get = |name: &str| -> Value {
        let expr = locals
            .iter()
            .find_map(|b| b.body().attributes().find(|a| a.key() == name))
            .unwrap_or_else(|| panic!("terraform/{stack}/manifest.tf: no `local.{name}`"))
            .expr();
        let value = expr
            .evaluate(&Context::new())
            .unwrap_or_else(|e| panic!("terraform/{stack}/manifest.tf: `local.{name}` is not plain data: {e}"));
        serde_json::to_value(value).expect("HCL value converts to JSON")
    };
    json!({"functions": get("functions"), "collections": get("collections"), "max_attempts": get("max_attempts")})
}

fn as_set(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = v
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// Differences between the manifest and one stack's locals, as readable lines.
fn differences(stack: &str, manifest: &Value, tf: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let empty = serde_json::Map::new();
    let m_fns = manifest["functions"].as_object().unwrap_or(&empty);
    let t_fns = tf["functions"].as_object().unwrap_or(&empty);
    for name in m_fns.keys().filter(|n| !t_fns.contains_key(*n)) {
        out.push(format!("{stack}: function `{name}` is in the manifest but not in local.functions"));
    }
    for name in t_fns.keys().filter(|n| !m_fns.contains_key(*n)) {
        out.push(format!("{stack}: function `{name}` is in local.functions but not in the manifest"));
    }
    for (name, m) in m_fns {
        let Some(t) = t_fns.get(name) else { continue };
        for key in ["memory_mb", "timeout_s", "authorizer"] {
            if m[key] != t[key] {
                out.push(format!("{stack}: `{name}`.{key} is {} in Terraform, {} in the manifest", t[key], m[key]));
            }
        }
        for key in ["routes", "queues", "reads", "writes", "publishes", "collections", "secrets"] {
            let (ms, ts) = (as_set(m.get(key)), as_set(t.get(key)));
            for x in ms.iter().filter(|x| !ts.contains(x)) {
                out.push(format!("{stack}: `{name}`.{key} lacks `{x}` (in the manifest)"));
            }
            for x in ts.iter().filter(|x| !ms.contains(x)) {
                out.push(format!("{stack}: `{name}`.{key} has `{x}`, which the manifest does not"));
            }
        }
        let triggers = |v: &Value| -> Vec<(String, String)> {
            let mut s: Vec<(String, String)> = v["storage"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            (s["prefix"].as_str().unwrap_or("?").into(), s["suffix"].as_str().unwrap_or("?").into())
                        })
                        .collect()
                })
                .unwrap_or_default();
            s.sort();
            s
        };
        if triggers(m) != triggers(t) {
            out.push(format!(
                "{stack}: `{name}`.storage is {:?} in Terraform, {:?} in the manifest",
                triggers(t),
                triggers(m)
            ));
        }
        let schedules = |v: &Value| -> BTreeMap<String, Value> {
            v["schedules"]
                .as_array()
                .map(|a| a.iter().map(|s| (s["name"].as_str().unwrap_or("?").to_string(), s.clone())).collect())
                .unwrap_or_default()
        };
        let (ms, ts) = (schedules(m), schedules(t));
        for (sname, s) in &ms {
            let Some(t) = ts.get(sname) else {
                out.push(format!("{stack}: `{name}` lacks schedule `{sname}` (in the manifest)"));
                continue;
            };
            for key in ["cron", "payload"] {
                if s[key] != t[key] {
                    out.push(format!(
                        "{stack}: schedule `{sname}`.{key} is {} in Terraform, {} in the manifest",
                        t[key], s[key]
                    ));
                }
            }
            if stack == "aws" {
                let expected = s["cron"].as_str().map(aws_cron);
                match (expected, t.get("aws_cron").and_then(Value::as_str)) {
                    (Some(Ok(want)), Some(got)) if want == got => {}
                    (Some(Ok(want)), got) => out.push(format!(
                        "aws: schedule `{sname}`.aws_cron is {got:?}; `{}` in EventBridge Scheduler form is `{want}`",
                        s["cron"].as_str().unwrap_or("")
                    )),
                    (Some(Err(e)), _) => out.push(format!("aws: schedule `{sname}`: {e}")),
                    (None, _) => out.push(format!("schedule `{sname}` has no cron string")),
                }
            }
        }
        for sname in ts.keys().filter(|n| !ms.contains_key(*n)) {
            out.push(format!("{stack}: `{name}` has schedule `{sname}`, which the manifest does not"));
        }
    }
    let (mc, tc) = (as_set(manifest.get("collections")), as_set(tf.get("collections")));
    if mc != tc {
        out.push(format!("{stack}: local.collections is {tc:?}, the manifest's [store] collections are {mc:?}"));
    }
    if manifest["max_attempts"] != tf["max_attempts"] {
        out.push(format!(
            "{stack}: local.max_attempts is {}, the manifest's is {}",
            tf["max_attempts"], manifest["max_attempts"]
        ));
    }
    out
}

/// A five-field UTC cron in EventBridge Scheduler's six-field form: one of day-of-month
/// and day-of-week must be `?`, weekdays count 1 (Sunday) to 7, and a year field follows.
fn aws_cron(cron: &str) -> Result<String, String> {
    let f: Vec<&str> = cron.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = f[..] else {
        return Err(format!("`{cron}` is not a five-field cron"));
    };
    let weekday = |d: &str| -> Result<String, String> {
        let map = |tok: &str| -> Result<String, String> {
            match tok.parse::<u32>() {
                Ok(n @ 0..=6) => Ok((n + 1).to_string()),
                Ok(7) => Ok("1".into()),
                Ok(_) => Err(format!("`{cron}`: weekday {tok} is out of range")),
                Err(_) => Ok(tok.to_string()),
            }
        };
        let (range, step) = d.split_once('/').map_or((d, None), |(r, s)| (r, Some(s)));
        let mapped = range
            .split(',')
            .map(|part| part.split('-').map(map).collect::<Result<Vec<_>, _>>().map(|v| v.join("-")))
            .collect::<Result<Vec<_>, _>>()?
            .join(",");
        Ok(match step {
            Some(s) => format!("{mapped}/{s}"),
            None => mapped,
        })
    };
    let (dom, dow) = match (dom, dow) {
        (_, "*") => (dom.to_string(), "?".to_string()),
        ("*", _) => ("?".to_string(), weekday(dow)?),
        _ => return Err(format!("`{cron}` restricts both day-of-month and day-of-week, which AWS cannot express")),
    };
    Ok(format!("cron({minute} {hour} {dom} {month} {dow} *)"))
}

#[test]
fn aws_cron_conversion() {
    assert_eq!(aws_cron("0 3 * * *").unwrap(), "cron(0 3 * * ? *)");
    assert_eq!(aws_cron("*/15 * * * 1-5").unwrap(), "cron(*/15 * ? * 2-6 *)");
    assert_eq!(aws_cron("0 0 1 * *").unwrap(), "cron(0 0 1 * ? *)");
    assert_eq!(aws_cron("30 6 * * 0,6").unwrap(), "cron(30 6 ? * 1,7 *)");
    assert_eq!(aws_cron("0 9 * * MON").unwrap(), "cron(0 9 ? * MON *)");
    assert!(aws_cron("0 0 1 * 1").is_err());
    assert!(aws_cron("0 0 * *").is_err());
}

#[test]
fn both_stacks_wire_exactly_the_manifest() {
    let manifest = manifest();
    assert!(manifest["functions"].as_object().is_some_and(|f| !f.is_empty()), "the manifest has functions");
    let mut problems = Vec::new();
    // Both stacks key queues by name to their one consumer (SQS mapping, push subscription).
    let mut consumers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, f) in manifest["functions"].as_object().into_iter().flatten() {
        for q in as_set(f.get("queues")) {
            consumers.entry(q).or_default().push(name.clone());
        }
    }
    for (q, fns) in consumers.iter().filter(|(_, fns)| fns.len() > 1) {
        problems.push(format!("queue `{q}` is consumed by {fns:?}; the stacks deliver each queue to one function"));
    }
    for name in ["aws", "gcp"] {
        let files = stack_files(name);
        problems.extend(differences(name, &manifest, &wiring(&files, name)));
    }
    assert!(problems.is_empty(), "Terraform and infra/functions.toml differ:\n  {}", problems.join("\n  "));
}

#[test]
fn drift_is_reported() {
    let manifest = manifest();
    let files = stack_files("aws");
    let good = wiring(&files, "aws");
    assert!(differences("aws", &manifest, &good).is_empty());

    let mut t = good.clone();
    t["functions"]["auth"]["routes"].as_array_mut().unwrap().pop();
    t["functions"]["auth"]["routes"].as_array_mut().unwrap().push(json!("GET /v1/extra"));
    let d = differences("aws", &manifest, &t).join("\n");
    assert!(d.contains("lacks `DELETE /v1/auth/api-keys/{id}`") && d.contains("has `GET /v1/extra`"), "{d}");

    let mut t = good.clone();
    t["functions"].as_object_mut().unwrap().remove("parse");
    t["functions"]["ghost"] = t["functions"]["auth"].clone();
    t["functions"]["transcribe"]["storage"] = json!([]);
    t["functions"]["optimize"]["schedules"][0]["aws_cron"] = json!("cron(0 3 * * * *)");
    t["collections"].as_array_mut().unwrap().pop();
    t["max_attempts"] = json!(3);
    let d = differences("aws", &manifest, &t).join("\n");
    for expected in [
        "function `parse` is in the manifest",
        "function `ghost` is in local.functions but not",
        "`transcribe`.storage",
        "aws_cron",
        "local.collections",
        "local.max_attempts",
    ] {
        assert!(d.contains(expected), "`{expected}` not reported in:\n{d}");
    }
}

/// The source text of an expression, for checking what it refers to.
fn text(expr: &Expression) -> String {
    hcl::format::to_string(expr).expect("expression formats")
}

/// The `for_each` of `resource "<ty>" "<name>"` (or `data`, `module`), as text.
fn for_each_of(files: &BTreeMap<String, Body>, kind: &str, labels: &[&str]) -> Option<String> {
    files
        .values()
        .flat_map(|b| b.blocks())
        .find(|b| b.identifier() == kind && b.labels().iter().map(|l| l.as_str()).eq(labels.iter().copied()))
        .and_then(|b| b.body().attributes().find(|a| a.key() == "for_each").map(|a| text(a.expr())))
}

/// Whether any `dynamic "<name>"` block inside `resource "<ty>" "<label>"` iterates over `needle`.
fn dynamic_iterates(files: &BTreeMap<String, Body>, ty: &str, label: &str, dynamic: &str, needle: &str) -> bool {
    files
        .values()
        .flat_map(|b| b.blocks())
        .filter(|b| b.identifier() == "resource" && b.labels().iter().map(|l| l.as_str()).eq([ty, label]))
        .flat_map(|b| b.body().blocks())
        .filter(|d| d.identifier() == "dynamic" && d.labels().first().is_some_and(|l| l.as_str() == dynamic))
        .any(|d| d.body().attributes().any(|a| a.key() == "for_each" && text(a.expr()).contains(needle)))
}

/// Every resource a manifest element turns into iterates over the locals, and the derived
/// locals are built from `local.functions`.
fn assert_driven(stack: &str, iterations: &[(&str, &[&str], &str)], derived: &[(&str, &[&str])]) {
    let files = stack_files(stack);
    let mut problems = Vec::new();
    for (kind, labels, needle) in iterations {
        match for_each_of(&files, kind, labels) {
            Some(fe) if fe.contains(needle) => {}
            Some(fe) => problems.push(format!("{kind} {labels:?}: for_each is `{fe}`, not over {needle}")),
            None => problems.push(format!("{kind} {labels:?}: missing, or without for_each over {needle}")),
        }
    }
    for (name, needles) in derived {
        match local(&files, name).map(text) {
            Some(t) => {
                for n in *needles {
                    if !t.contains(n) {
                        problems.push(format!("local.{name} does not use `{n}`"));
                    }
                }
            }
            None => problems.push(format!("local.{name} is missing")),
        }
    }
    assert!(
        problems.is_empty(),
        "terraform/{stack}: resources not driven by the manifest locals:\n  {}",
        problems.join("\n  ")
    );
}

/// Whether the text of some attribute `key` anywhere in the stack contains `needle`.
fn attribute_uses(files: &BTreeMap<String, Body>, key: &str, needle: &str) -> bool {
    fn walk(body: &Body, key: &str, needle: &str) -> bool {
        body.attributes().any(|a| a.key() == key && text(a.expr()).contains(needle))
            || body.blocks().any(|b| walk(b.body(), key, needle))
    }
    files.values().any(|b| walk(b, key, needle))
}

#[test]
fn aws_resources_iterate_over_the_manifest_locals() {
    assert_driven(
        "aws",
        &[
            ("module", &["function"], "local.functions"),
            ("data", &["aws_iam_policy_document", "function"], "local.functions"),
            ("resource", &["aws_apigatewayv2_route", "route"], "local.routes"),
            ("resource", &["aws_apigatewayv2_integration", "function"], "local.http_functions"),
            ("resource", &["aws_lambda_permission", "api"], "local.http_functions"),
            ("resource", &["aws_lambda_permission", "storage"], "local.storage_triggers"),
            ("resource", &["aws_sqs_queue", "queue"], "local.queue_consumers"),
            ("resource", &["aws_sqs_queue", "dlq"], "local.queue_consumers"),
            ("resource", &["aws_lambda_event_source_mapping", "queue"], "local.queue_consumers"),
            ("resource", &["aws_scheduler_schedule", "schedule"], "local.schedules"),
            ("resource", &["aws_dynamodb_table", "collection"], "local.collections"),
            ("resource", &["aws_secretsmanager_secret", "this"], "local.secret_names"),
        ],
        &[
            ("routes", &["local.functions", ".routes"]),
            ("http_functions", &["local.functions", ".routes"]),
            ("storage_triggers", &["local.functions", ".storage"]),
            ("queue_consumers", &["local.functions", ".queues"]),
            ("schedules", &["local.functions", ".schedules"]),
            ("secret_names", &["local.functions", ".secrets"]),
            ("authorizer_function", &["local.functions", ".authorizer"]),
        ],
    );
    let files = stack_files("aws");
    assert!(
        dynamic_iterates(&files, "aws_s3_bucket_notification", "uploads", "lambda_function", "local.storage_triggers"),
        "the bucket notification has a lambda_function block per storage trigger"
    );
    for (key, needle) in [
        ("redrive_policy", "local.max_attempts"),
        ("memory_mb", "each.value.memory_mb"),
        ("timeout_s", "each.value.timeout_s"),
        ("authorizer_uri", "local.authorizer_function"),
        ("identity_sources", "$request.header.Authorization"),
        ("visibility_timeout_seconds", "timeout_s"),
        ("schedule_expression", "each.value.aws_cron"),
    ] {
        assert!(attribute_uses(&files, key, needle), "aws: no `{key}` set from `{needle}`");
    }
}

#[test]
fn gcp_resources_iterate_over_the_manifest_locals() {
    assert_driven(
        "gcp",
        &[
            ("module", &["service"], "local.functions"),
            ("resource", &["google_storage_bucket_iam_member", "reads"], "local.functions"),
            ("resource", &["google_storage_bucket_iam_member", "writes"], "local.functions"),
            ("resource", &["google_project_iam_member", "firestore"], "local.functions"),
            ("resource", &["google_pubsub_topic_iam_member", "publishes"], "local.functions"),
            ("resource", &["google_secret_manager_secret_iam_member", "access"], "local.functions"),
            ("resource", &["google_pubsub_topic", "queue"], "local.queue_consumers"),
            ("resource", &["google_pubsub_topic", "storage"], "local.storage_triggers"),
            ("resource", &["google_storage_notification", "trigger"], "local.storage_triggers"),
            ("resource", &["google_pubsub_subscription", "push"], "local.deliveries"),
            ("resource", &["google_pubsub_topic", "dead_letter"], "local.deliveries"),
            ("resource", &["google_cloud_scheduler_job", "schedule"], "local.schedules"),
            ("resource", &["google_firestore_field", "ttl"], "local.collections"),
            ("resource", &["google_secret_manager_secret", "this"], "local.secret_names"),
        ],
        &[
            ("routes", &["local.functions", ".routes"]),
            ("storage_triggers", &["local.functions", ".storage"]),
            ("queue_consumers", &["local.functions", ".queues"]),
            ("schedules", &["local.functions", ".schedules"]),
            ("secret_names", &["local.functions", ".secrets"]),
            ("deliveries", &["local.queue_consumers", "local.storage_triggers"]),
            ("openapi_paths", &["local.routes", "x-google-backend"]),
            ("invokers", &["local.functions", ".routes", ".storage", ".queues", ".schedules"]),
        ],
    );
    let files = stack_files("gcp");
    for (key, needle) in [
        ("max_delivery_attempts", "local.max_attempts"),
        ("retry_count", "local.max_attempts"),
        ("memory_mb", "each.value.memory_mb"),
        ("timeout_s", "each.value.timeout_s"),
        ("contents", "local.openapi"),
        ("object_name_prefix", "each.value.prefix"),
        ("schedule", "each.value.cron"),
        ("push_endpoint", "/_/events"),
    ] {
        assert!(attribute_uses(&files, key, needle), "gcp: no `{key}` set from `{needle}`");
    }
}
