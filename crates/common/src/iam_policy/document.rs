//! Policy documents compared the way IAM means them, and their differences in words.
//!
//! IAM returns documents URL-encoded, keeps a single action as a string, and does not care
//! about the order of statements, actions or resources. [`normalize`] removes those
//! differences; [`diff`] names what is left, statement by statement (by `Sid`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// Parses a policy document as IAM returns it: plain JSON or URL-encoded JSON.
pub fn decode(text: &str) -> anyhow::Result<Value> {
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    let decoded = percent_decode(text)
        .ok_or_else(|| anyhow::anyhow!("the policy document is neither JSON nor URL-encoded"))?;
    serde_json::from_str(&decoded)
        .map_err(|e| anyhow::anyhow!("the policy document is not valid JSON: {e}"))
}

/// Decodes `%XX` sequences (RFC 3986; `+` stays `+`). `None` when malformed.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The document with every order-free list sorted and every one-item string made a list.
pub fn normalize(document: &Value) -> Value {
    let mut document = document.clone();
    if let Some(statements) = document.get_mut("Statement") {
        let list = match statements.take() {
            Value::Array(list) => list,
            single => vec![single],
        };
        let list = list.into_iter().map(normalize_statement).collect();
        *statements = Value::Array(sorted_set(list));
    }
    document
}

fn normalize_statement(statement: Value) -> Value {
    let Value::Object(mut fields) = statement else { return statement };
    for key in ["Action", "NotAction", "Resource", "NotResource"] {
        if let Some(value) = fields.get_mut(key) {
            *value = string_set(value.take(), false);
        }
    }
    for key in ["Principal", "NotPrincipal"] {
        if let Some(Value::Object(principals)) = fields.get_mut(key) {
            principals.values_mut().for_each(|v| *v = string_set(v.take(), false));
        }
    }
    if let Some(Value::Object(operators)) = fields.get_mut("Condition") {
        for keys in operators.values_mut().filter_map(Value::as_object_mut) {
            keys.values_mut().for_each(|v| *v = string_set(v.take(), true));
        }
    }
    Value::Object(fields)
}

/// A scalar or a list as a sorted list without duplicates; `stringify` turns `true` into
/// `"true"`, as IAM compares condition values as strings.
fn string_set(value: Value, stringify: bool) -> Value {
    let items = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    let items = items
        .into_iter()
        .map(|item| match item {
            Value::Bool(b) if stringify => Value::String(b.to_string()),
            Value::Number(n) if stringify => Value::String(n.to_string()),
            other => other,
        })
        .collect();
    Value::Array(sorted_set(items))
}

fn sorted_set(items: Vec<Value>) -> Vec<Value> {
    let mut keyed: Vec<(String, Value)> = items.into_iter().map(|v| (canonical(&v), v)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    keyed.into_iter().map(|(_, v)| v).collect()
}

/// JSON text with object keys sorted, so equal values give equal text.
pub fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            let fields: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::String((*k).clone())))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(","))
        }
        other => other.to_string(),
    }
}

/// Whether two documents grant the same.
pub fn same(expected: &Value, actual: &Value) -> bool {
    canonical(&normalize(expected)) == canonical(&normalize(actual))
}

/// One difference between the expected and the actual document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// An expected statement is absent.
    Missing {
        /// Its `Sid`.
        sid: String,
    },
    /// A statement that should not be there.
    Extra {
        /// Its `Sid`, or a description when it has none.
        sid: String,
        /// What it allows.
        grants: String,
    },
    /// A statement whose fields differ.
    Changed {
        /// Its `Sid`.
        sid: String,
        /// One line per differing field.
        fields: Vec<String>,
    },
    /// A top-level field other than `Statement` differs.
    Field {
        /// The field's name.
        name: String,
        /// The expected value.
        expected: String,
        /// The value found.
        actual: String,
    },
}

impl Difference {
    /// The `Sid` concerned, if any.
    pub fn sid(&self) -> Option<&str> {
        match self {
            Self::Missing { sid } | Self::Extra { sid, .. } | Self::Changed { sid, .. } => {
                Some(sid)
            }
            Self::Field { .. } => None,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { sid } => write!(f, "statement `{sid}` is missing"),
            Self::Extra { sid, grants } => write!(f, "statement `{sid}` is extra: {grants}"),
            Self::Changed { sid, fields } => {
                write!(f, "statement `{sid}` differs: {}", fields.join("; "))
            }
            Self::Field { name, expected, actual } => {
                write!(f, "{name} is {actual}, expected {expected}")
            }
        }
    }
}

