//! Reading a request envelope without building a JSON tree.
//!
//! searchd's request bodies may be tens of megabytes. A `serde_json::Value`
//! tree of a body made of many small values takes about 40 bytes of memory
//! per byte of input (a 52 MB array peaked at 1.9 GB), and its millions of
//! small allocations fragment the heap for good. Here the body is parsed
//! once, as a stream: the fields validation needs are kept (strings and
//! integers, with how each was written), everything else is skipped
//! ([`Skip`]), and the daemon's original error body is kept as the text it
//! was ([`RawJson`]). Nesting deeper than serde_json's limit (128) is a parse
//! error, whatever the value is used for.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON value kept as the text it was received as.
#[derive(Debug, Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// The JSON text of `value`.
    pub fn from_value(value: &serde_json::Value) -> Self {
        // A `Value` always serialises.
        Self(serde_json::value::to_raw_value(value).unwrap_or_default())
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A scalar field as it was written: validation needs to tell a missing
/// field from `null` and from a value of the wrong type.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) enum Leaf {
    #[default]
    Absent,
    Null,
    Str(String),
    /// An integer that fits `i64` (PHP's `integer`).
    Int(i64),
    /// Anything else: a float, a boolean, an array, an object.
    Other,
}

/// An object field: its fields as `T` reads them, `null`, or another type.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) enum Part<T> {
    #[default]
    Absent,
    Null,
    Object(T),
    Other,
}

/// The fields of an object that are read; every other key is skipped.
pub(super) trait ObjectFields: Default {
    /// The keys this object reads, in the order `read` expects them.
    const KEYS: &'static [&'static str];
    /// Reads the value of `KEYS[key]`; a key seen twice keeps its last value.
    fn read<'de, A: MapAccess<'de>>(&mut self, key: usize, map: &mut A) -> Result<(), A::Error>;
}

/// The envelope's top level.
#[derive(Debug, Default)]
pub(super) struct EnvelopeFields {
    pub kind: Leaf,
    pub error: Part<ErrorFields>,
    pub message: Part<MessageFields>,
    pub version: Leaf,
    pub user: Leaf,
}

impl ObjectFields for EnvelopeFields {
    const KEYS: &'static [&'static str] = &["type", "error", "message", "version", "user"];

    fn read<'de, A: MapAccess<'de>>(&mut self, key: usize, map: &mut A) -> Result<(), A::Error> {
        match key {
            0 => self.kind = map.next_value()?,
            1 => self.error = map.next_value()?,
            2 => self.message = map.next_value()?,
            3 => self.version = map.next_value()?,
            _ => self.user = map.next_value()?,
        }
        Ok(())
    }
}

/// `error`: the daemon's message and its original HTTP error body.
#[derive(Debug, Default)]
pub(super) struct ErrorFields {
    pub message: Leaf,
    pub body: Option<RawJson>,
}

impl ObjectFields for ErrorFields {
    const KEYS: &'static [&'static str] = &["message", "body"];

    fn read<'de, A: MapAccess<'de>>(&mut self, key: usize, map: &mut A) -> Result<(), A::Error> {
        match key {
            0 => self.message = map.next_value()?,
            // `null` reads as `None`. A raw value is taken without a depth
            // limit, so its text is walked once more, with one.
            _ => {
                let body = map.next_value::<Option<Box<RawValue>>>()?;
                if let Some(body) = &body {
                    serde_json::from_str::<Skip>(body.get()).map_err(de::Error::custom)?;
                }
                self.body = body.map(RawJson);
            }
        }
        Ok(())
    }
}

/// `message`: the request as the client sent it.
#[derive(Debug, Default)]
pub(super) struct MessageFields {
    pub path_query: Leaf,
    pub body: Leaf,
    pub http_method: Leaf,
}

impl ObjectFields for MessageFields {
    const KEYS: &'static [&'static str] = &["path_query", "body", "http_method"];

    fn read<'de, A: MapAccess<'de>>(&mut self, key: usize, map: &mut A) -> Result<(), A::Error> {
        match key {
            0 => self.path_query = map.next_value()?,
            1 => self.body = map.next_value()?,
            _ => self.http_method = map.next_value()?,
        }
        Ok(())
    }
}

/// Parses a whole body (trailing characters other than whitespace are an
/// error) as an object with `T`'s fields.
pub(super) fn parse<T: ObjectFields>(raw: &[u8]) -> Result<Part<T>, serde_json::Error> {
    serde_json::from_slice(raw)
}

impl<'de> Deserialize<'de> for Leaf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LeafVisitor)
    }
}

struct LeafVisitor;

