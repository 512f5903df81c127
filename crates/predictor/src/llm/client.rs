//! A thin OpenAI Chat Completions client over reqwest.
//!
//! One call is one HTTP request; retries, the structured-output ladder and the deadline
//! are decided by the caller. The API key is read from its environment variable or file
//! at every call (so a rotated secret is picked up), is sent only as a header marked
//! sensitive, and is never logged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::config::LlmConfig;
use super::prompt::{SCHEMA_NAME, response_schema};
use super::wire::{ChatReply, ErrorBody, excerpt, parse_error_body, parse_reply, retry_hint};
use crate::PredictError;

/// How the answer's JSON shape is requested from the server: the rungs of the ladder,
/// strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StructuredOutput {
    /// `response_format: {"type": "json_schema", "json_schema": {.., "strict": true}}`.
    JsonSchema,
    /// `response_format: {"type": "json_object"}`.
    JsonObject,
    /// No `response_format`: the schema is only described in the prompt.
    PromptOnly,
}

impl StructuredOutput {
    /// The next weaker rung, if any.
    pub fn weaker(self) -> Option<Self> {
        match self {
            StructuredOutput::JsonSchema => Some(StructuredOutput::JsonObject),
            StructuredOutput::JsonObject => Some(StructuredOutput::PromptOnly),
            StructuredOutput::PromptOnly => None,
        }
    }

    /// The label used in explanations: `json_schema`, `json_object`, `prompt_only`.
    pub fn label(self) -> &'static str {
        match self {
            StructuredOutput::JsonSchema => "json_schema",
            StructuredOutput::JsonObject => "json_object",
            StructuredOutput::PromptOnly => "prompt_only",
        }
    }
}

/// Which structured-output rung works, per endpoint and model; shared by every predictor
/// given the same memory, so a step down is learned once.
#[derive(Debug, Clone, Default)]
pub struct StructuredOutputMemory {
    rungs: Arc<Mutex<HashMap<String, StructuredOutput>>>,
}

impl StructuredOutputMemory {
    /// An empty memory: every endpoint starts at [`StructuredOutput::JsonSchema`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The remembered rung for `endpoint` and `model`, if a call has taught one.
    pub fn get(&self, endpoint: &str, model: &str) -> Option<StructuredOutput> {
        self.rungs.lock().unwrap_or_else(|p| p.into_inner()).get(&memory_key(endpoint, model)).copied()
    }

    pub(crate) fn set(&self, endpoint: &str, model: &str, rung: StructuredOutput) {
        self.rungs.lock().unwrap_or_else(|p| p.into_inner()).insert(memory_key(endpoint, model), rung);
    }
}

fn memory_key(endpoint: &str, model: &str) -> String {
    format!("{}|{model}", endpoint.trim().trim_end_matches('/'))
}

/// One chat message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

/// Why one call produced no reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallError {
    /// A non-2xx status.
    Status { status: u16, error: ErrorBody, retry_hint: Option<Duration> },
    /// The call did not finish within its timeout.
    Timeout(Duration),
    /// The connection failed or broke.
    Connection(String),
    /// A 2xx response without a usable choice.
    InvalidResponse(String),
    /// The API key could not be read.
    ApiKey(String),
}

impl CallError {
    /// Stable label of the outcome for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            CallError::Status { error, .. } if is_quota(error) => "insufficient_quota",
            CallError::Status { status: 401 | 403, .. } => "auth_error",
            CallError::Status { status: 404, .. } => "not_found",
            CallError::Status { status: 408, .. } | CallError::Timeout(_) => "timeout",
            CallError::Status { status: 429, .. } => "rate_limited",
            CallError::Status { status: 400, error, .. } if super::wire::mentions_response_format(error) => {
                "schema_unsupported"
            }
            CallError::Status { status, .. } if *status >= 500 => "server_error",
            CallError::Status { .. } => "bad_request",
            CallError::Connection(_) => "connection_error",
            CallError::InvalidResponse(_) => "invalid_response",
            CallError::ApiKey(_) => "api_key",
        }
    }

    /// Whether one retry may help (408, 429 other than quota, 5xx, timeouts, connection errors).
    pub fn retryable(&self) -> bool {
        matches!(self.outcome(), "timeout" | "rate_limited" | "server_error" | "connection_error")
    }

    /// Whether retrying cannot help until someone fixes something (opens the breaker at once).
    pub fn fatal(&self) -> bool {
        matches!(self.outcome(), "auth_error" | "not_found" | "insufficient_quota" | "api_key")
    }

    /// The server's retry hint, if any.
    pub fn retry_hint(&self) -> Option<Duration> {
        match self {
            CallError::Status { retry_hint, .. } => *retry_hint,
            _ => None,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Status { status, error, .. } => write!(f, "HTTP {status}: {}", excerpt(&error.message, 160)),
            CallError::Timeout(after) => write!(f, "no answer within {:.1} s", after.as_secs_f64()),
            CallError::Connection(e) => write!(f, "connection failed: {e}"),
            CallError::InvalidResponse(e) => write!(f, "invalid response: {e}"),
            CallError::ApiKey(e) => write!(f, "API key unavailable: {e}"),
        }
    }
}

