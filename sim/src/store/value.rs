//! Stored attribute values and the conversion of SQL literals into them.

use serde::{Deserialize, Serialize};

use super::schema::ColumnType;
use crate::sql::ast::Literal;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// uint, bigint, bool and timestamp columns.
    Int(i64),
    Float(f32),
    /// text and string columns.
    Str(String),
    /// multi and multi64 columns: sorted, without duplicates.
    Mva(Vec<i64>),
    /// json columns; `None` when the document has no value.
    Json(Option<serde_json::Value>),
}

/// A stored document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: i64,
    /// One value per schema column, in schema order.
    pub values: Vec<Value>,
}

impl Value {
    /// The value a column holds when an INSERT does not name it.
    pub fn default_for(ty: ColumnType) -> Value {
        match ty {
            ColumnType::Text { .. } | ColumnType::String => Value::Str(String::new()),
            ColumnType::Float => Value::Float(0.0),
            ColumnType::Multi | ColumnType::Multi64 => Value::Mva(Vec::new()),
            ColumnType::Json => Value::Json(None),
            _ => Value::Int(0),
        }
    }

    /// Converts a literal for a column of type `ty`; `Err` carries the reason text.
    pub fn from_literal(lit: &Literal, ty: ColumnType) -> Result<Value, String> {
        Ok(match ty {
            ColumnType::Text { .. } | ColumnType::String => match lit {
                Literal::Str(s) => Value::Str(s.clone()),
                Literal::Int(v) => Value::Str(v.to_string()),
                Literal::UInt(v) => Value::Str(v.to_string()),
                Literal::Float(v) => Value::Str(v.to_string()),
                Literal::Null => Value::Str(String::new()),
                Literal::Mva(_) => return Err("string expected".into()),
            },
            ColumnType::Uint | ColumnType::Timestamp => Value::Int(i64::from(int_of(lit)? as u32)),
            ColumnType::Bigint => Value::Int(int_of(lit)?),
            ColumnType::Bool => Value::Int(i64::from(int_of(lit)? != 0)),
            ColumnType::Float => Value::Float(match lit {
                Literal::Float(v) => *v as f32,
                other => int_of(other)? as f32,
            }),
            ColumnType::Multi | ColumnType::Multi64 => {
                let mut values = match lit {
                    Literal::Mva(v) => v.clone(),
                    Literal::Int(v) => vec![*v],
                    Literal::Null => Vec::new(),
                    _ => return Err("MVA list expected".into()),
                };
                if ty == ColumnType::Multi {
                    for v in &mut values {
                        *v = i64::from(*v as u32);
                    }
                }
                values.sort_unstable();
                values.dedup();
                Value::Mva(values)
            }
            ColumnType::Json => match lit {
                Literal::Str(s) if s.trim().is_empty() => Value::Json(None),
                Literal::Str(s) => Value::Json(Some(
                    serde_json::from_str(s).map_err(|e| format!("JSON error: {e}"))?,
                )),
                Literal::Null => Value::Json(None),
                Literal::Int(v) => Value::Json(Some(serde_json::Value::from(*v))),
                _ => return Err("JSON string expected".into()),
            },
        })
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Float(f) => Some(*f as i64),
            _ => None,
        }
    }
}

fn int_of(lit: &Literal) -> Result<i64, String> {
    match lit {
        Literal::Int(v) => Ok(*v),
        Literal::UInt(v) => Ok(*v as i64),
        Literal::Float(v) => Ok(*v as i64),
        Literal::Null => Ok(0),
        Literal::Str(s) => Ok(s.trim().parse::<i64>().unwrap_or(0)),
        Literal::Mva(_) => Err("number expected".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_conversions() {
        let cases = [
            (
                Literal::Int(-1),
                ColumnType::Uint,
                Value::Int(4_294_967_295),
            ),
            (Literal::Int(5), ColumnType::Bool, Value::Int(1)),
            (
                Literal::Mva(vec![3, 1, 3]),
                ColumnType::Multi64,
                Value::Mva(vec![1, 3]),
            ),
            (Literal::Float(1.5), ColumnType::Float, Value::Float(1.5)),
            (
                Literal::Str("x".into()),
                ColumnType::String,
                Value::Str("x".into()),
            ),
            (
                Literal::Str("[1]".into()),
                ColumnType::Json,
                Value::Json(Some(serde_json::json!([1]))),
            ),
        ];
        for (lit, ty, want) in cases {
            assert_eq!(
                Value::from_literal(&lit, ty).unwrap(),
                want,
                "{lit:?} {ty:?}"
            );
        }
        assert!(Value::from_literal(&Literal::Str("{bad".into()), ColumnType::Json).is_err());
    }
}
