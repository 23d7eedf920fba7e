//! What protects every request before a handler runs: the `Host` allowlist (DNS rebinding),
//! cross-origin protection for anything but a read (an identity that comes from the network is
//! exactly what cross-site request forgery exploits: any page an admin visits could post to
//! the panel), and the response headers that keep pages from being framed, sniffed or leaking
//! their address.

use axum::http::{HeaderMap, Method, header};

/// Scripts and styles from the panel itself only (no inline script, no `eval`), nothing
/// external, no framing, forms only to the panel.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The headers every response carries, the refusals included.
pub(crate) const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    // The panel's own forms then carry their real `Origin` (`no-referrer` made it `null` over
    // plain HTTP, refusing every save); other sites still get no address of the panel's pages.
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
];

/// Why a request is refused before any handler runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GuardRefusal {
    #[error("this panel does not answer to the host name {0:?}; open it by its tailnet name or address")]
    UnknownHost(String),
    #[error("no Host header")]
    NoHost,
    #[error("a change must come from a page of this panel: cross-origin request refused ({0})")]
    CrossOrigin(String),
    #[error(
        "a change must come from a page of this panel in a browser (the request has neither Origin nor Sec-Fetch-Site); scripts change data with the cabinet-db CLI or SQL"
    )]
    NotFromABrowserPage,
}

/// The request's `Host` must be one of `allowed` (compared without case).
pub(crate) fn check_host(headers: &HeaderMap, allowed: &[String]) -> Result<(), GuardRefusal> {
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

/// Reads (GET, HEAD) pass. Anything else must come from a page of this panel, as the browser
/// says in the headers a page cannot set: `Sec-Fetch-Site`, when sent, must be `same-origin`
/// (browsers send it only to secure contexts: HTTPS, loopback), and `Origin`, when sent, must be
/// this request's own scheme and `Host` (over plain HTTP by a tailnet name, the only one a
/// browser sends; the pages' `Referrer-Policy: same-origin` makes it the real origin rather
/// than `null`). At least one must be there: a request with neither comes from no current
/// browser — scripts use the CLI or SQL — and `Origin: null` (what a page with its own
/// `no-referrer` policy, a sandboxed frame or a file sends) is never this panel.
pub(crate) fn check_cross_origin(
    method: &Method,
    headers: &HeaderMap,
    tls: bool,
) -> Result<(), GuardRefusal> {
    if matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    let fetch_site = headers.get("sec-fetch-site");
    if let Some(site) = fetch_site {
        match site.to_str().unwrap_or("") {
            "same-origin" => {}
            other => return Err(GuardRefusal::CrossOrigin(format!("Sec-Fetch-Site: {other:?}"))),
        }
    }
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            let scheme = if tls { "https://" } else { "http://" };
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
            let same = !host.is_empty()
                && origin.strip_prefix(scheme).is_some_and(|rest| rest.eq_ignore_ascii_case(host));
            if same { Ok(()) } else { Err(GuardRefusal::CrossOrigin(format!("Origin: {origin}"))) }
        }
        None if fetch_site.is_some() => Ok(()),
        None => Err(GuardRefusal::NotFromABrowserPage),
    }
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

    fn post(pairs: &[(&'static str, &str)]) -> Result<(), GuardRefusal> {
        let mut all = vec![("host", "db.tail1234.ts.net:8432")];
        all.extend_from_slice(pairs);
        check_cross_origin(&Method::POST, &headers(&all), false)
    }

    #[test]
    fn changes_must_be_same_origin() {
        assert_eq!(
            check_cross_origin(&Method::GET, &headers(&[("sec-fetch-site", "cross-site")]), false),
            Ok(())
        );
        // A secure context (HTTPS, loopback): Sec-Fetch-Site, with or without Origin.
        assert_eq!(post(&[("sec-fetch-site", "same-origin")]), Ok(()));
        assert_eq!(
            post(&[("sec-fetch-site", "same-origin"), ("origin", "http://db.tail1234.ts.net:8432")]),
            Ok(())
        );
        for site in ["cross-site", "same-site", "none", ""] {
            assert!(post(&[("sec-fetch-site", site)]).is_err(), "{site}");
        }
        // Sec-Fetch-Site decides even when Origin looks right, and Origin even when it does not.
        assert!(
            post(&[("sec-fetch-site", "cross-site"), ("origin", "http://db.tail1234.ts.net:8432")]).is_err()
        );
        assert!(post(&[("sec-fetch-site", "same-origin"), ("origin", "null")]).is_err());
        // Plain HTTP by name: no Sec-Fetch-Site, the page's own origin.
        assert_eq!(post(&[("origin", "http://DB.tail1234.ts.net:8432")]), Ok(()));
        for origin in [
            "null",
            "http://evil.example.com",
            "https://db.tail1234.ts.net:8432",
            "http://db.tail1234.ts.net:8432.evil",
            "http://db.tail1234.ts.net",
            "http://100.101.102.103:8432",
            "http://db.tail1234.ts.net:8432/",
            "",
        ] {
            assert!(post(&[("origin", origin)]).is_err(), "{origin}");
        }
        assert_eq!(post(&[]), Err(GuardRefusal::NotFromABrowserPage), "not a browser");
        assert!(
            check_cross_origin(&Method::POST, &headers(&[("origin", "http://")]), false).is_err(),
            "no Host"
        );
        assert_eq!(
            check_cross_origin(
                &Method::DELETE,
                &headers(&[("host", "db.tail1234.ts.net"), ("origin", "https://db.tail1234.ts.net")]),
                true
            ),
            Ok(())
        );
    }
}