/// The differences between `expected` and `actual`, statements matched by `Sid`.
pub fn diff(expected: &Value, actual: &Value) -> Vec<Difference> {
    let expected = normalize(expected);
    let actual = normalize(actual);
    let mut differences = top_level_differences(&expected, &actual);
    let want = by_sid(&expected);
    let have = by_sid(&actual);
    for (sid, statement) in &want {
        match have.get(sid) {
            None => differences.push(Difference::Missing { sid: sid.clone() }),
            Some(found) if canonical(found) != canonical(statement) => {
                let fields = field_differences(statement, found);
                differences.push(Difference::Changed { sid: sid.clone(), fields });
            }
            Some(_) => {}
        }
    }
    for (sid, statement) in &have {
        if !want.contains_key(sid) {
            differences.push(Difference::Extra { sid: sid.clone(), grants: grants(statement) });
        }
    }
    differences
}

fn top_level_differences(expected: &Value, actual: &Value) -> Vec<Difference> {
    let empty = Map::new();
    let want = expected.as_object().unwrap_or(&empty);
    let have = actual.as_object().unwrap_or(&empty);
    let names: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    names
        .into_iter()
        .filter(|name| *name != "Statement")
        .filter(|name| want.get(*name) != have.get(*name))
        .map(|name| Difference::Field {
            name: name.clone(),
            expected: want.get(name).map_or("absent".to_string(), canonical),
            actual: have.get(name).map_or("absent".to_string(), canonical),
        })
        .collect()
}

/// Statements keyed by `Sid`; one without a `Sid` is keyed by what it grants.
fn by_sid(document: &Value) -> BTreeMap<String, Value> {
    let statements = document.get("Statement").and_then(Value::as_array);
    statements
        .into_iter()
        .flatten()
        .map(|s| match s.get("Sid").and_then(Value::as_str).filter(|sid| !sid.is_empty()) {
            Some(sid) => (sid.to_string(), s.clone()),
            None => (format!("(no Sid) {}", grants(s)), s.clone()),
        })
        .collect()
}

/// A short description of a statement: effect, actions and resources.
fn grants(statement: &Value) -> String {
    let list = |key: &str| match statement.get(key) {
        Some(Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map_or_else(|| canonical(i), str::to_string)).collect()
        }
        Some(other) => vec![canonical(other)],
        None => Vec::new(),
    };
    let effect = statement.get("Effect").and_then(Value::as_str).unwrap_or("?");
    let actions = [list("Action"), list("NotAction")].concat().join(", ");
    let resources = [list("Resource"), list("NotResource")].concat().join(", ");
    let mut text = format!("{effect} {actions}");
    if let Some(principal) = statement.get("Principal") {
        text.push_str(&format!(" to {}", principals(principal)));
    }
    if !resources.is_empty() {
        text.push_str(&format!(" on {resources}"));
    }
    text
}

/// `Service ec2.amazonaws.com, lambda.amazonaws.com` for a normalized `Principal`.
fn principals(principal: &Value) -> String {
    let Some(kinds) = principal.as_object() else { return canonical(principal) };
    let named = kinds.iter().map(|(kind, names)| {
        let names = names.as_array().map_or_else(
            || canonical(names),
            |n| n.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "),
        );
        format!("{kind} {names}")
    });
    named.collect::<Vec<_>>().join("; ")
}

fn field_differences(expected: &Value, actual: &Value) -> Vec<String> {
    let empty = Map::new();
    let want = expected.as_object().unwrap_or(&empty);
    let have = actual.as_object().unwrap_or(&empty);
    let names: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    let mut lines = Vec::new();
    for name in names {
        let (w, h) = (want.get(name), have.get(name));
        if w.map(canonical) == h.map(canonical) {
            continue;
        }
        lines.push(match (w, h) {
            (Some(Value::Array(w)), Some(Value::Array(h))) => list_difference(name, w, h),
            (Some(w), None) => format!("{name} is absent, expected {}", canonical(w)),
            (None, Some(h)) => format!("{name} {} should not be there", canonical(h)),
            (Some(w), Some(h)) => format!("{name} is {}, expected {}", canonical(h), canonical(w)),
            (None, None) => continue,
        });
    }
    lines
}

fn list_difference(name: &str, expected: &[Value], actual: &[Value]) -> String {
    let text = |v: &Value| v.as_str().map_or_else(|| canonical(v), str::to_string);
    let want: BTreeSet<String> = expected.iter().map(text).collect();
    let have: BTreeSet<String> = actual.iter().map(text).collect();
    let missing: Vec<&String> = want.difference(&have).collect();
    let extra: Vec<&String> = have.difference(&want).collect();
    let join =
        |items: Vec<&String>| items.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", join(missing)));
    }
    if !extra.is_empty() {
        parts.push(format!("extra {}", join(extra)));
    }
    format!("{name}: {}", parts.join(", "))
}
