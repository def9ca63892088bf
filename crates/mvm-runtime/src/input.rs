//! Arguments of `mvmctl invoke`: `--input k=v ...`, `--json '{...}'` or a
//! JSON object on stdin, all turned into the keyword arguments of the call.

use serde_json::{Map, Value};

use crate::error::RuntimeError;

/// `k=v` pairs. A value that is valid JSON is taken as JSON (`n=5` is the
/// number 5, `ok=true` a boolean, `xs=[1,2]` a list, `s="5"` the string
/// "5"); anything else is taken as a plain string (`name=ari` is "ari").
pub fn from_pairs(pairs: &[String]) -> Result<Map<String, Value>, RuntimeError> {
    let mut args = Map::new();
    for pair in pairs {
        let Some((key, raw)) = pair.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(RuntimeError::BadInput {
                detail: format!("`--input {pair}` is not KEY=VALUE"),
                hint: "write --input name=ari (the value is JSON when it parses as JSON, else a string)".into(),
            });
        };
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        if args.insert(key.to_string(), value).is_some() {
            return Err(RuntimeError::BadInput {
                detail: format!("argument `{key}` is given twice"),
                hint: "give each --input key once".into(),
            });
        }
    }
    Ok(args)
}

/// A JSON object, from `--json` or stdin.
pub fn from_json_object(text: &str, origin: &str) -> Result<Map<String, Value>, RuntimeError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(RuntimeError::BadInput {
            detail: format!(
                "{origin} is JSON but not an object (got {})",
                json_kind(&other)
            ),
            hint: "pass the keyword arguments as an object, e.g. {\"name\": \"ari\"}".into(),
        }),
        Err(e) => Err(RuntimeError::BadInput {
            detail: format!("{origin} is not valid JSON: {e}"),
            hint: "pass the keyword arguments as an object, e.g. {\"name\": \"ari\"}".into(),
        }),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(p: &[&str]) -> Result<Map<String, Value>, RuntimeError> {
        from_pairs(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn values_are_json_when_they_parse_else_strings() {
        let args = pairs(&[
            "name=ari", "n=5", "ok=true", "xs=[1,2]", "s=\"5\"", "eq=a=b", "empty=",
        ])
        .unwrap();
        assert_eq!(
            Value::Object(args),
            json!({"name": "ari", "n": 5, "ok": true, "xs": [1, 2], "s": "5", "eq": "a=b", "empty": ""})
        );
    }

    #[test]
    fn malformed_pairs_are_refused() {
        assert!(
            pairs(&["novalue"])
                .unwrap_err()
                .to_string()
                .contains("KEY=VALUE")
        );
        assert!(pairs(&["=v"]).is_err());
        assert!(
            pairs(&["a=1", "a=2"])
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn json_must_be_an_object() {
        assert_eq!(
            Value::Object(from_json_object(r#"{"a":1}"#, "--json").unwrap()),
            json!({"a": 1})
        );
        let err = from_json_object("[1]", "--json").unwrap_err().to_string();
        assert!(err.contains("an array"), "{err}");
        assert!(
            from_json_object("{", "stdin")
                .unwrap_err()
                .to_string()
                .contains("stdin is not valid JSON")
        );
    }
}
