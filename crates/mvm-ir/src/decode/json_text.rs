//! JSON text → `serde_json::Value`, rejecting duplicate object keys.
//!
//! serde_json keeps the last of duplicate keys silently; two readers that
//! pick different duplicates would see different workloads from one file, so
//! the IR reader refuses them and names the pointer of the repeated key.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::codes::{Code, Finding, pointer_segment};

/// Parse JSON text; a syntax error or a duplicate key is one `E_SCHEMA` finding.
pub(super) fn parse(text: &str) -> Result<Value, Finding> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = ValueSeed {
        path: String::new(),
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| {
        let position = format!(" at line {} column {}", e.line(), e.column());
        let full = e.to_string();
        let reason = full.strip_suffix(&position).unwrap_or(&full);
        let at = format!("{}:{}", e.line(), e.column());
        match duplicate.into_inner() {
            Some(path) => Finding::new(
                Code::ESchema,
                path,
                format!("duplicate key at {at}: {reason}"),
                "give each key once per object; readers disagree on which duplicate wins",
            ),
            None => Finding::new(
                Code::ESchema,
                "",
                format!("not valid JSON at {at}: {reason}"),
                "fix the JSON syntax at that line and column",
            ),
        }
    })
}

struct ValueSeed<'d> {
    /// JSON pointer of the value being read.
    path: String,
    /// Set to the pointer of the first duplicate key found.
    duplicate: &'d RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = ValueSeed {
                path: format!("{}/{}", self.path, items.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let path = format!("{}/{}", self.path, pointer_segment(&key));
            if map.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(path);
                return Err(de::Error::custom(format_args!("key `{key}` appears twice")));
            }
            let value = access.next_value_seed(ValueSeed {
                path,
                duplicate: self.duplicate,
            })?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_like_serde_json() {
        let text = r#"{"a":[1,-2,0.5,"s",null,true,{"b":{}}],"c":"\u00e9"}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn duplicate_key_names_its_pointer() {
        let f = parse("{\"apps\":[{\"n/x\":1,\n\"n/x\":2}]}").unwrap_err();
        assert_eq!(f.code, Code::ESchema);
        assert_eq!(f.path, "/apps/0/n~1x");
        assert!(f.message.contains("`n/x` appears twice"), "{}", f.message);
        assert!(f.message.contains("at 2:"), "{}", f.message);
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let f = parse("{\n  \"id\": \"x\",\n  }").unwrap_err();
        assert_eq!(f.path, "");
        assert!(
            f.message.starts_with("not valid JSON at 3:3: "),
            "{}",
            f.message
        );
        assert!(!f.message.contains(" at line "), "{}", f.message);
    }

    #[test]
    fn trailing_text_is_rejected() {
        assert!(parse("{} {}").is_err());
        assert!(parse("{} \n").is_ok());
    }
}
