//! What an instance's broker may do for its guest (`mvm.web_fetch`,
//! `mvm.web_search`), decided at `up` and kept in the instance record:
//! the app's grants, the operator's network permissions, which secret each
//! opaque token stands for and where it may be sent, the operator's CA
//! bundle and search provider. Values are never part of it: the supervisor
//! reads them from the secret store when it starts ([`load`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::RuntimeError;
use crate::launch::{EnvValue, Launch, NetworkMode, SecretAuth};

/// The operator's choices for mediated requests (`mvmctl up` flags).
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// PEM certificates trusted for mediated requests, besides the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// A search provider speaking the documented contract (docs/secrets.md).
    pub search_url: Option<String>,
    /// Name of the stored secret sent to the provider as a bearer token.
    pub search_key: Option<String>,
}

/// Largest operator CA bundle read.
pub const MAX_CA_BUNDLE: u64 = 1024 * 1024;

/// The recorded decisions (state.json); never a secret value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerConfig {
    /// The app's egress grants, `host:port`: the only destinations of a fetch.
    pub grants: Vec<String>,
    /// Grants the operator allowed to be private (`--allow-private-egress`).
    pub allow_private: Vec<String>,
    /// `HOST=IP` pins (`--egress-pin`).
    pub pins: Vec<String>,
    pub secrets: Vec<SecretUse>,
    /// The operator's CA bundle, copied into the instance directory.
    pub ca_bundle: Option<PathBuf>,
    pub search: Option<SearchConfig>,
    /// Calls a second the guest may make (`up --egress-max-rate`).
    #[serde(default = "default_max_rate")]
    pub max_rate: u32,
}

fn default_max_rate() -> u32 {
    crate::network::DEFAULT_MAX_RATE
}

/// One env var's secret: the token the guest sees and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretUse {
    pub var: String,
    pub name: String,
    pub token: String,
    pub auth: SecretAuth,
    pub header: Option<String>,
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchConfig {
    pub url: String,
    /// A stored secret's name, never its value.
    pub key: Option<String>,
}

/// The decisions for `launch`, whose secrets got `tokens` (var → token).
pub fn plan(
    launch: &Launch,
    tokens: &std::collections::BTreeMap<String, String>,
    network: &crate::network::NetworkOptions,
    opts: &BrokerOptions,
) -> Result<BrokerConfig, RuntimeError> {
    let grants = match launch.network.mode {
        NetworkMode::None => Vec::new(),
        _ => launch
            .network
            .egress
            .allowlist
            .iter()
            .map(|g| format!("{}:{}", g.host.to_ascii_lowercase(), g.port))
            .collect(),
    };
    let mut secrets = Vec::new();
    for (var, value) in &launch.env {
        if let EnvValue::SecretRef {
            name,
            auth,
            header,
            hosts,
        } = value
            && let Some(token) = tokens.get(var)
        {
            secrets.push(SecretUse {
                var: var.clone(),
                name: name.clone(),
                token: token.clone(),
                auth: *auth,
                header: header.clone(),
                hosts: hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            });
        }
    }
    let search = match &opts.search_url {
        None => {
            if opts.search_key.is_some() {
                return Err(bad(
                    "--web-search-key needs --web-search".into(),
                    "name the provider with --web-search URL".into(),
                ));
            }
            None
        }
        Some(url) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(bad(
                    format!("--web-search {url:?} is not an http(s) URL"),
                    "give the provider's search endpoint, e.g. https://search.example/search"
                        .into(),
                ));
            }
            if let Some(k) = &opts.search_key
                && !mvm_secrets::is_secret_name(k)
            {
                return Err(bad(
                    format!("--web-search-key {k:?} is not a secret name"),
                    "give the name of a secret stored with `mvmctl secret set`".into(),
                ));
            }
            Some(SearchConfig {
                url: url.clone(),
                key: opts.search_key.clone(),
            })
        }
    };
    Ok(BrokerConfig {
        grants,
        allow_private: network.allow_private.clone(),
        pins: network.pins.clone(),
        secrets,
        ca_bundle: None,
        search,
        max_rate: network.max_rate,
    })
}

fn bad(detail: String, hint: String) -> RuntimeError {
    RuntimeError::BadInput { detail, hint }
}

