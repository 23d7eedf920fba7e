//! Where the panel listens: this node's tailnet addresses only. A wildcard would accept the
//! internet on a public interface; loopback is never an identity (every local process, and
//! `tailscale serve`, arrives from it), so it is allowed only with a development identity —
//! and then nothing else is.

use std::net::{IpAddr, SocketAddr};

use crate::tailnet::{self, localapi::Status, panel::DEFAULT_PORT};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ListenError {
    #[error(
        "--listen {0}: a wildcard address accepts connections from every network, the internet included; give this node's tailnet address (tailscale ip -4), or leave --listen out to use all of them"
    )]
    Wildcard(SocketAddr),
    #[error(
        "--listen {0}: loopback is never an identity (every local process arrives from it); the panel listens on tailnet addresses, or on loopback only with --dev-identity for development"
    )]
    LoopbackWithoutDevIdentity(SocketAddr),
    #[error(
        "--listen {0}: with --dev-identity every request is trusted as that identity, so the panel listens on loopback only (127.0.0.1 or ::1)"
    )]
    NotLoopbackInDevelopment(SocketAddr),
    #[error(
        "--listen {0}: not a tailnet address (100.64.0.0/10 or fd7a:115c:a1e0::/48); the panel is reachable over Tailscale only"
    )]
    NotTailnet(SocketAddr),
    #[error("{0} is not an address with a port, e.g. 100.101.102.103:{DEFAULT_PORT}")]
    Unparsable(String),
    #[error(
        "--listen {0}: port 0 is no port a browser could be sent to; give 1–65535 (default {DEFAULT_PORT})"
    )]
    PortZero(SocketAddr),
    #[error(
        "--listen {addr}: not one of this node's Tailscale addresses ({}); another node's address would be bound here only if it were configured on this host, which tailscaled does not do (`tailscale ip` lists the node's own)",
        .own.join(", ")
    )]
    NotThisNode { addr: SocketAddr, own: Vec<String> },
    #[error(
        "tailscaled reports no Tailscale address for this node (is it logged in? `tailscale up`); or pass --listen"
    )]
    NoTailnetAddress,
}

/// `ADDR:PORT` or a bare address (then the default port).
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, ListenError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| ListenError::Unparsable(text.to_owned()))
}

/// Refuses every address the panel must not bind.
pub(crate) fn check_listen(addrs: &[SocketAddr], development: bool) -> Result<(), ListenError> {
    for &addr in addrs {
        let ip = addr.ip().to_canonical();
        if addr.port() == 0 {
            return Err(ListenError::PortZero(addr));
        }
        if ip.is_unspecified() {
            return Err(ListenError::Wildcard(addr));
        }
        match (development, ip.is_loopback()) {
            (true, true) => {}
            (true, false) => return Err(ListenError::NotLoopbackInDevelopment(addr)),
            (false, true) => return Err(ListenError::LoopbackWithoutDevIdentity(addr)),
            (false, false) if !tailnet::is_tailnet_address(ip) => return Err(ListenError::NotTailnet(addr)),
            (false, false) => {}
        }
    }
    Ok(())
}

/// Refuses a tailnet address that is not this node's own (tailscaled's status lists them): a
/// 100.64.0.0/10 address on another interface is not the tailnet.
pub(crate) fn check_own(addrs: &[SocketAddr], status: &Status) -> Result<(), ListenError> {
    let own = status.ips();
    for &addr in addrs {
        let ip = addr.ip().to_canonical();
        if !own.iter().any(|o| o.parse::<IpAddr>().is_ok_and(|o| o == ip)) {
            let own = own.iter().map(|o| crate::models::characters::peer_excerpt(o)).collect();
            return Err(ListenError::NotThisNode { addr, own });
        }
    }
    Ok(())
}

/// This node's tailnet addresses on `port`, from tailscaled's status.
pub(crate) fn tailnet_listen_addresses(status: &Status, port: u16) -> Result<Vec<SocketAddr>, ListenError> {
    let addrs: Vec<SocketAddr> = status
        .ips()
        .iter()
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| tailnet::is_tailnet_address(*ip))
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    if addrs.is_empty() { Err(ListenError::NoTailnetAddress) } else { Ok(addrs) }
}

