//! `LLM_*` configuration: which providers, in which order, and how patiently.
//!
//! The primary provider is described by `LLM_PROVIDER`, `LLM_URL`, `LLM_MODEL` and its
//! key, given in exactly one of three ways (two of them set is an error naming both):
//! `LLM_API_KEY` itself; `LLM_API_KEY_FILE`, a path to a mounted secret such as a Cloud
//! Run secret volume; or `LLM_API_KEY_SECRET`, a secret in the cloud's secret manager (an
//! AWS Secrets Manager ARN or name, or Google's `projects/P/secrets/S[/versions/V]`; see
//! [`crate::secrets`]), which Terraform sets and which is read when the model is built at
//! cold start. Vertex AI needs no key: without one it sends OAuth tokens from application
//! default credentials. `LLM_FALLBACKS` lists further profiles by name, tried in order;
//! profile `BACKUP` reads `LLM_BACKUP_PROVIDER`, `LLM_BACKUP_URL`, `LLM_BACKUP_MODEL`,
//! `LLM_BACKUP_API_KEY`/`_FILE`/`_SECRET`. The name `local` alone means the embedded
//! model, which needs no key (a `*_SECRET` set for it is not read). Every error names the
//! variable to fix, and none repeats a key.

use std::path::PathBuf;
use std::time::Duration;
use url::Url;

use crate::config::ConfigError;
use crate::secrets::SecretRef;

/// Which wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI Chat Completions, and everything that speaks it (Azure OpenAI, vLLM,
    /// llama.cpp server, Ollama, most gateways).
    OpenAi,
    /// Google Gemini API (`generativelanguage.googleapis.com`), API key.
    Gemini,
    /// Gemini on Vertex AI: `LLM_URL` is the publisher models URL
    /// (`https://REGION-aiplatform.googleapis.com/v1/projects/P/locations/REGION/publishers/google/models`).
    Vertex,
    /// Anthropic Messages API.
    Anthropic,
    /// The embedded GGUF model (`llm-local` feature).
    Local,
}

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Vertex => "vertex",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Local => "local",
        }
    }

    fn parse(s: &str) -> Option<ProviderKind> {
        Some(match s.to_ascii_lowercase().as_str() {
            "openai" | "openai-compatible" | "azure" | "vllm" | "ollama" | "llamacpp" => ProviderKind::OpenAi,
            "gemini" | "google" => ProviderKind::Gemini,
            "vertex" | "vertexai" | "vertex-ai" => ProviderKind::Vertex,
            "anthropic" | "claude" => ProviderKind::Anthropic,
            "local" | "gguf" => ProviderKind::Local,
            _ => return None,
        })
    }

    /// Guess from the URL when `*_PROVIDER` is not set.
    fn infer(url: Option<&Url>) -> ProviderKind {
        let Some(host) = url.and_then(|u| u.host_str()) else { return ProviderKind::Local };
        if host.ends_with("anthropic.com") {
            ProviderKind::Anthropic
        } else if host.ends_with("generativelanguage.googleapis.com") {
            ProviderKind::Gemini
        } else if host.ends_with("aiplatform.googleapis.com") {
            ProviderKind::Vertex
        } else {
            ProviderKind::OpenAi
        }
    }

    fn default_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com/v1beta"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com/v1"),
            ProviderKind::Vertex | ProviderKind::Local => None,
        }
    }
}

/// A secret API key. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
    /// The key itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// One provider in the chain.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Variable prefix this profile was read from (`LLM`, `LLM_BACKUP`), for messages.
    pub prefix: String,
    pub kind: ProviderKind,
    /// Base URL (hosted providers); for `local`, unused.
    pub url: Option<Url>,
    pub model: String,
    /// `*_API_KEY` or the content of `*_API_KEY_FILE`.
    pub api_key: Option<ApiKey>,
    /// `*_API_KEY_SECRET`: where the key is read from when the model is built (only when
    /// `api_key` is `None`).
    pub api_key_secret: Option<SecretRef>,
    /// `*_PRICE`: what a million input and output tokens cost, for the cost per call.
    pub price: Option<Price>,
}

/// Provider prices in US dollars per million tokens (`LLM_PRICE=0.15,0.60`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    pub fn cost(&self, usage: super::Usage) -> f64 {
        (usage.input_tokens as f64 * self.input_per_mtok + usage.output_tokens as f64 * self.output_per_mtok) / 1e6
    }

    fn parse(var: &'static str, v: &str) -> Result<Price, ConfigError> {
        let bad = || ConfigError::new(var, format!("`{v}` is not `INPUT,OUTPUT` US dollars per million tokens"));
        let (i, o) = v.split_once(',').ok_or_else(bad)?;
        let num = |x: &str| x.trim().parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
        Ok(Price { input_per_mtok: num(i).ok_or_else(bad)?, output_per_mtok: num(o).ok_or_else(bad)? })
    }
}

