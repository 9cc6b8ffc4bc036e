//! Column types and table schemas, with the names searchd prints for them in DESC,
//! SHOW CREATE TABLE and raw-mode result sets.

use serde::{Deserialize, Serialize};

use crate::sql::ast::ColumnSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnType {
    Text { indexed: bool, stored: bool },
    String,
    Uint,
    Bigint,
    Float,
    Bool,
    Timestamp,
    Multi,
    Multi64,
    Json,
}

impl ColumnType {
    /// The `Type` column of `DESC`.
    pub fn desc_name(self) -> &'static str {
        match self {
            ColumnType::Text { .. } => "text",
            ColumnType::String => "string",
            ColumnType::Uint => "uint",
            ColumnType::Bigint => "bigint",
            ColumnType::Float => "float",
            ColumnType::Bool => "bool",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Multi => "mva",
            ColumnType::Multi64 => "mva64",
            ColumnType::Json => "json",
        }
    }

    /// The `Properties` column of `DESC`.
    pub fn desc_properties(self) -> &'static str {
        match self {
            ColumnType::Text {
                indexed: true,
                stored: true,
            } => "indexed stored",
            ColumnType::Text {
                indexed: true,
                stored: false,
            } => "indexed",
            ColumnType::Text {
                indexed: false,
                stored: true,
            } => "stored",
            _ => "",
        }
    }

    /// How `SHOW CREATE TABLE` spells the column type.
    pub fn create_name(self) -> &'static str {
        match self {
            ColumnType::Text {
                indexed: true,
                stored: true,
            } => "text",
            ColumnType::Text {
                indexed: true,
                stored: false,
            } => "text indexed",
            ColumnType::Text { .. } => "text stored",
            ColumnType::String => "string attribute",
            ColumnType::Uint => "integer",
            ColumnType::Bigint => "bigint",
            ColumnType::Float => "float",
            ColumnType::Bool => "bool",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Multi => "multi",
            ColumnType::Multi64 => "multi64",
            ColumnType::Json => "json",
        }
    }

    /// Column type name in raw-mode JSON result sets.
    pub fn result_type(self) -> ResultType {
        match self {
            ColumnType::Text { .. } | ColumnType::String => ResultType::String,
            ColumnType::Uint | ColumnType::Timestamp => ResultType::Long,
            ColumnType::Bigint => ResultType::LongLong,
            ColumnType::Float => ResultType::Float,
            ColumnType::Bool => ResultType::Bool,
            ColumnType::Multi | ColumnType::Multi64 => ResultType::Multi,
            ColumnType::Json => ResultType::Json,
        }
    }

    pub fn is_text(self) -> bool {
        matches!(self, ColumnType::Text { .. })
    }
}

/// Result-set column types, as named in raw-mode JSON (`"type":"long long"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultType {
    String,
    LongLong,
    Long,
    Float,
    Bool,
    Multi,
    Json,
}

impl ResultType {
    pub fn name(self) -> &'static str {
        match self {
            ResultType::String => "string",
            ResultType::LongLong => "long long",
            ResultType::Long => "long",
            ResultType::Float => "float",
            ResultType::Bool => "bool",
            ResultType::Multi => "multi",
            ResultType::Json => "json",
        }
    }

    pub fn from_name(name: &str) -> ResultType {
        match name {
            "long long" | "bigint" => ResultType::LongLong,
            "long" | "uint" | "timestamp" => ResultType::Long,
            "float" | "double" => ResultType::Float,
            "bool" => ResultType::Bool,
            "multi" | "multi64" => ResultType::Multi,
            "json" => ResultType::Json,
            _ => ResultType::String,
        }
    }

    /// Whether the mysql client should see the column as numeric (right-aligned).
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ResultType::LongLong | ResultType::Long | ResultType::Float | ResultType::Bool
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
}

/// Attribute and field columns of an RT or shard table; the document id is implicit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schema {
    pub columns: Vec<Column>,
}

/// Why a column list cannot be turned into a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaError {
    /// `float_vector` needs the KNN library, which this build (like the golden searchd) lacks.
    KnnNotLoaded,
    /// `engine='columnar'` needs the columnar library.
    ColumnarNotLoaded,
    DuplicateColumn(String),
}

impl Schema {
    pub fn from_specs(specs: &[ColumnSpec]) -> Result<Schema, SchemaError> {
        let mut columns: Vec<Column> = Vec::new();
        for spec in specs {
            if spec.type_word == "float_vector" {
                return Err(SchemaError::KnnNotLoaded);
            }
            if spec
                .props
                .iter()
                .any(|(k, v)| k == "engine" && v.eq_ignore_ascii_case("columnar"))
            {
                return Err(SchemaError::ColumnarNotLoaded);
            }
            if spec.name.eq_ignore_ascii_case("id") {
                continue;
            }
            let ty = column_type(spec);
            let name = spec.name.to_ascii_lowercase();
            if columns.iter().any(|c| c.name == name) {
                return Err(SchemaError::DuplicateColumn(name));
            }
            columns.push(Column { name, ty });
        }
        Ok(Schema { columns })
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// `CREATE TABLE <name> (\nid bigint,\n…\n)`: the column part of SHOW CREATE TABLE.
    pub fn render_create(&self, name: &str) -> String {
        let mut out = format!("CREATE TABLE {name} (\nid bigint");
        for c in &self.columns {
            out.push_str(",\n");
            out.push_str(&c.name);
            out.push(' ');
            out.push_str(c.ty.create_name());
        }
        out.push_str("\n)");
        out
    }
}

fn column_type(spec: &ColumnSpec) -> ColumnType {
    let has = |flag: &str| spec.flags.iter().any(|f| f == flag);
    match spec.type_word.as_str() {
        "text" => {
            let (indexed, stored) = match (has("indexed"), has("stored")) {
                (false, false) => (true, true),
                other => other,
            };
            ColumnType::Text { indexed, stored }
        }
        "string" => ColumnType::String,
        "integer" | "int" | "uint" => ColumnType::Uint,
        "float" => ColumnType::Float,
        "bool" => ColumnType::Bool,
        "timestamp" => ColumnType::Timestamp,
        "multi" => ColumnType::Multi,
        "multi64" => ColumnType::Multi64,
        "json" => ColumnType::Json,
        _ => ColumnType::Bigint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, ty: &str) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            type_word: ty.into(),
            flags: vec![],
            props: vec![],
        }
    }

    #[test]
    fn builds_and_renders() {
        let s = Schema::from_specs(&[
            spec("id", "bigint"),
            spec("title", "text"),
            spec("s", "string"),
            spec("i", "int"),
        ])
        .unwrap();
        assert_eq!(s.columns.len(), 3);
        assert_eq!(
            s.render_create("t"),
            "CREATE TABLE t (\nid bigint,\ntitle text,\ns string attribute,\ni integer\n)"
        );
        assert_eq!(
            Schema::from_specs(&[spec("v", "float_vector")]),
            Err(SchemaError::KnnNotLoaded)
        );
        assert!(matches!(
            Schema::from_specs(&[spec("a", "int"), spec("A", "int")]),
            Err(SchemaError::DuplicateColumn(_))
        ));
    }
}
