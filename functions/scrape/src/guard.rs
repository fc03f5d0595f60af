//! What a fetch may reach: the SSRF policy.
//!
//! Every URL the caller names, and every redirect hop, passes [`Policy::check_url`]; every
//! address a host name resolves to passes [`Policy::check_ip`] before a socket is opened,
//! and the fetcher connects to exactly the address that was checked (no second lookup, so
//! DNS rebinding cannot swap it). Host parsing is the WHATWG URL parser's (`url` crate),
//! which turns `2130706433`, `0x7f.1`, `0177.0.0.1` and `127.1` into `127.0.0.1` just as a
//! browser does, so odd spellings are checked as the address they denote.

use catalyst_shared::Error;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The fetch policy: allowed ports and the only exemption, `SCRAPE_ALLOW_NETS`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub allow_nets: Vec<IpNet>,
    pub allow_ports: BTreeSet<u16>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { allow_nets: Vec::new(), allow_ports: [80, 443].into_iter().collect() }
    }
}

/// A URL that passed the checks, with the host to resolve (or the literal address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    pub host: TargetHost,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    Name(String),
    Ip(IpAddr),
}

pub fn blocked(message: impl Into<String>) -> Error {
    Error::forbidden(message.into()).with_code("ssrf_blocked")
}

impl Policy {
    /// Parse and check a caller-supplied URL string.
    pub fn check_str(&self, raw: &str) -> Result<Target, Error> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(Error::bad_request("`url` is empty").with_code("invalid_url"));
        }
        if raw.len() > 8192 {
            return Err(Error::bad_request("`url` is longer than 8192 characters").with_code("invalid_url"));
        }
        let url = Url::parse(raw)
            .map_err(|e| Error::bad_request(format!("`url` is not a valid URL: {e}")).with_code("invalid_url"))?;
        self.check_url(url)
    }

    /// Check a parsed URL: scheme, credentials, port, and the host by name or address.
    pub fn check_url(&self, mut url: Url) -> Result<Target, Error> {
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(Error::bad_request(format!("only http and https URLs can be fetched, not `{other}:`"))
                    .with_code("unsupported_scheme"));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::bad_request("URLs with credentials (user:password@) are not fetched")
                .with_code("url_credentials"));
        }
        // The fragment never goes on the wire; dropping it keeps cache keys stable.
        url.set_fragment(None);
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Error::bad_request("URL has no port").with_code("invalid_url"))?;
        if !self.allow_ports.contains(&port) {
            return Err(Error::forbidden(format!("port {port} is not allowed (allowed: {})", self.ports_list()))
                .with_code("port_not_allowed"));
        }
        let host = match url.host() {
            None => return Err(Error::bad_request("URL has no host").with_code("invalid_url")),
            Some(Host::Ipv4(v4)) => TargetHost::Ip(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => TargetHost::Ip(IpAddr::V6(v6)),
            Some(Host::Domain(d)) => TargetHost::Name(d.trim_end_matches('.').to_ascii_lowercase()),
        };
        match &host {
            TargetHost::Ip(ip) => self.check_ip(*ip)?,
            TargetHost::Name(name) => check_name(name)?,
        }
        Ok(Target { url, host, port })
    }

    /// Refuse every address that is not plainly public, unless `SCRAPE_ALLOW_NETS` covers it.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Error> {
        let canonical = canonical(ip);
        if self.allow_nets.iter().any(|n| n.contains(&ip) || n.contains(&canonical)) {
            return Ok(());
        }
        match forbidden_reason(ip) {
            None => Ok(()),
            Some(why) => Err(blocked(format!("the address {ip} is {why} and may not be fetched"))),
        }
    }

    fn ports_list(&self) -> String {
        self.allow_ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
    }
}

/// Names that are internal by definition are refused before any lookup.
fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::bad_request("URL has an empty host").with_code("invalid_url"));
    }
    let internal_suffix = [".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".intranet", ".lan"];
    if name == "localhost" || internal_suffix.iter().any(|s| name.ends_with(s)) {
        return Err(blocked(format!("the host `{name}` is internal and may not be fetched")));
    }
    // A single-label name resolves through search domains to internal hosts.
    if !name.contains('.') {
        return Err(blocked(format!("the host `{name}` is not a public domain name")));
    }
    Ok(())
}