/// Timeouts and retries, shared by every provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Longest one attempt may take: the whole answer, or a stream's first byte.
    pub call_timeout: Duration,
    /// Longest silence between two chunks of a stream.
    pub chunk_timeout: Duration,
    /// Retries of one provider on 429, 5xx and connection errors (0 = try once).
    pub max_retries: u32,
    /// First backoff; doubled each retry, with full jitter, capped at `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            call_timeout: Duration::from_secs(60),
            chunk_timeout: Duration::from_secs(20),
            max_retries: 2,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// Everything `LLM_*` says.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub primary: ProviderConfig,
    pub fallbacks: Vec<ProviderConfig>,
    pub policy: Policy,
    /// Where `local` finds its GGUF when `LLM_MODEL_PATH` is not set.
    pub models_dir: PathBuf,
    /// `LLM_MODEL_PATH`: a directory holding `model.gguf`, a `.gguf` file, or a bucket URI.
    pub local_model_path: Option<String>,
    /// `LLM_THREADS`: CPU threads for the local model (default 1: on small machines one
    /// thread is faster than two contending for the same core). Also sizes candle's own
    /// pool for quantized products unless `CANDLE_NUM_THREADS` is set (see
    /// `local::configure_candle_threads`).
    pub local_threads: usize,
}

/// Dynamic variable names live for the process: the config is read once at start-up.
fn var_name(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

impl LlmConfig {
    pub fn from_env(models_dir: PathBuf) -> Result<LlmConfig, ConfigError> {
        Self::from_lookup(models_dir, |k| std::env::var(k).ok())
    }

    pub fn from_lookup(models_dir: PathBuf, lookup: impl Fn(&str) -> Option<String>) -> Result<LlmConfig, ConfigError> {
        let get = |k: &str| lookup(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let secs = |var: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| ConfigError::new(var, format!("`{v}` is not a number of seconds in (0, 3600]"))),
            }
        };
        let defaults = Policy::default();
        let max_retries = match get("LLM_MAX_RETRIES") {
            None => defaults.max_retries,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= 10)
                .ok_or_else(|| ConfigError::new("LLM_MAX_RETRIES", format!("`{v}` is not a whole number 0-10")))?,
        };
        let policy = Policy {
            call_timeout: secs("LLM_TIMEOUT_SECS", defaults.call_timeout)?,
            chunk_timeout: secs("LLM_CHUNK_TIMEOUT_SECS", defaults.chunk_timeout)?,
            max_retries,
            ..defaults
        };
        let local_threads = match get("LLM_THREADS") {
            None => 1,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or_else(|| ConfigError::new("LLM_THREADS", format!("`{v}` is not a thread count 1-256")))?,
        };

        let primary = read_profile("LLM", &get)?;
        let mut fallbacks = Vec::new();
        if let Some(list) = get("LLM_FALLBACKS") {
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if name.eq_ignore_ascii_case("local") && get("LLM_LOCAL_PROVIDER").is_none() {
                    fallbacks.push(ProviderConfig {
                        prefix: "LLM_LOCAL".into(),
                        kind: ProviderKind::Local,
                        url: None,
                        model: "smollm2-135m".into(),
                        api_key: None,
                        api_key_secret: None,
                        price: None,
                    });
                    continue;
                }
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(ConfigError::new(
                        "LLM_FALLBACKS",
                        format!("`{name}` is not a profile name (letters, digits, `_`)"),
                    ));
                }
                let prefix = format!("LLM_{}", name.to_ascii_uppercase());
                fallbacks.push(read_profile(&prefix, &get)?);
            }
        }
        Ok(LlmConfig { primary, fallbacks, policy, models_dir, local_model_path: get("LLM_MODEL_PATH"), local_threads })
    }
}