/// Every secret name an instance of `launch` needs from the store.
pub fn referenced(launch: &Launch, opts: &BrokerOptions) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = launch
        .env
        .values()
        .filter_map(|v| match v {
            EnvValue::SecretRef { name, .. } => Some(name.clone()),
            EnvValue::Literal { .. } => None,
        })
        .collect();
    names.extend(opts.search_key.clone());
    names
}

/// Admission: every name must be in the store, or nothing starts; the
/// refusal names each missing secret and how to add it.
pub fn check_store(home: &Path, names: &BTreeSet<String>) -> Result<(), RuntimeError> {
    if names.is_empty() {
        return Ok(());
    }
    let store = open_store(home)?;
    let mut missing = Vec::new();
    for name in names {
        let present = store.contains(name).map_err(store_error)?;
        if !present {
            missing.push(name.clone());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(RuntimeError::SecretsMissing { names: missing })
}

fn open_store(home: &Path) -> Result<mvm_secrets::Store, RuntimeError> {
    mvm_secrets::Store::open(home).map_err(store_error)
}

fn store_error(e: mvm_secrets::SecretError) -> RuntimeError {
    RuntimeError::Secrets {
        detail: e.to_string(),
    }
}

/// Copies the operator's CA bundle into the instance directory (what the
/// broker trusts is fixed at `up`) after checking it holds certificates.
pub fn copy_ca_bundle(from: &Path, to: &Path) -> Result<(), RuntimeError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(from)
        .and_then(|f| f.take(MAX_CA_BUNDLE + 1).read_to_end(&mut bytes))
        .map_err(|source| RuntimeError::Io {
            what: format!("reading the CA bundle {}", from.display()),
            source,
        })?;
    if bytes.len() as u64 > MAX_CA_BUNDLE
        || !bytes
            .windows(27)
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(bad(
            format!(
                "{} is not a PEM certificate bundle of at most {MAX_CA_BUNDLE} bytes",
                from.display()
            ),
            "pass a file of `-----BEGIN CERTIFICATE-----` blocks with --ca-bundle".into(),
        ));
    }
    crate::private::create_file(to)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
        .map_err(|source| RuntimeError::Io {
            what: format!("writing {}", to.display()),
            source,
        })
}

/// The redactor for text of an instance whose broker was given `cfg`:
/// every value still in the store, for what the CLI prints itself
/// (`mvmctl logs`). A store that cannot be read is an error: printing
/// unredacted is not the fallback.
pub fn redactor_for(home: &Path, cfg: &BrokerConfig) -> Result<mvm_broker::Redactor, RuntimeError> {
    let mut names: BTreeSet<String> = cfg.secrets.iter().map(|s| s.name.clone()).collect();
    names.extend(cfg.search.as_ref().and_then(|s| s.key.clone()));
    if names.is_empty() {
        return Ok(mvm_broker::Redactor::new(Vec::new()));
    }
    let store = open_store(home)?;
    let mut values = Vec::new();
    for name in names {
        // A secret removed since `up` has no value left to hide.
        if let Some(v) = store.get(&name).map_err(store_error)? {
            values.push((name, v));
        }
    }
    Ok(mvm_broker::Redactor::new(values))
}