impl<'de> Visitor<'de> for LeafVisitor {
    type Value = Leaf;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Leaf, E> {
        Ok(Leaf::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Leaf, E> {
        Ok(Leaf::Str(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Leaf, E> {
        Ok(Leaf::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Leaf, E> {
        Ok(i64::try_from(v).map_or(Leaf::Other, Leaf::Int))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Leaf, E> {
        Ok(Leaf::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Leaf, E> {
        Ok(Leaf::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Leaf, E> {
        Ok(Leaf::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Leaf, A::Error> {
        skip_seq(seq).map(|()| Leaf::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Leaf, A::Error> {
        skip_map(map).map(|()| Leaf::Other)
    }
}

impl<'de, T: ObjectFields> Deserialize<'de> for Part<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PartVisitor(PhantomData))
    }
}

struct PartVisitor<T>(PhantomData<T>);

impl<'de, T: ObjectFields> Visitor<'de> for PartVisitor<T> {
    type Value = Part<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Part<T>, A::Error> {
        let mut fields = T::default();
        while let Some(key) = map.next_key_seed(KeySeed(T::KEYS))? {
            match key {
                Some(key) => fields.read(key, &mut map)?,
                None => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(Part::Object(fields))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Part<T>, E> {
        Ok(Part::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Part<T>, A::Error> {
        skip_seq(seq).map(|()| Part::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Part<T>, E> {
        Ok(Part::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Part<T>, E> {
        Ok(Part::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Part<T>, E> {
        Ok(Part::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Part<T>, E> {
        Ok(Part::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Part<T>, E> {
        Ok(Part::Other)
    }
}

/// Matches an object key against the names of interest without allocating:
/// `Some(index)` for a known name, `None` for any other key.
struct KeySeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|name| *name == v))
    }
}

/// Any JSON value, read and dropped without allocating. Unlike serde's
/// `IgnoredAny` (which serde_json skips without a depth limit), it goes
/// through `deserialize_any`, so nesting deeper than 128 levels is an error,
/// as it is for PHP's `json_decode` at its own limit.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skip, A::Error> {
        skip_seq(seq).map(|()| Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Skip, A::Error> {
        skip_map(map).map(|()| Skip)
    }
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Skip>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_key_seed(KeySeed(&[]))?.is_some() {
        map.next_value::<Skip>()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(raw: &str) -> Part<EnvelopeFields> {
        parse(raw.as_bytes()).expect("valid JSON")
    }

    #[test]
    fn fields_are_read_with_how_they_were_written() {
        let Part::Object(fields) = envelope(
            r#"{"type":"t","version":3,"user":null,"error":{"message":1,"body":{"a":[1]}},"message":[],"x":{"deep":[[]]}}"#,
        ) else {
            panic!("an object");
        };
        assert_eq!(fields.kind, Leaf::Str("t".into()));
        assert_eq!(fields.version, Leaf::Int(3));
        assert_eq!(fields.user, Leaf::Null);
        assert!(matches!(fields.message, Part::Other));
        let Part::Object(error) = fields.error else {
            panic!("error is an object");
        };
        assert_eq!(error.message, Leaf::Int(1));
        assert_eq!(error.body.as_ref().map(RawJson::get), Some(r#"{"a":[1]}"#));
    }

    #[test]
    fn leaves_of_every_type() {
        let cases = [
            (r#"{"version":"3"}"#, Leaf::Str("3".into())),
            (r#"{"version":"\u00e9"}"#, Leaf::Str("é".into())),
            (r#"{"version":-3}"#, Leaf::Int(-3)),
            (r#"{"version":3.0}"#, Leaf::Other),
            (r#"{"version":18446744073709551615}"#, Leaf::Other),
            (r#"{"version":true}"#, Leaf::Other),
            (r#"{"version":{"a":1}}"#, Leaf::Other),
            (r#"{"version":null}"#, Leaf::Null),
            (r#"{"other":1}"#, Leaf::Absent),
            (r#"{"version":1,"version":2}"#, Leaf::Int(2)),
        ];
        for (raw, want) in cases {
            let Part::Object(fields) = envelope(raw) else {
                panic!("{raw}: an object");
            };
            assert_eq!(fields.version, want, "{raw}");
        }
    }

    #[test]
    fn non_objects_and_broken_json() {
        assert!(matches!(envelope("[1,[2]]"), Part::Other));
        assert!(matches!(envelope("null"), Part::Null));
        assert!(matches!(envelope(" 7 "), Part::Other));
        for broken in ["", "[1,", "{} x", "{\"a\":}", "[1] [2]"] {
            assert!(
                parse::<EnvelopeFields>(broken.as_bytes()).is_err(),
                "{broken:?}"
            );
        }
        for depth in [126, 200, 200_000] {
            let nested =
                |open: &str, close: &str| format!("{}{}", open.repeat(depth), close.repeat(depth));
            for deep in [
                format!("{{\"x\":{}}}", nested("[", "]")),
                nested("[", "]"),
                format!(
                    "{{\"y\":{}1{}}}",
                    "{\"a\":".repeat(depth),
                    "}".repeat(depth)
                ),
            ] {
                assert_eq!(
                    parse::<EnvelopeFields>(deep.as_bytes()).is_err(),
                    depth > 126,
                    "{depth} levels: {}",
                    &deep[..20]
                );
            }
        }
    }
}