fn is_quota(error: &ErrorBody) -> bool {
    error.code.as_deref() == Some("insufficient_quota") || error.message.contains("insufficient_quota")
}

/// Where the API key comes from.
#[derive(Clone, PartialEq)]
enum ApiKeySource {
    None,
    Env(String),
    File(PathBuf),
}

/// An API key; its Debug output is redacted.
struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKeySource {
    fn read(&self) -> Result<Option<ApiKey>, String> {
        let raw = match self {
            ApiKeySource::None => return Ok(None),
            ApiKeySource::Env(var) => {
                std::env::var(var).map_err(|_| format!("environment variable {var} is not set or not unicode"))?
            }
            ApiKeySource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read API key file {}: {}", path.display(), e.kind()))?,
        };
        let key = raw.trim();
        if key.is_empty() { Err("the API key is empty".to_string()) } else { Ok(Some(ApiKey(key.to_string()))) }
    }
}

/// The HTTP client for one endpoint and model.
pub(crate) struct ChatClient {
    http: reqwest::Client,
    url: reqwest::Url,
    model: String,
    max_tokens: u32,
    api_key: ApiKeySource,
    /// Azure OpenAI takes the key in an `api-key` header instead of a bearer token.
    azure_key_header: bool,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match &self.api_key {
            ApiKeySource::None => "none".to_string(),
            ApiKeySource::Env(var) => format!("env {var} (value redacted)"),
            ApiKeySource::File(path) => format!("file {} (value redacted)", path.display()),
        };
        f.debug_struct("ChatClient")
            .field("url", &self.url.as_str())
            .field("model", &self.model)
            .field("api_key", &key)
            .finish()
    }
}

impl ChatClient {
    /// A client for `config`'s endpoint. Needs a process-wide rustls crypto provider
    /// (`rustls::crypto::ring::default_provider().install_default()`).
    pub fn new(config: &LlmConfig) -> Result<Self, PredictError> {
        config.validate()?;
        let url = chat_url(&config.endpoint)?;
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(PredictError::InvalidRequest(
                "no rustls crypto provider is installed: call rustls::crypto::ring::default_provider().install_default() \
                 before building the LLM predictor"
                    .into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| PredictError::InvalidRequest(format!("LLM HTTP client: {e}")))?;
        let api_key = match (&config.api_key_env, &config.api_key_file) {
            (Some(var), _) => ApiKeySource::Env(var.clone()),
            (None, Some(path)) => ApiKeySource::File(path.clone()),
            (None, None) => ApiKeySource::None,
        };
        // Fail early on a key that cannot be read; it is read again at every call.
        api_key.read().map_err(|e| PredictError::InvalidRequest(format!("LLM API key: {e}")))?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let azure_key_header = host.ends_with(".openai.azure.com") || host.ends_with(".cognitiveservices.azure.com");
        Ok(Self { http, url, model: config.model.clone(), max_tokens: config.max_tokens, api_key, azure_key_header })
    }

    /// The request body for `messages` in structured-output mode `mode`.
    pub fn body(&self, messages: &[Message], mode: StructuredOutput) -> Value {
        let messages: Vec<Value> = messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect();
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "stream": false,
        });
        let format = match mode {
            StructuredOutput::JsonSchema => Some(json!({
                "type": "json_schema",
                "json_schema": {"name": SCHEMA_NAME, "strict": true, "schema": response_schema()},
            })),
            StructuredOutput::JsonObject => Some(json!({"type": "json_object"})),
            StructuredOutput::PromptOnly => None,
        };
        if let (Some(format), Some(obj)) = (format, body.as_object_mut()) {
            obj.insert("response_format".into(), format);
        }
        body
    }

    /// Send one request and read the reply within `timeout`; `now` dates a `Retry-After` date
    /// when the response has no `Date` header.
    pub async fn call(
        &self,
        messages: &[Message],
        mode: StructuredOutput,
        timeout: Duration,
        now: DateTime<Utc>,
    ) -> Result<ChatReply, CallError> {
        let key = self.api_key.read().map_err(CallError::ApiKey)?;
        let mut request = self.http.post(self.url.clone()).timeout(timeout).json(&self.body(messages, mode));
        if let Some(ApiKey(key)) = &key {
            request = if self.azure_key_header {
                let mut value = reqwest::header::HeaderValue::from_str(key)
                    .map_err(|_| CallError::ApiKey("the API key is not a valid header value".into()))?;
                value.set_sensitive(true);
                request.header("api-key", value)
            } else {
                request.bearer_auth(key)
            };
        }
        let exchange = async {
            let response = request.send().await.map_err(|e| transport_error(e, timeout))?;
            let status = response.status();
            let headers = response.headers().clone();
            let text = response.text().await.map_err(|e| transport_error(e, timeout))?;
            Ok::<_, CallError>((status, headers, text))
        };
        let (status, headers, text) =
            tokio::time::timeout(timeout, exchange).await.map_err(|_| CallError::Timeout(timeout))??;
        if status.is_success() {
            return parse_reply(&text).map_err(CallError::InvalidResponse);
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        // A `Retry-After` date is on the server's clock: compare it with the response's `Date`
        // when there is one (the injected clock may be a replayed trace's time).
        let server_now = header("date")
            .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
            .map_or(now, |d| d.with_timezone(&Utc));
        Err(CallError::Status {
            status: status.as_u16(),
            error: parse_error_body(&text),
            retry_hint: retry_hint(header, server_now),
        })
    }
}

