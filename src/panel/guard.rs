//! What protects every request before a handler runs: the `Host` allowlist (DNS rebinding),
//! cross-origin protection for anything but a read (an identity that comes from the network is
//! exactly what cross-site request forgery exploits: any page an admin visits could post to
//! the panel), and the response headers that keep pages from being framed, sniffed or leaking
//! their address.

use axum::http::{HeaderMap, Method, header};

/// Scripts and styles from the panel itself only (no inline script, no `eval`), nothing
/// external, no framing, forms only to the panel.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The headers every response carries, the refusals included.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
];

/// Why a request is refused before any handler runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardRefusal {
    #[error("this panel does not answer to the host name {0:?}; open it by its tailnet name or address")]
    UnknownHost(String),
    #[error("no Host header")]
    NoHost,
    #[error("a change must come from a page of this panel: cross-origin request refused ({0})")]
    CrossOrigin(String),
}

/// The request's `Host` must be one of `allowed` (compared without case).
pub fn check_host(headers: &HeaderMap, allowed: &[String]) -> Result<(), GuardRefusal> {
    let host = headers.get(header::HOST).ok_or(GuardRefusal::NoHost)?;
    let host = host
        .to_str()
        .map_err(|_| GuardRefusal::UnknownHost(String::from_utf8_lossy(host.as_bytes()).into()))?;
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
        Ok(())
    } else {
        Err(GuardRefusal::UnknownHost(host.to_owned()))
    }
}

/// Reads (GET, HEAD) pass. Anything else must be same-origin: a browser says so in
/// `Sec-Fetch-Site` (every current one sends it); an older one sends an `Origin`, which must be
/// this panel's; a request with neither comes from no browser (curl, a script), which no other
/// site can make a visitor's browser send.
pub fn check_cross_origin(
    method: &Method,
    headers: &HeaderMap,
    allowed_hosts: &[String],
    tls: bool,
) -> Result<(), GuardRefusal> {
    if matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.to_str().unwrap_or("") {
            // "none": typed into the address bar or a bookmark — not another site's doing.
            "same-origin" | "none" => Ok(()),
            other => Err(GuardRefusal::CrossOrigin(format!("Sec-Fetch-Site: {other}"))),
        };
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("");
    let scheme = if tls { "https://" } else { "http://" };
    let same = origin
        .strip_prefix(scheme)
        .is_some_and(|host| allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(host)));
    if same { Ok(()) } else { Err(GuardRefusal::CrossOrigin(format!("Origin: {origin}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    const HOSTS: &[&str] = &["100.101.102.103:8432", "db.tail1234.ts.net:8432"];

    fn hosts() -> Vec<String> {
        HOSTS.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn only_known_hosts_are_answered() {
        assert_eq!(check_host(&headers(&[("host", "DB.tail1234.ts.net:8432")]), &hosts()), Ok(()));
        for hostile in
            ["evil.example.com", "evil.example.com:8432", "100.101.102.103", "db.tail1234.ts.net:8432.evil"]
        {
            assert!(check_host(&headers(&[("host", hostile)]), &hosts()).is_err(), "{hostile}");
        }
        assert_eq!(check_host(&headers(&[]), &hosts()), Err(GuardRefusal::NoHost));
    }

    #[test]
    fn changes_must_be_same_origin() {
        let post = Method::POST;
        assert_eq!(
            check_cross_origin(&Method::GET, &headers(&[("sec-fetch-site", "cross-site")]), &hosts(), false),
            Ok(())
        );
        assert_eq!(
            check_cross_origin(&post, &headers(&[("sec-fetch-site", "same-origin")]), &hosts(), false),
            Ok(())
        );
        for site in ["cross-site", "same-site", ""] {
            assert!(
                check_cross_origin(&post, &headers(&[("sec-fetch-site", site)]), &hosts(), false).is_err()
            );
        }
        // Sec-Fetch-Site decides even when Origin looks right.
        let mixed = headers(&[("sec-fetch-site", "cross-site"), ("origin", "http://100.101.102.103:8432")]);
        assert!(check_cross_origin(&post, &mixed, &hosts(), false).is_err());
        assert_eq!(
            check_cross_origin(
                &post,
                &headers(&[("origin", "http://db.tail1234.ts.net:8432")]),
                &hosts(),
                false
            ),
            Ok(())
        );
        for origin in [
            "http://evil.example.com",
            "null",
            "https://db.tail1234.ts.net:8432",
            "http://db.tail1234.ts.net:8432.evil",
        ] {
            assert!(
                check_cross_origin(&post, &headers(&[("origin", origin)]), &hosts(), false).is_err(),
                "{origin}"
            );
        }
        assert_eq!(check_cross_origin(&post, &headers(&[]), &hosts(), false), Ok(()), "not a browser");
    }
}
