//! The one registry of finding codes. Codes are stable: tools match on them.
//! `docs/ir.md` lists the same table; a test keeps the two in step.

use serde::Serialize;

macro_rules! codes {
    ($( $variant:ident = $text:literal, $sev:ident, $when:literal; )*) => {
        /// A stable finding code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $( $variant, )* }

        impl Code {
            /// Every code, in registry order.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The code as printed, e.g. `E_SCHEMA`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $text, )* }
            }

            /// Errors stop compilation; warnings are reported and kept.
            pub fn severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$sev, )* }
            }

            /// One line saying when the code is raised.
            pub fn when(self) -> &'static str {
                match self { $( Code::$variant => $when, )* }
            }

            /// The code printed as `s`, if any. An `Option` rather than
            /// `FromStr`: an unknown code is not an error worth describing.
            #[allow(clippy::should_implement_trait)]
            pub fn from_str(s: &str) -> Option<Code> {
                match s { $( $text => Some(Code::$variant), )* _ => None }
            }
        }
    };
}

codes! {
    // IR structure and values.
    ESchema = "E_SCHEMA", Error, "unknown field, wrong type, missing required field, repeated key or invalid JSON";
    EUnsupportedVersion = "E_UNSUPPORTED_VERSION", Error, "schema_version major is not 0 or minor is above 1";
    EMalformedVersion = "E_MALFORMED_VERSION", Error, "schema_version is not \"MAJOR.MINOR\"";
    EIdInvalid = "E_ID_INVALID", Error, "workload id, app, entrypoint, addon or volume name does not match ^[a-z][a-z0-9-]{0,62}$";
    EAppsCount = "E_APPS_COUNT", Error, "not exactly one app";
    EPrimaryEntrypoint = "E_PRIMARY_ENTRYPOINT", Error, "zero or several primary entrypoints, or duplicate entrypoint names";
    EResourcesRange = "E_RESOURCES_RANGE", Error, "a resource outside its range";
    ESourceEscapes = "E_SOURCE_ESCAPES", Error, "source path absolute, containing \"..\", resolving to the user's home or /, or resolving (through a symlink) outside the declaration's directory or --source-root; a recording's source_root outside its directory";
    ESourceKindUnsupported = "E_SOURCE_KIND_UNSUPPORTED", Error, "reserved source kinds oci_image and nix_derivation";
    ENetworkWildcard = "E_NETWORK_WILDCARD", Error, "a wildcard or catch-all egress host (or host a secret is bound to)";
    EEgressPrivate = "E_EGRESS_PRIVATE", Error, "an egress grant to a loopback, private, link-local, CGNAT, multicast, unspecified or cloud-metadata address, in any spelling (only the operator may allow one, at build/up)";
    ENetworkEgressClosed = "E_NETWORK_EGRESS_CLOSED", Error, "egress allowlist or ports with network mode \"none\"";
    EDnsWithoutNetwork = "E_DNS_WITHOUT_NETWORK", Error, "dns other than none with network mode \"none\"";
    EHostNetworkUntrusted = "E_HOST_NETWORK_UNTRUSTED", Error, "network mode \"host\" on an untrusted app";
    EEnvNameInvalid = "E_ENV_NAME_INVALID", Error, "env key does not match ^[A-Za-z_][A-Za-z0-9_]*$";
    ESecretNameInvalid = "E_SECRET_NAME_INVALID", Error, "secret_ref name does not match ^[a-z0-9][a-z0-9._-]{0,127}$";
    WSecretLiteral = "W_SECRET_LITERAL", Warning, "a literal env value whose key looks like a credential";
    ESecretHeaderInvalid = "E_SECRET_HEADER_INVALID", Error, "a secret_ref of type \"header\" without header, a header with another type, or a header name that is not an HTTP token or is one the host owns (Host, Content-Length, Transfer-Encoding, Connection, Upgrade, TE, Trailer, Keep-Alive, Proxy-Authorization, Proxy-Connection)";
    ESecretHostInvalid = "E_SECRET_HOST_INVALID", Error, "a secret_ref hosts entry that is not a DNS name or an IP literal (empty, with a scheme, port, path or whitespace); a wildcard is E_NETWORK_WILDCARD";
    ESecretHostNotGranted = "E_SECRET_HOST_NOT_GRANTED", Error, "a secret_ref bound to a host that is not the host of one of the app's egress grants (none with mode \"none\")";
    ESecretBindingConflict = "E_SECRET_BINDING_CONFLICT", Error, "two secret_refs that set the same header (bearer and basic both set Authorization) on an overlapping set of hosts (no hosts: every grant)";
    WSecretUnbound = "W_SECRET_UNBOUND", Warning, "a secret_ref of type bearer, basic or header with no hosts: it is added to requests to every egress grant";
    ELockfileMissing = "E_LOCKFILE_MISSING", Error, "dependencies declare a lockfile that is not in the source bundle";
    ELockfileNeedsProject = "E_LOCKFILE_NEEDS_PROJECT", Error, "the lockfile's installer needs its project file (pyproject.toml, package.json) beside it in the bundle";
    WHookUnpinnedFetch = "W_HOOK_UNPINNED_FETCH", Warning, "a hook that fetches code from the network without pinning";
    WOciMutable = "W_OCI_MUTABLE", Warning, "oci_base image without a digest";
    EEmptyCommand = "E_EMPTY_COMMAND", Error, "empty argv, empty shell line or empty command entrypoint";
    EInvalidValue = "E_INVALID_VALUE", Error, "a value of the right type that is not allowed (paths, globs, package names, ports)";
    // Declarations (static front ends and SDKs).
    ESyntax = "E_SYNTAX", Error, "the declaration file does not parse";
    ENoDeclaration = "E_NO_DECLARATION", Error, "a declaration file with no app declaration in any import form of the SDK (and, for .ts, no Sandbox use to record)";
    EHelperUnknown = "E_HELPER_UNKNOWN", Error, "a call to something outside the helper allowlist";
    EKwargUnknown = "E_KWARG_UNKNOWN", Error, "an unknown keyword argument or property";
    EKwargType = "E_KWARG_TYPE", Error, "a value of the wrong type for its argument";
    EKwargConflict = "E_KWARG_CONFLICT", Error, "arguments that exclude each other, or a positional/keyword clash";
    ENotLiteral = "E_NOT_LITERAL", Error, "a name, attribute, expression or interpolation where a literal is required";
    ESecretVarMismatch = "E_SECRET_VAR_MISMATCH", Error, "mvm.secret(var=...) differs from its env key";
    // Compile output.
    ESourceUnreadable = "E_SOURCE_UNREADABLE", Error, "a source file that cannot be bundled (special file, escaping symlink, unreadable)";
    ESourceTooLarge = "E_SOURCE_TOO_LARGE", Error, "the source bundle is over its limit of files or bytes";
    WSourcePrivateFile = "W_SOURCE_PRIVATE_FILE", Warning, "a bundled file that only its owner may read on the host; in the bundle it is world-readable (0644)";
    WImageUnbuildable = "W_IMAGE_UNBUILDABLE", Warning, "an image this mvm cannot build: a package name not in the package table, a language version nothing here provides, packages of two Debian releases, two Nodes, an oci_base image or an unsupported dependency tool (build refuses it with the same message)";
    EImageNoRuntime = "E_IMAGE_NO_RUNTIME", Error, "a function entrypoint, a command entrypoint or an argv hook that runs on Python or Node (by its language, or by argv[0]: python, python3, python3.N, node, nodejs) in a nix_packages image with no package of that language";
    EDeclTooDeep = "E_DECL_TOO_DEEP", Error, "a declaration file nested deeper than the front end's limit";
    EHostRunRefused = "E_HOST_RUN_REFUSED", Error, "a Sandbox script that compile would have to run on the host, without --allow-host-run";
    EOutput = "E_OUTPUT", Error, "the output path cannot be written";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A position in a declaration file (1-based line and column, in characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

/// One finding of validation or declaration lowering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    /// JSON pointer (RFC 6901) into the IR, `""` for the root.
    pub path: String,
    pub message: String,
    pub hint: String,
    /// Where in a declaration file, when the IR came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

impl Finding {
    pub fn new(
        code: Code,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Finding {
            code,
            severity: code.severity(),
            path: path.into(),
            message: message.into(),
            hint: hint.into(),
            location: None,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }
}

impl std::fmt::Display for Finding {
    /// `FILE:LINE:COL: error[CODE]: message` (or `PATH: ...` without a
    /// location), then `  hint: ...` on the next line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(l) => write!(f, "{}:{}:{}: ", l.file, l.line, l.column)?,
            None => write!(
                f,
                "{}: ",
                if self.path.is_empty() {
                    "/"
                } else {
                    &self.path
                }
            )?,
        }
        write!(
            f,
            "{}[{}]: {}",
            self.severity.as_str(),
            self.code,
            self.message
        )?;
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Escape one JSON pointer segment (RFC 6901).
pub fn pointer_segment(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The codes table of `docs/ir.md`, generated from the registry so the two
/// cannot drift (a test compares them).
pub fn markdown_table() -> String {
    let mut table = String::from("| code | severity | when |\n|---|---|---|\n");
    for code in Code::ALL {
        table.push_str(&format!(
            "| `{code}` | {} | {} |\n",
            code.severity().as_str(),
            code.when().replace('|', "\\|")
        ));
    }
    table
}