/// The address a connection to `ip` would really reach: IPv4-mapped IPv6 is the IPv4 host.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Why an address is refused, or `None` when it is public unicast.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn in4(ip: Ipv4Addr, net: [u8; 4], len: u8) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    // Written out rather than using `Ipv4Addr::is_global`, which is unstable, and so each
    // range is visible to a reviewer.
    const RANGES: &[([u8; 4], u8, &str)] = &[
        ([0, 0, 0, 0], 8, "an unspecified (\"this network\") address"),
        ([10, 0, 0, 0], 8, "a private address"),
        ([100, 64, 0, 0], 10, "a carrier-grade NAT address"),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([169, 254, 0, 0], 16, "a link-local address (cloud metadata lives here)"),
        ([172, 16, 0, 0], 12, "a private address"),
        ([192, 0, 0, 0], 24, "an IETF protocol assignment"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([192, 88, 99, 0], 24, "a 6to4 relay anycast address"),
        ([192, 168, 0, 0], 16, "a private address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([240, 0, 0, 0], 4, "a reserved or broadcast address"),
    ];
    RANGES.iter().find(|(net, len, _)| in4(ip, *net, *len)).map(|(_, _, why)| *why)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if ip.is_unspecified() {
        return Some("the unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // IPv4-mapped (::ffff:a.b.c.d): the IPv4 host is what a socket reaches.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4).map(|_| "an IPv4-mapped form of a non-public IPv4 address");
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and the rest of ::/96 and ::/8.
    if s[0] == 0 {
        return Some("an IPv4-compatible or reserved IPv6 address");
    }
    // NAT64 well-known prefix 64:ff9b::/96 carries an IPv4 address in its low 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return v4_reason(embedded(s[6], s[7])).map(|_| "a NAT64 form of a non-public IPv4 address");
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return Some("a local-use NAT64 address");
    }
    // 6to4 2002:AABB:CCDD::/48 embeds the IPv4 address AA.BB.CC.DD.
    if s[0] == 0x2002 {
        return v4_reason(embedded(s[1], s[2])).map(|_| "a 6to4 form of a non-public IPv4 address");
    }
    // Teredo (2001::/32) embeds an obfuscated IPv4 server and client; refuse it outright.
    if s[0] == 0x2001 && s[1] == 0 {
        return Some("a Teredo address");
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return Some("a documentation address");
    }
    if s[0] == 0x2001 && (0x10..=0x2f).contains(&s[1]) {
        return Some("an ORCHID address");
    }
    if s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0 {
        return Some("a benchmarking address");
    }
    if s[0] & 0xfe00 == 0xfc00 {
        return Some("a unique-local address (fd00:ec2::254 and other metadata services live here)");
    }
    if s[0] & 0xffc0 == 0xfe80 {
        return Some("a link-local address");
    }
    if s[0] & 0xffc0 == 0xfec0 {
        return Some("a site-local address");
    }
    if s[0] & 0xff00 == 0xff00 {
        return Some("a multicast address");
    }
    if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        return Some("a discard-only address");
    }
    // Only global unicast (2000::/3) is routable on the public Internet.
    if s[0] & 0xe000 != 0x2000 {
        return Some("outside IPv6 global unicast space");
    }
    None
}

#[cfg(test)]
/// Hostile URLs refused at the validation layer, without any lookup or connection.
/// Each must be refused with one of the SSRF/validation codes.
pub const HOSTILE: &[&str] = &[
    "http://127.0.0.1/",
    "http://127.0.0.1:80/admin",
    "http://127.1/",
    "http://127.000.000.001/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://0/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[2002:7f00:1::]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[ff02::1]/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://192.0.0.170/",
    "http://198.18.0.1/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://printer.local/",
    "http://intranet/",
    "http://example.com@127.0.0.1/",
    "http://user:pass@example.com/",
    "https://example.com:22/",
    "http://example.com:6379/",
    "https://example.com:8443/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://example.com/",
    "data:text/html,<h1>x</h1>",
    "javascript:alert(1)",
    "dict://127.0.0.1:11211/stats",
    "http://%31%32%37.0.0.1/",
    "http://127.0.0.1%2f@example.com/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:a00:1]/",
    "http://[fe80::1%25eth0]/",
    "http://[::ffff:0:127.0.0.1]/",
    "http://[64:ff9b:1::a00:1]/",
    "http://192.168.0.1.:80/",
    "http://0300.0250.0.1/",
    "http://3232235521/",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::default()
    }

    #[test]
    fn hostile_urls_are_refused_without_io() {
        assert!(HOSTILE.len() >= 40);
        let p = policy();
        for raw in HOSTILE {
            let err = match p.check_str(raw) {
                Ok(t) => panic!("{raw} was allowed: {t:?}"),
                Err(e) => e,
            };
            assert!(
                matches!(
                    err.code(),
                    "ssrf_blocked" | "unsupported_scheme" | "port_not_allowed" | "url_credentials" | "invalid_url"
                ),
                "{raw}: unexpected code {}",
                err.code()
            );
            assert!(matches!(err.status().as_u16(), 400 | 403), "{raw}: status {}", err.status());
        }
    }

    #[test]
    fn odd_ipv4_spellings_parse_to_the_address_they_denote() {
        for raw in
            ["http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/", "http://127.1/", "http://%31%32%37.0.0.1/"]
        {
            let url = Url::parse(raw).unwrap();
            assert_eq!(url.host(), Some(Host::Ipv4(Ipv4Addr::LOCALHOST)), "{raw}");
        }
    }

    #[test]
    fn public_urls_pass() {
        let p = policy();
        for raw in [
            "https://example.com/jobs/123",
            "http://93.184.216.34/",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
            "https://[64:ff9b::5db8:d822]/",
            "https://jobs.example.co.uk/x#frag",
        ] {
            let t = p.check_str(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert!(t.url.fragment().is_none());
        }
    }

    #[test]
    fn allow_nets_is_the_only_exemption() {
        let mut p = policy();
        p.allow_nets = vec!["127.0.0.1/32".parse().unwrap()];
        p.allow_ports.insert(8080);
        assert!(p.check_str("http://127.0.0.1:8080/").is_ok());
        assert!(p.check_str("http://[::ffff:127.0.0.1]:8080/").is_ok());
        assert_eq!(p.check_str("http://127.0.0.2:8080/").unwrap_err().code(), "ssrf_blocked");
        assert_eq!(p.check_str("http://127.0.0.1:9/").unwrap_err().code(), "port_not_allowed");
        // Names are still refused by name; the exemption is for addresses.
        assert_eq!(p.check_str("http://localhost:8080/").unwrap_err().code(), "ssrf_blocked");
    }
}