fn read_profile(prefix: &str, get: &impl Fn(&str) -> Option<String>) -> Result<ProviderConfig, ConfigError> {
    let v = |suffix: &str| format!("{prefix}_{suffix}");
    let url = match get(&v("URL")) {
        None => None,
        Some(raw) => {
            let var = var_name(v("URL"));
            let url = Url::parse(&raw).map_err(|e| ConfigError::new(var, format!("`{raw}` is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::new(var, format!("scheme `{}` is not http or https", url.scheme())));
            }
            Some(url)
        }
    };
    let kind = match get(&v("PROVIDER")) {
        Some(p) => ProviderKind::parse(&p).ok_or_else(|| {
            ConfigError::new(
                var_name(v("PROVIDER")),
                format!("`{p}` is not one of: openai, gemini, vertex, anthropic, local"),
            )
        })?,
        None => ProviderKind::infer(url.as_ref()),
    };
    if kind == ProviderKind::Local {
        let model = get(&v("MODEL")).unwrap_or_else(|| "smollm2-135m".into());
        return Ok(ProviderConfig {
            prefix: prefix.into(),
            kind,
            url: None,
            model,
            api_key: None,
            api_key_secret: None,
            price: None,
        });
    }
    let url = match url.or_else(|| kind.default_url().map(|u| Url::parse(u).expect("valid default"))) {
        Some(u) => u,
        None => {
            return Err(ConfigError::new(
                var_name(v("URL")),
                format!("provider `{}` needs a URL (the Vertex AI publisher models URL)", kind.name()),
            ));
        }
    };
    let model = get(&v("MODEL")).ok_or_else(|| {
        ConfigError::new(var_name(v("MODEL")), format!("provider `{}` needs a model name", kind.name()))
    })?;
    // One source for the key: two of them set is a mistake, never a silent precedence.
    let sources = ["API_KEY", "API_KEY_FILE", "API_KEY_SECRET"].map(|s| (v(s), get(&v(s)).is_some()));
    let set: Vec<&String> = sources.iter().filter(|(_, is_set)| *is_set).map(|(name, _)| name).collect();
    if set.len() > 1 {
        let names: Vec<&str> = set.iter().map(|s| s.as_str()).collect();
        return Err(ConfigError::new(
            var_name(set[0].clone()),
            format!("{} are set together; give the key one way only", names.join(" and ")),
        ));
    }
    let api_key_secret = match get(&v("API_KEY_SECRET")) {
        None => None,
        Some(raw) => {
            let var = var_name(v("API_KEY_SECRET"));
            let secret = SecretRef::parse(&raw).map_err(|why| ConfigError::new(var, why))?;
            if let Some(why) = secret.unsupported() {
                return Err(ConfigError::new(var, why));
            }
            Some(secret)
        }
    };
    let api_key = match (get(&v("API_KEY")), get(&v("API_KEY_FILE"))) {
        (Some(k), _) => Some(ApiKey::new(k)),
        (None, Some(path)) => {
            let var = var_name(v("API_KEY_FILE"));
            // The message names the file, never its content.
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::new(var, format!("cannot read `{path}`: {}", e.kind())))?;
            let key = text.trim();
            if key.is_empty() {
                return Err(ConfigError::new(var, format!("`{path}` is empty")));
            }
            Some(ApiKey::new(key))
        }
        (None, None) => None,
    };
    let keyless = api_key.is_none() && api_key_secret.is_none();
    if keyless && matches!(kind, ProviderKind::Gemini | ProviderKind::Anthropic) {
        return Err(ConfigError::new(
            var_name(v("API_KEY")),
            format!(
                "provider `{}` needs an API key (or set {prefix}_API_KEY_FILE or {prefix}_API_KEY_SECRET)",
                kind.name()
            ),
        ));
    }
    if keyless && kind == ProviderKind::Vertex && !cfg!(any(feature = "gcs", feature = "pubsub")) {
        return Err(ConfigError::new(
            var_name(v("API_KEY")),
            "provider `vertex` without a key uses Google application default credentials, which this build lacks: \
             build with the `gcp` feature, or set an express-mode key or access token"
                .to_string(),
        ));
    }
    let price = match get(&v("PRICE")) {
        Some(p) => Some(Price::parse(var_name(v("PRICE")), &p)?),
        None => None,
    };
    Ok(ProviderConfig { prefix: prefix.into(), kind, url: Some(url), model, api_key, api_key_secret, price })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<LlmConfig, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LlmConfig::from_lookup(PathBuf::from("/models"), |k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_means_the_local_model() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.primary.kind, ProviderKind::Local);
        assert!(c.fallbacks.is_empty());
        assert_eq!(c.policy, Policy::default());
        assert_eq!(c.local_threads, 1);
    }

    #[test]
    fn provider_is_inferred_from_the_url() {
        let c = cfg(&[("LLM_URL", "https://api.anthropic.com/v1"), ("LLM_MODEL", "m"), ("LLM_API_KEY", "k")]).unwrap();
        assert_eq!(c.primary.kind, ProviderKind::Anthropic);
        let c = cfg(&[("LLM_URL", "http://127.0.0.1:11434/v1"), ("LLM_MODEL", "llama3")]).unwrap();
        assert_eq!(c.primary.kind, ProviderKind::OpenAi);
        assert!(c.primary.api_key.is_none());
    }

    #[test]
    fn fallbacks_read_their_own_profiles() {
        let c = cfg(&[
            ("LLM_PROVIDER", "openai"),
            ("LLM_MODEL", "gpt-4o-mini"),
            ("LLM_API_KEY", "sk-1"),
            ("LLM_FALLBACKS", "backup, local"),
            ("LLM_BACKUP_PROVIDER", "gemini"),
            ("LLM_BACKUP_MODEL", "gemini-2.0-flash"),
            ("LLM_BACKUP_API_KEY", "g-1"),
        ])
        .unwrap();
        assert_eq!(c.fallbacks.len(), 2);
        assert_eq!(c.fallbacks[0].kind, ProviderKind::Gemini);
        assert_eq!(c.fallbacks[0].url.as_ref().unwrap().host_str(), Some("generativelanguage.googleapis.com"));
        assert_eq!(c.fallbacks[1].kind, ProviderKind::Local);
        assert!(c.primary.price.is_none());
    }

    #[test]
    fn prices_give_a_cost_per_call() {
        let c = cfg(&[("LLM_PROVIDER", "openai"), ("LLM_MODEL", "m"), ("LLM_PRICE", "0.15, 0.60")]).unwrap();
        let p = c.primary.price.unwrap();
        let cost = p.cost(crate::llm::Usage { input_tokens: 1_000_000, output_tokens: 500_000 });
        assert!((cost - 0.45).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn errors_name_the_variable_and_never_the_key() {
        assert_eq!(cfg(&[("LLM_PROVIDER", "skynet")]).unwrap_err().var, "LLM_PROVIDER");
        assert_eq!(cfg(&[("LLM_PROVIDER", "openai")]).unwrap_err().var, "LLM_MODEL");
        assert_eq!(cfg(&[("LLM_PROVIDER", "anthropic"), ("LLM_MODEL", "m")]).unwrap_err().var, "LLM_API_KEY");
        assert_eq!(cfg(&[("LLM_PROVIDER", "vertex"), ("LLM_MODEL", "m")]).unwrap_err().var, "LLM_URL");
        assert_eq!(cfg(&[("LLM_URL", "ftp://x")]).unwrap_err().var, "LLM_URL");
        assert_eq!(cfg(&[("LLM_TIMEOUT_SECS", "-1")]).unwrap_err().var, "LLM_TIMEOUT_SECS");
        assert_eq!(cfg(&[("LLM_MAX_RETRIES", "many")]).unwrap_err().var, "LLM_MAX_RETRIES");
        let e = cfg(&[("LLM_FALLBACKS", "b"), ("LLM_B_PROVIDER", "gemini")]).unwrap_err();
        assert_eq!(e.var, "LLM_B_MODEL");
        let e = cfg(&[
            ("LLM_PROVIDER", "gemini"),
            ("LLM_MODEL", "m"),
            ("LLM_API_KEY_FILE", "/nonexistent/secret-value-xyz"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "LLM_API_KEY_FILE");
        let e = cfg(&[("LLM_PROVIDER", "openai"), ("LLM_MODEL", "m"), ("LLM_PRICE", "cheap")]).unwrap_err();
        assert_eq!(e.var, "LLM_PRICE");

        let c = cfg(&[("LLM_PROVIDER", "openai"), ("LLM_MODEL", "m"), ("LLM_API_KEY", "sk-very-secret")]).unwrap();
        assert!(!format!("{c:?}").contains("sk-very-secret"));
    }

    #[test]
    fn key_secrets_are_parsed_and_one_key_source_only() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:catalyst/llm-AbCdEf";
        let c = cfg(&[("LLM_PROVIDER", "anthropic"), ("LLM_MODEL", "m"), ("LLM_API_KEY_SECRET", arn)]);
        if cfg!(feature = "secretsmanager") {
            let p = c.unwrap().primary;
            assert!(p.api_key.is_none());
            assert_eq!(
                p.api_key_secret,
                Some(SecretRef::Aws { id: arn.into(), region: Some("eu-west-1".into()) }),
                "the key itself is read when the model is built"
            );
        } else {
            let e = c.unwrap_err();
            assert_eq!(e.var, "LLM_API_KEY_SECRET");
            assert!(e.message.contains("`aws` feature"), "{}", e.message);
        }

        let c = cfg(&[
            ("LLM_PROVIDER", "openai"),
            ("LLM_MODEL", "m"),
            ("LLM_FALLBACKS", "backup"),
            ("LLM_BACKUP_PROVIDER", "gemini"),
            ("LLM_BACKUP_MODEL", "g"),
            ("LLM_BACKUP_API_KEY_SECRET", "projects/my-proj/secrets/catalyst-llm"),
        ]);
        if cfg!(any(feature = "gcs", feature = "pubsub")) {
            let c = c.unwrap();
            assert!(c.primary.api_key_secret.is_none());
            let name = "projects/my-proj/secrets/catalyst-llm/versions/latest";
            assert_eq!(c.fallbacks[0].api_key_secret, Some(SecretRef::Gcp { name: name.into() }));
        } else {
            let e = c.unwrap_err();
            assert_eq!(e.var, "LLM_BACKUP_API_KEY_SECRET");
            assert!(e.message.contains("`gcp` feature"), "{}", e.message);
        }

        // Two sources at once are refused, naming both and repeating neither.
        let base = [("LLM_PROVIDER", "gemini"), ("LLM_MODEL", "m")];
        let with = |extra: &[(&'static str, &'static str)]| cfg(&[&base[..], extra].concat()).unwrap_err();
        let e = with(&[("LLM_API_KEY", "sk-SECRET-1"), ("LLM_API_KEY_SECRET", "catalyst/llm")]);
        assert_eq!(e.var, "LLM_API_KEY");
        assert!(e.message.contains("LLM_API_KEY and LLM_API_KEY_SECRET"), "{}", e.message);
        let e = with(&[("LLM_API_KEY_FILE", "/run/secrets/k"), ("LLM_API_KEY_SECRET", "catalyst/llm")]);
        assert_eq!(e.var, "LLM_API_KEY_FILE");
        let e = with(&[("LLM_API_KEY", "sk-SECRET-1"), ("LLM_API_KEY_FILE", "/run/secrets/k")]);
        assert!(e.message.contains("LLM_API_KEY and LLM_API_KEY_FILE") && !e.message.contains("SECRET-1"));

        // A key pasted where the secret's name belongs, and names that are neither form.
        for bad in ["sk-proj-SECRET-2", "projects/p/secrets/", "arn:aws:ssm:eu-west-1:1:parameter/SECRET-3"] {
            let e = with(&[("LLM_API_KEY_SECRET", bad)]);
            assert_eq!(e.var, "LLM_API_KEY_SECRET", "{bad}");
            assert!(!e.message.contains("SECRET-"), "{}", e.message);
        }
        let e = with(&[]);
        assert!(e.message.contains("LLM_API_KEY_SECRET"), "the error offers the secret: {}", e.message);

        // Terraform sets the secret for every function that may use a hosted LLM; with
        // the local model it is not read.
        let c = cfg(&[("LLM_API_KEY_SECRET", "catalyst/llm")]).unwrap();
        assert_eq!(c.primary.kind, ProviderKind::Local);
        assert!(c.primary.api_key_secret.is_none());
    }

    #[test]
    fn vertex_without_a_key_uses_application_default_credentials() {
        let url = "https://europe-west1-aiplatform.googleapis.com/v1/projects/p/locations/europe-west1/publishers/google/models";
        let c = cfg(&[("LLM_URL", url), ("LLM_MODEL", "gemini-2.0-flash")]);
        if cfg!(any(feature = "gcs", feature = "pubsub")) {
            let p = c.unwrap().primary;
            assert_eq!(p.kind, ProviderKind::Vertex);
            assert!(p.api_key.is_none() && p.api_key_secret.is_none());
        } else {
            let e = c.unwrap_err();
            assert_eq!(e.var, "LLM_API_KEY");
            assert!(e.message.contains("`gcp` feature"), "{}", e.message);
        }
    }

    #[test]
    fn key_file_is_read_and_trimmed() {
        // std only: this module is also built without the `local` feature (and tempfile).
        let path = std::env::temp_dir().join(format!("catalyst-llm-key-{}", std::process::id()));
        std::fs::write(&path, "abc123\n").unwrap();
        let p = path.to_str().unwrap();
        let c = cfg(&[("LLM_PROVIDER", "anthropic"), ("LLM_MODEL", "m"), ("LLM_API_KEY_FILE", p)]).unwrap();
        assert_eq!(c.primary.api_key.unwrap().expose(), "abc123");
        std::fs::remove_file(&path).unwrap();
    }
}
