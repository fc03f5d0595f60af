//! Typed configuration from the environment, with defaults that run locally.
//!
//! Every variable is read here and nowhere else, so the full list is in one place. A
//! wrong value stops start-up with a message that names the variable.

use std::path::PathBuf;
use url::Url;

/// Where the process is running, decided from the environment at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// `AWS_LAMBDA_RUNTIME_API` is set: serve the Lambda Runtime API.
    Lambda,
    /// `K_SERVICE` is set (Cloud Run / Cloud Functions gen2): HTTP on `$PORT`.
    CloudRun,
    /// Anything else: HTTP on `$PORT`, or mounted in the local stack.
    Local,
}

impl Platform {
    pub fn is_cloud(self) -> bool {
        self != Platform::Local
    }
}

/// A start-up configuration error naming the variable to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        ConfigError { var, message: message.into() }
    }
}

/// Whether HTTP routes require a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every route but `/healthz` needs a verified principal.
    Required,
    /// `CATALYST_AUTH=off`: local development only; every request is the `dev` user.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Everything a function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub platform: Platform,
    /// Name of the function as the platform knows it (Lambda function name, Cloud Run service).
    pub deployed_name: Option<String>,
    pub port: u16,
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    pub blob_url: Url,
    pub store_url: Url,
    pub queue_url: Url,
    pub auth: AuthMode,
    pub firebase_project_id: Option<String>,
    pub firebase_certs_url: Url,
    pub log_format: LogFormat,
    /// `tracing` filter directives (`CATALYST_LOG`, then `RUST_LOG`; default `info`).
    pub log_filter: String,
    /// OTLP endpoint for trace export (`OTEL_EXPORTER_OTLP_ENDPOINT`), used when built with the `otel` feature.
    pub otlp_endpoint: Option<String>,
    /// Largest request body accepted by any route (`CATALYST_MAX_BODY_BYTES`, default 16 MiB).
    pub max_body_bytes: usize,
    /// Browser origins allowed to call the routes (`CORS_ALLOWED_ORIGINS`, comma-separated
    /// `scheme://host[:port]`, or `*`). Empty: no CORS headers, preflights are not answered.
    /// Set where no gateway answers CORS itself (Cloud Run behind Google's API Gateway);
    /// AWS's HTTP API answers it from its own configuration.
    pub cors_allowed_origins: Vec<String>,
}

pub const DEFAULT_FIREBASE_CERTS_URL: &str =
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com";

impl Config {
    /// Read the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| lookup(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());

        let platform = if get("AWS_LAMBDA_RUNTIME_API").is_some() {
            Platform::Lambda
        } else if get("K_SERVICE").is_some() {
            Platform::CloudRun
        } else {
            Platform::Local
        };
        let deployed_name = get("AWS_LAMBDA_FUNCTION_NAME").or_else(|| get("K_SERVICE"));

