//! Statement values produced by the parser.

/// `[cluster:]name`; `name` keeps a `system.` database prefix when one was written.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRef {
    pub cluster: Option<String>,
    pub name: String,
}

impl TableRef {
    pub fn plain(name: &str) -> TableRef {
        TableRef {
            cluster: None,
            name: name.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Int(i64),
    /// Unsigned values above `i64::MAX` (document ids are unsigned in searchd).
    UInt(u64),
    Float(f64),
    Str(String),
    Mva(Vec<i64>),
    Null,
}

/// `col`, `j.a`, `j.arr[0]`, `value[0]`, `j[0].k`.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub column: String,
    pub steps: Vec<PathStep>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Path(Path),
    Literal(Literal),
    /// `COUNT(*)`
    CountStar,
    /// `WEIGHT()`
    Weight,
    /// `@@name`
    SysVar(String),
    Cmp {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    In {
        expr: Box<Expr>,
        list: Vec<Literal>,
        negated: bool,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Regex {
        expr: Box<Expr>,
        pattern: String,
    },
    /// Full-text `MATCH('…')`.
    Match(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    Star,
    Expr {
        expr: Expr,
        /// Column header: the alias, or the expression as searchd names it.
        header: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    pub expr: Expr,
    pub desc: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub items: Vec<SelectItem>,
    pub from: Option<TableRef>,
    pub filter: Option<Expr>,
    pub group_by: Option<Path>,
    pub order_by: Vec<OrderKey>,
    pub offset: u64,
    /// `None`: searchd's default of 20 rows.
    pub limit: Option<u64>,
    pub options: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub name: String,
    /// Lower-cased type word as written (`int`, `integer`, `text`, …).
    pub type_word: String,
    /// Flags such as `indexed`, `stored`, `attribute`.
    pub flags: Vec<String>,
    /// `key='value'` properties such as `engine='columnar'`.
    pub props: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    pub if_not_exists: bool,
    pub name: String,
    pub columns: Vec<ColumnSpec>,
    /// Table options in written order; keys lower-cased, values verbatim.
    pub options: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    pub replace: bool,
    pub table: TableRef,
    /// Empty: values are in schema order.
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Literal>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub table: TableRef,
    pub sets: Vec<(String, Literal)>,
    pub filter: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    pub table: TableRef,
    pub filter: Option<Expr>,
}

/// Replication-cluster statements. The simulator parses them; clusters arrive with the replication layer.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterStmt {
    Create {
        name: String,
        path: Option<String>,
    },
    Join {
        name: String,
        at: String,
        path: Option<String>,
    },
    AlterAdd {
        name: String,
        tables: Vec<String>,
    },
    AlterDrop {
        name: String,
        tables: Vec<String>,
    },
    AlterUpdateNodes {
        name: String,
    },
    Delete {
        name: String,
    },
    Set {
        name: String,
        var: String,
        value: Literal,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select(Select),
    ShowMeta,
    ShowSettings,
    ShowVariables {
        like: Option<String>,
    },
    ShowStatus {
        like: Option<String>,
    },
    ShowTables {
        system: bool,
        like: Option<String>,
    },
    ShowCreateTable {
        name: String,
        force: bool,
    },
    ShowTableStatus {
        name: String,
    },
    ShowTableSettings {
        name: String,
    },
    Describe {
        name: String,
        /// `OPTION topology=1`: list a shard table's targets instead of its fields.
        topology: bool,
    },
    CreateTable(CreateTable),
    CreateTableLike {
        if_not_exists: bool,
        name: String,
        like: String,
    },
    DropTable {
        if_exists: bool,
        name: String,
        force: bool,
    },
    AlterTable {
        name: String,
    },
    AddColumn {
        table: String,
        column: ColumnSpec,
    },
    DropColumn {
        table: String,
        column: String,
    },
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    Truncate {
        table: TableRef,
        reconfigure: bool,
    },
    FlushRamchunk {
        table: String,
    },
    Optimize {
        table: String,
        sync: bool,
    },
    SetGlobal {
        name: String,
        value: String,
    },
    /// `SET …` forms the simulator accepts and ignores (session variables, autocommit).
    SetSession,
    /// `BEGIN`, `COMMIT`, `ROLLBACK`, `START TRANSACTION`: statements run one by one.
    Transaction,
    Cluster(ClusterStmt),
}

impl Statement {
    /// Statements that change nothing; used by `/sql` (only SELECT) and by the read-only checks.
    pub fn is_select(&self) -> bool {
        matches!(self, Statement::Select(_))
    }
}
