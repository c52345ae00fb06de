//! The pod read into a `serde_json::Value` with every object and array allocated at its final
//! size. serde_json's own visitor inserts into an empty map or vector, which regrows (and, for
//! a map, rehashes) a few times per object; here the members are gathered on a stack shared by
//! the whole document and moved into a map or vector of exactly their number.
//!
//! The value is the one serde_json builds: same numbers, same strings, members in order, a
//! repeated key keeping its first place and its last value (what `Map::insert` does).

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// Members and items read but not yet placed in their object or array.
#[derive(Default)]
pub(super) struct Scratch {
    members: Vec<(String, Value)>,
    items: Vec<Value>,
}

/// Reads one JSON value using (and leaving empty) the scratch stacks.
pub(super) struct SizedValue<'s>(pub(super) &'s mut Scratch);

impl<'de> DeserializeSeed<'de> for SizedValue<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SizedValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        // As serde_json: a float with no JSON spelling (never produced by its parser) is null.
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let scratch = self.0;
        let start = scratch.items.len();
        while let Some(item) = items.next_element_seed(SizedValue(&mut *scratch))? {
            scratch.items.push(item);
        }
        Ok(Value::Array(scratch.items.drain(start..).collect()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Value, A::Error> {
        let scratch = self.0;
        let start = scratch.members.len();
        while let Some(key) = members.next_key::<String>()? {
            let value = members.next_value_seed(SizedValue(&mut *scratch))?;
            scratch.members.push((key, value));
        }
        Ok(Value::Object(scratch.members.drain(start..).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Value, String> {
        let mut scratch = Scratch::default();
        let mut de = serde_json::Deserializer::from_str(text);
        let value = SizedValue(&mut scratch)
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| e.to_string())?;
        assert!(scratch.members.is_empty() && scratch.items.is_empty());
        Ok(value)
    }

    #[test]
    fn values_are_the_ones_serde_json_builds() {
        let docs = [
            r#"{"a": 1, "b": [1, -2, 3.5, 1.7976931348623157e308, 5e-324, -0.0, 18446744073709551615, -9223372036854775808], "c": null}"#,
            r#"{"k": 1, "j": {"x": [], "y": {}}, "k": 2, "z": [[[]], [{}], {"q": [true, false]}], "j": 3}"#,
            r#"[{"name": "a\"b\\c\u00e9\ud83d\ude80\n"}, "", [], {}, 0, 12345678901234567890]"#,
            r#"{"$serde_json::private::Number": "1"}"#,
            r#""just a string""#,
            "17",
            "null",
            r#"{"deep": [[[[[[[[[[[[[[{"x": [1, {"y": 2}]}]]]]]]]]]]]]]]}"#,
        ];
        for doc in docs {
            let want: Value = serde_json::from_str(doc).unwrap();
            let got = read(doc).unwrap();
            assert_eq!(got, want, "{doc}");
            // Equality of maps ignores order; the text does not.
            assert_eq!(got.to_string(), want.to_string(), "{doc}");
        }
    }

    #[test]
    fn errors_are_serde_jsons() {
        for doc in [
            r#"{"a": [1, 2"#,
            r#"{"a" 1}"#,
            "[1,]",
            r#"{"a": nul}"#,
            "1e999x",
            "",
        ] {
            let want = serde_json::from_str::<Value>(doc).unwrap_err().to_string();
            assert_eq!(read(doc).unwrap_err(), want, "{doc}");
        }
    }
}