/// What the supervisor's broker needs, values included, read from the
/// store. A secret removed since `up` fails the start-up.
pub fn load(home: &Path, cfg: &BrokerConfig) -> Result<mvm_broker::Config, String> {
    let parse_grants = |list: &[String]| -> Result<Vec<mvm_egress::Grant>, String> {
        list.iter()
            .map(|g| mvm_egress::Grant::parse(g).map_err(|e| e.to_string()))
            .collect()
    };
    let grants = parse_grants(&cfg.grants)?;
    let allow_private = parse_grants(&cfg.allow_private)?;
    let pins = cfg
        .pins
        .iter()
        .map(|p| mvm_egress::Pin::parse(p).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let needs_store =
        !cfg.secrets.is_empty() || cfg.search.as_ref().is_some_and(|s| s.key.is_some());
    let store = if needs_store {
        Some(mvm_secrets::Store::open(home).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let value = |name: &str| -> Result<Zeroizing<Vec<u8>>, String> {
        let store = store.as_ref().ok_or("no secret store")?;
        store.get(name).map_err(|e| e.to_string())?.ok_or_else(|| {
            format!("the secret `{name}` is no longer in the store (mvmctl secret set {name})")
        })
    };
    let mut secrets = Vec::new();
    for s in &cfg.secrets {
        let auth = match (s.auth, &s.header) {
            (SecretAuth::Token, _) => mvm_broker::Auth::Token,
            (SecretAuth::Bearer, _) => mvm_broker::Auth::Bearer,
            (SecretAuth::Basic, _) => mvm_broker::Auth::Basic,
            (SecretAuth::Header, Some(h)) => mvm_broker::Auth::Header(h.clone()),
            (SecretAuth::Header, None) => {
                return Err(format!(
                    "secret {} has type header and no header name",
                    s.var
                ));
            }
        };
        secrets.push(mvm_broker::Secret {
            name: s.name.clone(),
            token: s.token.clone(),
            auth,
            hosts: s.hosts.clone(),
            value: value(&s.name)?,
        });
    }
    let search = match &cfg.search {
        None => None,
        Some(sc) => Some(mvm_broker::SearchProvider {
            url: sc.url.clone(),
            key: match &sc.key {
                Some(k) => Some(value(k)?),
                None => None,
            },
            key_name: sc.key.clone(),
        }),
    };
    let extra_roots_pem = match &cfg.ca_bundle {
        Some(p) => std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))?,
        None => Vec::new(),
    };
    Ok(mvm_broker::Config {
        grants,
        allow_private,
        pins,
        extra_roots_pem,
        secrets,
        search,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn launch(env: serde_json::Value, mode: &str) -> Launch {
        let mut v = crate::launch::tests::launch();
        v["env"] = env;
        v["network"]["mode"] = mode.into();
        v["network"]["egress"] =
            serde_json::json!({"allowlist": [{"host": "API.example", "port": 443}]});
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn grants_and_bindings_come_from_launch_and_tokens_from_up() {
        let l = launch(
            serde_json::json!({
                "KEY": {"kind": "secret_ref", "name": "api-key", "type": "bearer", "header": null, "hosts": ["API.example"]},
                "MODEL": {"kind": "literal", "value": "m"}
            }),
            "bridge",
        );
        let tokens = [("KEY".to_string(), "mvm-secret-ref:api-key:00".to_string())].into();
        let cfg = plan(&l, &tokens, &Default::default(), &Default::default()).unwrap();
        assert_eq!(cfg.grants, ["api.example:443"]);
        assert_eq!(cfg.secrets.len(), 1);
        assert_eq!(cfg.secrets[0].hosts, ["api.example"]);
        assert_eq!(cfg.secrets[0].auth, SecretAuth::Bearer);
        assert!(!serde_json::to_string(&cfg).unwrap().contains("value"));
        let names = referenced(
            &l,
            &BrokerOptions {
                search_url: Some("https://s.example/search".into()),
                search_key: Some("search-key".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["api-key", "search-key"]
        );
    }

    #[test]
    fn a_closed_network_has_no_grants_and_search_needs_a_url() {
        let l = launch(serde_json::json!({}), "none");
        let cfg = plan(
            &l,
            &Default::default(),
            &Default::default(),
            &Default::default(),
        )
        .unwrap();
        assert!(cfg.grants.is_empty());
        let only_key = BrokerOptions {
            search_key: Some("k".into()),
            ..Default::default()
        };
        assert!(plan(&l, &Default::default(), &Default::default(), &only_key).is_err());
        let ftp = BrokerOptions {
            search_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(plan(&l, &Default::default(), &Default::default(), &ftp).is_err());
    }

    /// One store key for every test of this binary (the variable is
    /// process-wide; tests run on threads), outside every test home.
    pub(crate) fn use_test_key_file() {
        static KEY: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
        let dir = KEY.get_or_init(|| tempfile::tempdir().unwrap());
        // SAFETY: every writer sets the same value, once initialised.
        unsafe { std::env::set_var("MVM_SECRETS_KEY_FILE", dir.path().join("secrets.key")) };
    }

    #[test]
    fn admission_names_every_missing_secret() {
        let home = tempfile::tempdir().unwrap();
        use_test_key_file();
        let store = mvm_secrets::Store::open(home.path()).unwrap();
        store.set("present", b"v").unwrap();
        let names: BTreeSet<String> = ["absent-a", "present", "absent-b"].map(String::from).into();
        let err = check_store(home.path(), &names).unwrap_err().to_string();
        assert!(
            err.contains("absent-a") && err.contains("absent-b"),
            "{err}"
        );
        assert!(
            !err.contains("present,") && err.contains("mvmctl secret set absent-a"),
            "{err}"
        );
        check_store(home.path(), &["present".to_string()].into()).unwrap();
    }
}
