//! Typed reads from a `serde_json::Value` that record a finding, with its JSON
//! pointer, for every problem instead of stopping at the first.
//!
//! Every read returns `Option`: `None` means a finding was recorded (or the
//! value was absent where that is reported by the caller). Composite readers
//! read all their fields before combining them, so sibling errors are all seen.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::codes::{Code, Finding, pointer_segment};

#[derive(Default)]
pub(super) struct Reader {
    pub(super) findings: Vec<Finding>,
}

/// An object that passed its type and unknown-field checks.
pub(super) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    /// Type name used in messages, e.g. `App` or `Source "local_path"`.
    what: String,
}

/// One variant of a `kind`-tagged type: its tag and its fields besides `kind`.
pub(super) struct Variant {
    pub(super) kind: &'static str,
    pub(super) fields: &'static [&'static str],
}

impl<'a> Obj<'a> {
    pub(super) fn child_path(&self, field: &str) -> String {
        child(&self.path, field)
    }
}

pub(super) fn child(path: &str, segment: &str) -> String {
    format!("{path}/{}", pointer_segment(segment))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(n) if n.is_i64() => "a negative integer",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Reader {
    pub(super) fn schema(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.findings
            .push(Finding::new(Code::ESchema, path, message, hint));
    }

    fn wrong_type(&mut self, path: &str, expected: &str, got: &Value) {
        self.schema(
            path,
            format!("expected {expected}, found {}", type_name(got)),
            format!("write {expected} here"),
        );
    }

    /// An object of type `what` whose fields must be among `fields`.
    pub(super) fn object<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
        what: &str,
        fields: &[&str],
    ) -> Option<Obj<'a>> {
        let Value::Object(map) = v else {
            self.wrong_type(path, &format!("an object ({what})"), v);
            return None;
        };
        self.unknown_fields(map, path, what, fields);
        Some(Obj {
            map,
            path: path.to_owned(),
            what: what.to_owned(),
        })
    }

    fn unknown_fields(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        what: &str,
        fields: &[&str],
    ) {
        for key in map.keys().filter(|k| !fields.contains(&k.as_str())) {
            let suggestion = closest(key, fields)
                .map(|s| format!("did you mean \"{s}\"? "))
                .unwrap_or_default();
            self.schema(
                child(path, key),
                format!("unknown field \"{key}\" in {what}"),
                format!("{suggestion}allowed fields: {}", quoted_list(fields)),
            );
        }
    }

    /// A `kind`-tagged object: returns the variant's tag and the object, with
    /// unknown fields checked against that variant.
    pub(super) fn tagged<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
        what: &str,
        variants: &[Variant],
    ) -> Option<(&'static str, Obj<'a>)> {
        let Value::Object(map) = v else {
            self.wrong_type(path, &format!("an object ({what})"), v);
            return None;
        };
        let kinds: Vec<&str> = variants.iter().map(|v| v.kind).collect();
        let kind_path = child(path, "kind");
        let Some(kind) = map.get("kind") else {
            self.schema(
                kind_path,
                format!("missing required field \"kind\" in {what}"),
                format!("add \"kind\": one of {}", quoted_list(&kinds)),
            );
            return None;
        };
        let Value::String(kind) = kind else {
            self.wrong_type(
                &kind_path,
                &format!("a string, one of {}", quoted_list(&kinds)),
                kind,
            );
            return None;
        };
        let Some(variant) = variants.iter().find(|v| v.kind == kind) else {
            self.schema(
                kind_path,
                format!("unknown {what} kind \"{kind}\""),
                format!("known kinds: {}", quoted_list(&kinds)),
            );
            return None;
        };
        let what = format!("{what} \"{}\"", variant.kind);
        let mut fields = vec!["kind"];
        fields.extend_from_slice(variant.fields);
        self.unknown_fields(map, path, &what, &fields);
        Some((
            variant.kind,
            Obj {
                map,
                path: path.to_owned(),
                what,
            },
        ))
    }

    /// A field that must be present.
    pub(super) fn required<T>(
        &mut self,
        obj: &Obj<'_>,
        field: &str,
        read: impl FnOnce(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<T> {
        let path = obj.child_path(field);
        match obj.map.get(field) {
            Some(v) => read(self, v, &path),
            None => {
                self.schema(
                    path,
                    format!("missing required field \"{field}\" in {}", obj.what),
                    format!("add \"{field}\" to {}", obj.what),
                );
                None
            }
        }
    }

    /// A field whose absence means `default`.
    pub(super) fn defaulted<T>(
        &mut self,
        obj: &Obj<'_>,
        field: &str,
        default: impl FnOnce() -> T,
        read: impl FnOnce(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<T> {
        match obj.map.get(field) {
            Some(v) => read(self, v, &obj.child_path(field)),
            None => Some(default()),
        }
    }

    pub(super) fn string(&mut self, v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.wrong_type(path, "a string", v);
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(path, "true or false", v);
                None
            }
        }
    }

    pub(super) fn uint(&mut self, v: &Value, path: &str) -> Option<u64> {
        match v.as_u64() {
            Some(n) => Some(n),
            None => {
                self.wrong_type(path, "a non-negative integer", v);
                None
            }
        }
    }

    /// An integer that must fit `0..=max` to be representable at all.
    fn bounded(&mut self, v: &Value, path: &str, max: u64, what: &str) -> Option<u64> {
        let n = self.uint(v, path)?;
        if n > max {
            self.schema(
                path,
                format!("{what} {n} is above {max}"),
                format!("use a value from 0 to {max}"),
            );
            return None;
        }
        Some(n)
    }

    /// A TCP/UDP port number; whether 0 is allowed is checked by validation.
    pub(super) fn port(&mut self, v: &Value, path: &str) -> Option<u16> {
        self.bounded(v, path, u16::MAX.into(), "port")
            .map(|n| n as u16)
    }

    /// A size in MiB declared as `u32` by the IR.
    pub(super) fn size_u32(&mut self, v: &Value, path: &str) -> Option<u64> {
        self.bounded(v, path, u32::MAX.into(), "size")
    }

    /// A string that must be one of `choices`.
    pub(super) fn choice<T: Copy>(
        &mut self,
        v: &Value,
        path: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let Value::String(s) = v else {
            self.wrong_type(
                path,
                &format!("a string, one of {}", quoted_list(&names)),
                v,
            );
            return None;
        };
        match choices.iter().find(|(n, _)| n == s) {
            Some((_, t)) => Some(*t),
            None => {
                self.schema(
                    path,
                    format!("unknown value \"{s}\""),
                    format!("use one of {}", quoted_list(&names)),
                );
                None
            }
        }
    }

    /// An array whose every item is read; `None` if any item failed.
    pub(super) fn array<T>(
        &mut self,
        v: &Value,
        path: &str,
        mut read: impl FnMut(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Value::Array(items) = v else {
            self.wrong_type(path, "an array", v);
            return None;
        };
        let read: Vec<Option<T>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| read(self, item, &format!("{path}/{i}")))
            .collect();
        read.into_iter().collect()
    }

    /// An object used as a string-keyed map; `None` if any value failed.
    pub(super) fn map<T>(
        &mut self,
        v: &Value,
        path: &str,
        mut read: impl FnMut(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<BTreeMap<String, T>> {
        let Value::Object(map) = v else {
            self.wrong_type(path, "an object", v);
            return None;
        };
        let read: Vec<Option<(String, T)>> = map
            .iter()
            .map(|(k, item)| read(self, item, &child(path, k)).map(|t| (k.clone(), t)))
            .collect();
        read.into_iter().collect()
    }

    pub(super) fn strings(&mut self, v: &Value, path: &str) -> Option<Vec<String>> {
        self.array(v, path, Self::string)
    }
}

/// The allowed name nearest to a misspelt one, if it is near enough to be a typo.
fn closest<'f>(key: &str, fields: &[&'f str]) -> Option<&'f str> {
    fields
        .iter()
        .map(|f| (edit_distance(key, f), *f))
        .filter(|(d, f)| *d <= 2.max(f.len() / 4) && *d < f.len())
        .min()
        .map(|(_, f)| f)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            row.push(substitute.min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_field_names_only() {
        let fields = ["schema_version", "id", "apps", "volumes", "extensions"];
        assert_eq!(closest("app", &fields), Some("apps"));
        assert_eq!(closest("volumns", &fields), Some("volumes"));
        assert_eq!(closest("schemaversion", &fields), Some("schema_version"));
        assert_eq!(closest("zzzz", &fields), None);
        assert_eq!(closest("x", &fields), None);
    }

    #[test]
    fn array_reads_every_item_and_reports_each_bad_one() {
        let mut r = Reader::default();
        let v = serde_json::json!(["a", 1, "b", false]);
        assert_eq!(r.strings(&v, "/x"), None);
        let paths: Vec<&str> = r.findings.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/x/1", "/x/3"]);
    }
}
