//! The language-neutral literal tree both front ends produce and the
//! lowering core consumes. Positions are byte offsets into the source; a
//! [`crate::span::LineIndex`] turns them into file:line:col.

/// One literal value, or a call to an allowlisted helper, with where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: Kind,
    /// Byte offset of the value's first character.
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Str(String),
    /// Wide enough for any literal a user may write that is still worth a
    /// precise range error rather than "not an integer".
    Int(i128),
    Bool(bool),
    Null,
    List(Vec<Value>),
    /// Keys in source order; duplicates are rejected by the front ends.
    Dict(Vec<Entry>),
    Call(Call),
}

/// A dict/object entry with the key's own position.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_at: usize,
    pub value: Value,
}

/// A call to a helper, e.g. `mvm.secret("api-key", var="API_KEY")`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The helper's canonical (snake_case) name without the `mvm.` prefix.
    pub helper: String,
    /// The callee as the user wrote it, e.g. `mvm.localPath`, for messages.
    pub written: String,
    pub args: Vec<Value>,
    pub kwargs: Vec<Kwarg>,
}

/// A keyword argument (Python) or an options-object property (TypeScript).
#[derive(Debug, Clone, PartialEq)]
pub struct Kwarg {
    /// Canonical snake_case name.
    pub name: String,
    /// As written, for messages (`memoryMb`).
    pub written: String,
    pub at: usize,
    pub value: Value,
}

impl Kind {
    /// What the value is, in words, for type errors.
    pub fn describe(&self) -> String {
        match self {
            Kind::Str(_) => "a string".into(),
            Kind::Int(_) => "an integer".into(),
            Kind::Bool(_) => "a boolean".into(),
            Kind::Null => "None/null".into(),
            Kind::List(_) => "a list".into(),
            Kind::Dict(_) => "a dict/object".into(),
            Kind::Call(c) => format!("{}(...)", c.written),
        }
    }
}

/// The declaration a front end found, ready for [`crate::lower`].
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    /// The `mvm.app(...)` call; its keyword arguments are the app's fields.
    pub app: Call,
    /// Where the `mvm.app` call starts (for findings about the app as a whole).
    pub app_at: usize,
    /// The decorated function (Python) or the exported const / named
    /// function (TypeScript), when one can be named statically.
    pub function: Option<String>,
    /// The `id` value of a module-level `mvm.workload(...)` call.
    pub workload: Option<Call>,
}

/// What a front end found in a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Contents {
    Declaration(Box<Declaration>),
    /// No declaration in any form, but the SDK's `Sandbox` is used (first
    /// use at `at`): a recording script.
    SandboxScript {
        at: usize,
    },
    /// Neither; `app_at` is where the SDK's `app` is used anyway (not as a
    /// module-level declaration), if it is.
    Nothing {
        app_at: Option<usize>,
    },
}
