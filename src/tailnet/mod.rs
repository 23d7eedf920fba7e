//! The tailnet side: reading tailscaled's LocalAPI, and rendering the host configuration that
//! makes PostgreSQL reachable over Tailscale only.

/// A read-only client for tailscaled's LocalAPI over its unix socket.
pub(crate) mod localapi;
/// The panel's port and capability, as the policy and the panel both name them.
pub(crate) mod panel;
/// The files `tailnet render` writes.
pub mod render;

use std::net::IpAddr;

/// Tailscale's IPv4 range (CGNAT, 100.64.0.0/10).
pub(crate) const TAILNET_V4: (&str, u8) = ("100.64.0.0", 10);
/// Tailscale's IPv6 range (fd7a:115c:a1e0::/48).
pub(crate) const TAILNET_V6: (&str, u8) = ("fd7a:115c:a1e0::", 48);

/// Whether an address is one Tailscale hands out.
pub(crate) fn is_tailnet_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            a == 100 && (64..128).contains(&b)
        }
        IpAddr::V6(v6) => v6.segments()[..3] == [0xfd7a, 0x115c, 0xa1e0],
    }
}

/// Whether a CIDR (address and prefix length) lies inside Tailscale's ranges.
pub(crate) fn is_tailnet_network(ip: IpAddr, prefix: u8) -> bool {
    let minimum = match ip {
        IpAddr::V4(_) => TAILNET_V4.1,
        IpAddr::V6(_) => TAILNET_V6.1,
    };
    prefix >= minimum && is_tailnet_address(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tailnet_ranges() {
        assert!(is_tailnet_address("100.101.102.103".parse().unwrap()));
        assert!(is_tailnet_address("100.64.0.1".parse().unwrap()));
        assert!(!is_tailnet_address("100.128.0.1".parse().unwrap()));
        assert!(!is_tailnet_address("192.168.1.10".parse().unwrap()));
        assert!(is_tailnet_address("fd7a:115c:a1e0::a01:2b03".parse().unwrap()));
        assert!(!is_tailnet_address("fd00::1".parse().unwrap()));
        assert!(is_tailnet_network("100.64.0.0".parse().unwrap(), 10));
        assert!(!is_tailnet_network("100.64.0.0".parse().unwrap(), 8));
    }
}