fn transport_error(e: reqwest::Error, timeout: Duration) -> CallError {
    if e.is_timeout() {
        CallError::Timeout(timeout)
    } else {
        // The error chain names the cause (refused, reset, DNS) without any header or key.
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        CallError::Connection(excerpt(&text, 200))
    }
}

/// `<endpoint>/chat/completions`, keeping any query (Azure's `api-version`).
fn chat_url(endpoint: &str) -> Result<reqwest::Url, PredictError> {
    let mut url = reqwest::Url::parse(endpoint.trim())
        .map_err(|e| PredictError::InvalidRequest(format!("LLM config: endpoint {endpoint:?} is not a URL ({e})")))?;
    if !url.path().trim_end_matches('/').ends_with("/chat/completions") {
        let Ok(mut segments) = url.path_segments_mut() else {
            return Err(PredictError::InvalidRequest(format!(
                "LLM config: endpoint {endpoint:?} cannot be a base URL"
            )));
        };
        segments.pop_if_empty().extend(["chat", "completions"]);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_url_appends_the_path_and_keeps_the_query() {
        let u = |e: &str| chat_url(e).unwrap().to_string();
        assert_eq!(u("http://localhost:11434/v1"), "http://localhost:11434/v1/chat/completions");
        assert_eq!(u("http://localhost:8080/v1/"), "http://localhost:8080/v1/chat/completions");
        assert_eq!(u("https://api.openai.com/v1/chat/completions"), "https://api.openai.com/v1/chat/completions");
        assert_eq!(
            u("https://x.openai.azure.com/openai/deployments/d?api-version=2024-10-21"),
            "https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"
        );
    }

    #[test]
    fn outcomes_classify_statuses() {
        let status = |status: u16, message: &str, code: Option<&str>| CallError::Status {
            status,
            error: ErrorBody { message: message.into(), code: code.map(str::to_string) },
            retry_hint: None,
        };
        assert_eq!(status(429, "slow down", None).outcome(), "rate_limited");
        assert!(status(429, "slow down", None).retryable());
        let quota = status(429, "You exceeded your current quota", Some("insufficient_quota"));
        assert_eq!(quota.outcome(), "insufficient_quota");
        assert!(!quota.retryable() && quota.fatal());
        assert!(status(401, "bad key", None).fatal());
        assert!(status(404, "no such model", None).fatal());
        assert!(status(503, "overloaded", None).retryable());
        assert_eq!(status(408, "request timeout", None).outcome(), "timeout");
        assert!(status(408, "request timeout", None).retryable());
        assert!(CallError::Connection("refused".into()).retryable());
        assert!(!status(403, "forbidden", None).retryable() && status(403, "forbidden", None).fatal());
        assert_eq!(status(400, "response_format json_schema is not supported", None).outcome(), "schema_unsupported");
        assert_eq!(status(400, "context too long", None).outcome(), "bad_request");
        assert!(!status(400, "context too long", None).retryable());
    }

    #[test]
    fn api_key_debug_is_redacted() {
        assert_eq!(format!("{:?}", ApiKey("sk-secret".into())), "ApiKey(<redacted>)");
    }
}
