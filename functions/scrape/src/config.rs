//! Settings of the scrape function beyond the shared configuration, read from the
//! environment; a bad value names its variable.

use crate::guard::Policy;
use catalyst_shared::Error;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    pub policy: Policy,
    /// `SCRAPE_MAX_BYTES`, default 5 MB: the body is streamed and reading stops here.
    pub max_bytes: usize,
    /// `SCRAPE_TIMEOUT_SECS`, default 10: the whole fetch, redirects included.
    pub timeout: Duration,
    /// `SCRAPE_CACHE_TTL_SECS`, default 86400; 0 disables the cache.
    pub cache_ttl: Duration,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            policy: Policy::default(),
            max_bytes: 5_000_000,
            timeout: Duration::from_secs(10),
            cache_ttl: Duration::from_secs(86_400),
        }
    }
}

fn bad(var: &str, msg: String) -> Error {
    Error::bad_request(format!("{var}: {msg}")).with_code("invalid_config")
}

impl ScrapeConfig {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |k: &str| lookup(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut c = ScrapeConfig::default();
        if let Some(nets) = get("SCRAPE_ALLOW_NETS") {
            for part in nets.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let net =
                    part.parse::<ipnet::IpNet>().or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
                c.policy.allow_nets.push(
                    net.map_err(|_| bad("SCRAPE_ALLOW_NETS", format!("`{part}` is not a CIDR such as 127.0.0.1/32")))?,
                );
            }
        }
        if let Some(ports) = get("SCRAPE_ALLOW_PORTS") {
            for part in ports.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let port = part
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad("SCRAPE_ALLOW_PORTS", format!("`{part}` is not a port number (1-65535)")))?;
                c.policy.allow_ports.insert(port);
            }
        }
        let num = |var: &str, v: String| v.parse::<u64>().map_err(|_| bad(var, format!("`{v}` is not a whole number")));
        if let Some(v) = get("SCRAPE_MAX_BYTES") {
            let n = num("SCRAPE_MAX_BYTES", v)?;
            if !(1024..=100_000_000).contains(&n) {
                return Err(bad("SCRAPE_MAX_BYTES", format!("{n} is outside 1024..=100000000")));
            }
            c.max_bytes = n as usize;
        }
        if let Some(v) = get("SCRAPE_TIMEOUT_SECS") {
            let n = num("SCRAPE_TIMEOUT_SECS", v)?;
            if !(1..=120).contains(&n) {
                return Err(bad("SCRAPE_TIMEOUT_SECS", format!("{n} is outside 1..=120")));
            }
            c.timeout = Duration::from_secs(n);
        }
        if let Some(v) = get("SCRAPE_CACHE_TTL_SECS") {
            c.cache_ttl = Duration::from_secs(num("SCRAPE_CACHE_TTL_SECS", v)?);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<ScrapeConfig, Error> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ScrapeConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_and_overrides() {
        let c = cfg(&[]).unwrap();
        assert!(c.policy.allow_nets.is_empty());
        assert_eq!(c.max_bytes, 5_000_000);
        assert_eq!(c.timeout, Duration::from_secs(10));
        let c = cfg(&[("SCRAPE_ALLOW_NETS", "127.0.0.1/32, ::1"), ("SCRAPE_ALLOW_PORTS", "8080,9000")]).unwrap();
        assert_eq!(c.policy.allow_nets.len(), 2);
        assert!(c.policy.allow_ports.contains(&8080) && c.policy.allow_ports.contains(&443));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("SCRAPE_ALLOW_NETS", "10.0.0.0/99"),
            ("SCRAPE_ALLOW_PORTS", "http"),
            ("SCRAPE_MAX_BYTES", "-1"),
            ("SCRAPE_TIMEOUT_SECS", "0"),
            ("SCRAPE_CACHE_TTL_SECS", "soon"),
        ] {
            let e = cfg(&[(k, v)]).unwrap_err();
            assert!(e.message().starts_with(k), "{k}: {}", e.message());
        }
    }
}