        let port = match get("PORT") {
            None => 8080,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| ConfigError::new("PORT", format!("`{p}` is not a port number (0-65535)")))?,
        };

        let data_dir = PathBuf::from(get("CATALYST_DATA_DIR").unwrap_or_else(|| "./.catalyst".into()));
        let data_dir = absolute(&data_dir).map_err(|e| ConfigError::new("CATALYST_DATA_DIR", e))?;
        let models_dir = match get("CATALYST_MODELS_DIR") {
            Some(d) => absolute(&PathBuf::from(d)).map_err(|e| ConfigError::new("CATALYST_MODELS_DIR", e))?,
            None => data_dir.join("models"),
        };

        let file_url =
            |sub: &str| Url::from_directory_path(data_dir.join(sub)).expect("absolute path is a valid file URL");
        let blob_url = parse_url("CATALYST_BLOB_URL", get("CATALYST_BLOB_URL"), &["file", "s3", "gs"])?
            .unwrap_or_else(|| file_url("blobs"));
        let store_url = parse_url("CATALYST_STORE_URL", get("CATALYST_STORE_URL"), &["file", "dynamodb", "firestore"])?
            .unwrap_or_else(|| Url::from_file_path(data_dir.join("store.db")).expect("absolute path"));
        let queue_url = parse_url("CATALYST_QUEUE_URL", get("CATALYST_QUEUE_URL"), &["file", "sqs", "pubsub"])?
            .unwrap_or_else(|| Url::from_file_path(data_dir.join("queue.db")).expect("absolute path"));

        let auth = match get("CATALYST_AUTH").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("on") | Some("required") => AuthMode::Required,
            Some("off") => {
                if let Some(var) = ["K_SERVICE", "AWS_LAMBDA_FUNCTION_NAME"].into_iter().find(|v| get(v).is_some()) {
                    return Err(ConfigError::new(
                        "CATALYST_AUTH",
                        format!("`off` is for local development only and is refused in the cloud ({var} is set)"),
                    ));
                }
                AuthMode::Off
            }
            Some(other) => return Err(ConfigError::new("CATALYST_AUTH", format!("`{other}` is not `on` or `off`"))),
        };

        let firebase_certs_url = parse_url("FIREBASE_CERTS_URL", get("FIREBASE_CERTS_URL"), &["http", "https"])?
            .unwrap_or_else(|| Url::parse(DEFAULT_FIREBASE_CERTS_URL).expect("valid default"));

        let log_format = match get("CATALYST_LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            Some("pretty") | Some("text") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError::new("CATALYST_LOG_FORMAT", format!("`{other}` is not `json` or `pretty`")));
            }
            None if platform.is_cloud() || get("AWS_LAMBDA_FUNCTION_NAME").is_some() => LogFormat::Json,
            None => LogFormat::Pretty,
        };
        let log_filter = get("CATALYST_LOG").or_else(|| get("RUST_LOG")).unwrap_or_else(|| "info".into());

        let max_body_bytes = match get("CATALYST_MAX_BODY_BYTES") {
            None => 16 * 1024 * 1024,
            Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ConfigError::new("CATALYST_MAX_BODY_BYTES", format!("`{v}` is not a positive number of bytes"))
            })?,
        };

        let cors_allowed_origins = match get("CORS_ALLOWED_ORIGINS") {
            None => Vec::new(),
            Some(v) => parse_origins(&v).map_err(|m| ConfigError::new("CORS_ALLOWED_ORIGINS", m))?,
        };

        Ok(Config {
            platform,
            deployed_name,
            port,
            data_dir,
            models_dir,
            blob_url,
            store_url,
            queue_url,
            auth,
            firebase_project_id: get("FIREBASE_PROJECT_ID"),
            firebase_certs_url,
            log_format,
            log_filter,
            otlp_endpoint: get("OTEL_EXPORTER_OTLP_ENDPOINT"),
            max_body_bytes,
            cors_allowed_origins,
        })
    }
}

fn absolute(p: &std::path::Path) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("cannot resolve `{}`: {e}", p.display()))
}

/// Origins as browsers send them: a scheme, a host and maybe a port, nothing else; or `*`
/// alone (fine for bearer-token APIs: browsers never attach credentials to `*`).
fn parse_origins(value: &str) -> Result<Vec<String>, String> {
    let origins: Vec<&str> = value.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();
    if origins.contains(&"*") {
        return if origins.len() == 1 {
            Ok(vec!["*".into()])
        } else {
            Err("`*` cannot be combined with origins".into())
        };
    }
    origins
        .into_iter()
        .map(|o| {
            let url = Url::parse(o).map_err(|_| format!("`{o}` is not an origin such as https://app.example.com"))?;
            let origin = url.origin().ascii_serialization();
            // `Url` gives a bare origin the path `/`; anything more is not an origin.
            let extra = url.path() != "/" || url.query().is_some() || url.fragment().is_some();
            if !matches!(url.scheme(), "http" | "https") || extra || !url.username().is_empty() {
                return Err(format!(
                    "`{o}` is not an origin such as https://app.example.com (scheme, host, port only)"
                ));
            }
            Ok(origin)
        })
        .collect()
}

