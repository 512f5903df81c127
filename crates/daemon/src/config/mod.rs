//! The daemon's configuration: a YAML or TOML file plus `PRESCALE__...` environment overrides.
//!
//! Loading goes through the `config` crate into a plain value tree, which [`validate`] then
//! walks field by field. Every problem is collected with its key path
//! (`workloads[1].mode: unknown value "agressive", ...`), unknown keys included, so
//! `prescaled check-config` can report them all at once; serde alone would stop at the first.

mod check;
mod types;

use std::collections::BTreeMap;
use std::path::Path;

use prescale_core::FieldError;
use serde_json::Value;

pub use types::{
    ApiConfig, DaemonConfig, KubernetesConnection, LeaderElection, LlmSettings, MetricsConfig, MetricsSource, Mode,
    PredictorKind, SecretSource, Setting, StateStore, WorkloadConfig,
};

use crate::DaemonError;

/// Prefix of the environment variables that override file values: `PRESCALE__TICK_INTERVAL=10s`
/// sets `tick_interval`, `PRESCALE__LLM__MODEL=x` sets `llm.model` (`__` separates levels).
pub const ENV_PREFIX: &str = "PRESCALE";

/// Load `path` (format from its extension: `.yaml`, `.yml` or `.toml`) with the process
/// environment's overrides, and validate it.
pub fn load(path: &Path) -> Result<DaemonConfig, DaemonError> {
    load_with_env(path, None)
}

/// Like [`load`], with the overrides taken from `env` instead of the process environment
/// (`None` reads the process environment). Keys are full variable names (`PRESCALE__TICK_INTERVAL`).
pub fn load_with_env(path: &Path, env: Option<BTreeMap<String, String>>) -> Result<DaemonConfig, DaemonError> {
    let tree = load_tree(path, env)?;
    validate(&tree).map_err(|problems| DaemonError::InvalidConfig { file: path.display().to_string(), problems })
}

/// Read `path` and the overrides into one value tree, without validating it.
pub fn load_tree(path: &Path, env: Option<BTreeMap<String, String>>) -> Result<Value, DaemonError> {
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => config::FileFormat::Yaml,
        Some("toml") => config::FileFormat::Toml,
        other => {
            return Err(DaemonError::ConfigLoad {
                file: path.display().to_string(),
                message: format!("unsupported file extension {:?}: expected .yaml, .yml or .toml", other.unwrap_or("")),
            });
        }
    };
    if !path.is_file() {
        return Err(DaemonError::ConfigLoad { file: path.display().to_string(), message: "file not found".into() });
    }
    let mut environment = config::Environment::with_prefix(ENV_PREFIX).separator("__").try_parsing(true);
    if let Some(vars) = env {
        environment = environment.source(Some(vars.into_iter().collect()));
    }
    let built = config::Config::builder()
        .add_source(config::File::from(path).format(format))
        .add_source(environment)
        .build()
        .map_err(|e| DaemonError::ConfigLoad { file: path.display().to_string(), message: e.to_string() })?;
    built
        .try_deserialize::<Value>()
        .map_err(|e| DaemonError::ConfigLoad { file: path.display().to_string(), message: e.to_string() })
}

/// Validate a configuration tree: the typed configuration, or every problem found.
pub fn validate(tree: &Value) -> Result<DaemonConfig, Vec<FieldError>> {
    check::validate(tree)
}

/// Parse a duration such as `30s`, `3m`, `1h 30m` or `6h`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?}: {e} (examples: 30s, 3m, 6h)"))
}