/// The `Host` header values a browser may send to reach these addresses: each address and
/// each name, with the port (and without it on the scheme's default port). Anything else is
/// refused, which defeats DNS rebinding (a hostile name resolving to our address).
pub(crate) fn allowed_hosts(addrs: &[SocketAddr], names: &[String], tls: bool) -> Vec<String> {
    let default_port = if tls { 443 } else { 80 };
    let mut hosts = Vec::new();
    for addr in addrs {
        let ip = addr.ip().to_canonical();
        let mut literals = vec![match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        }];
        if ip.is_loopback() {
            literals.push("localhost".to_owned());
        }
        literals.extend(names.iter().map(|n| n.trim_end_matches('.').to_ascii_lowercase()));
        for literal in literals {
            hosts.push(format!("{literal}:{}", addr.port()));
            if addr.port() == default_port {
                hosts.push(literal);
            }
        }
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        parse_listen(text).unwrap()
    }

    #[test]
    fn only_tailnet_addresses_or_loopback_in_development() {
        assert_eq!(check_listen(&[addr("100.101.102.103:8432")], false), Ok(()));
        assert_eq!(check_listen(&[addr("[fd7a:115c:a1e0::1]:8432")], false), Ok(()));
        for wildcard in ["0.0.0.0:8432", "[::]:8432", "[::ffff:0.0.0.0]:8432"] {
            assert!(matches!(check_listen(&[addr(wildcard)], false), Err(ListenError::Wildcard(_))));
            assert!(matches!(check_listen(&[addr(wildcard)], true), Err(ListenError::Wildcard(_))));
        }
        assert!(matches!(
            check_listen(&[addr("127.0.0.1:8432")], false),
            Err(ListenError::LoopbackWithoutDevIdentity(_))
        ));
        assert!(matches!(
            check_listen(&[addr("[::ffff:127.0.0.1]:8432")], false),
            Err(ListenError::LoopbackWithoutDevIdentity(_))
        ));
        assert!(matches!(check_listen(&[addr("192.168.1.5:8432")], false), Err(ListenError::NotTailnet(_))));
        assert_eq!(check_listen(&[addr("127.0.0.1:8432"), addr("[::1]:9000")], true), Ok(()));
        assert!(matches!(
            check_listen(&[addr("127.0.0.1:8432"), addr("100.101.102.103:8432")], true),
            Err(ListenError::NotLoopbackInDevelopment(_))
        ));
        assert_eq!(addr("100.101.102.103").port(), DEFAULT_PORT);
        assert!(matches!(check_listen(&[addr("100.101.102.103:0")], false), Err(ListenError::PortZero(_))));
        assert!(parse_listen("db.example.com:80").is_err());
    }

    #[test]
    fn only_this_nodes_own_tailnet_addresses() {
        let status: Status = serde_json::from_str(
            r#"{"Self":{"TailscaleIPs":["100.101.102.103","fd7a:115c:a1e0::a01:2b03"]}}"#,
        )
        .unwrap();
        assert_eq!(
            check_own(&[addr("100.101.102.103:8432"), addr("[fd7a:115c:a1e0::a01:2b03]:80")], &status),
            Ok(())
        );
        assert!(matches!(
            check_own(&[addr("100.101.102.103:8432"), addr("100.64.77.1:8432")], &status),
            Err(ListenError::NotThisNode { .. })
        ));
    }

    #[test]
    fn hosts_are_the_addresses_and_names_with_their_port() {
        let hosts = allowed_hosts(
            &[addr("100.101.102.103:8432"), addr("[fd7a:115c:a1e0::1]:8432")],
            &["DB.tail1234.ts.net.".to_owned()],
            false,
        );
        assert_eq!(hosts, ["100.101.102.103:8432", "[fd7a:115c:a1e0::1]:8432", "db.tail1234.ts.net:8432"]);
        let tls = allowed_hosts(&[addr("100.101.102.103:443")], &["db.tail1234.ts.net".to_owned()], true);
        assert!(
            tls.contains(&"db.tail1234.ts.net".to_owned()) && tls.contains(&"100.101.102.103".to_owned())
        );
    }
}