fn parse_url(var: &'static str, value: Option<String>, schemes: &[&str]) -> Result<Option<Url>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    let url = Url::parse(&value).map_err(|e| ConfigError::new(var, format!("`{value}` is not a URL: {e}")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError::new(
            var,
            format!("scheme `{}` is not supported here; use one of: {}", url.scheme(), schemes.join(", ")),
        ));
    }
    Ok(Some(url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn cors_origins_are_origins() {
        assert!(cfg(&[]).unwrap().cors_allowed_origins.is_empty());
        let c = cfg(&[(
            "CORS_ALLOWED_ORIGINS",
            " https://app.example.com, http://localhost:5173/ ,https://A.example.com:443",
        )])
        .unwrap();
        assert_eq!(
            c.cors_allowed_origins,
            ["https://app.example.com", "http://localhost:5173", "https://a.example.com"]
        );
        assert_eq!(cfg(&[("CORS_ALLOWED_ORIGINS", "*")]).unwrap().cors_allowed_origins, ["*"]);
        for bad in [
            "*,https://a.example.com",
            "https://a.example.com/app",
            "ftp://a.example.com",
            "a.example.com",
            "https://u:p@a.example.com",
            "https://a.example.com?x=1",
        ] {
            let e = cfg(&[("CORS_ALLOWED_ORIGINS", bad)]).unwrap_err();
            assert_eq!(e.var, "CORS_ALLOWED_ORIGINS", "{bad}");
        }
    }

    #[test]
    fn defaults_run_locally() {
        let c = cfg(&[("CATALYST_DATA_DIR", "/tmp/cat")]).unwrap();
        assert_eq!(c.platform, Platform::Local);
        assert_eq!(c.port, 8080);
        assert_eq!(c.models_dir, PathBuf::from("/tmp/cat/models"));
        assert_eq!(c.blob_url.as_str(), "file:///tmp/cat/blobs/");
        assert_eq!(c.store_url.as_str(), "file:///tmp/cat/store.db");
        assert_eq!(c.auth, AuthMode::Required);
        assert_eq!(c.log_format, LogFormat::Pretty);
    }

    #[test]
    fn platform_is_detected() {
        assert_eq!(cfg(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")]).unwrap().platform, Platform::Lambda);
        let c = cfg(&[("K_SERVICE", "scrape")]).unwrap();
        assert_eq!(c.platform, Platform::CloudRun);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn auth_off_is_refused_in_the_cloud() {
        assert_eq!(cfg(&[("CATALYST_AUTH", "off")]).unwrap().auth, AuthMode::Off);
        let e = cfg(&[("CATALYST_AUTH", "off"), ("K_SERVICE", "x")]).unwrap_err();
        assert_eq!(e.var, "CATALYST_AUTH");
        assert!(e.message.contains("K_SERVICE"));
        let e = cfg(&[("CATALYST_AUTH", "off"), ("AWS_LAMBDA_FUNCTION_NAME", "x")]).unwrap_err();
        assert!(e.message.contains("AWS_LAMBDA_FUNCTION_NAME"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(cfg(&[("PORT", "eighty")]).unwrap_err().var, "PORT");
        assert_eq!(cfg(&[("CATALYST_BLOB_URL", "ftp://x/y")]).unwrap_err().var, "CATALYST_BLOB_URL");
        assert_eq!(cfg(&[("CATALYST_STORE_URL", "not a url")]).unwrap_err().var, "CATALYST_STORE_URL");
        assert_eq!(cfg(&[("CATALYST_AUTH", "maybe")]).unwrap_err().var, "CATALYST_AUTH");
        assert_eq!(cfg(&[("CATALYST_MAX_BODY_BYTES", "0")]).unwrap_err().var, "CATALYST_MAX_BODY_BYTES");
    }
}
