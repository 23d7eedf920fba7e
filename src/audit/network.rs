use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

use sqlx::PgConnection;

use super::check::{AuditOptions, Check};
use crate::tailnet::localapi::{LocalApiError, ServeConfig, Status};

/// Checks that need tailscaled: only meaningful on the database host itself.
pub(crate) async fn checks(
    conn: &mut PgConnection,
    tailscale: Result<(Status, ServeConfig), LocalApiError>,
    options: &AuditOptions,
) -> Result<Vec<Check>, sqlx::Error> {
    let (status, serve) = match tailscale {
        Ok(found) => found,
        Err(LocalApiError::SocketMissing(path)) if !options.socket_explicit => {
            return Ok(vec![Check::warn(
                "tailscale.available",
                format!("no tailscaled socket at {}: the tailnet checks did not run", path.display()),
                "run the audit on the database host (or pass --socket)",
            )]);
        }
        Err(e) => {
            return Ok(vec![Check::fail(
                "tailscale.available",
                format!("could not read tailscaled: {e}"),
                "check that tailscaled runs on this host and the socket path is right",
            )]);
        }
    };
    let mut checks = Vec::new();
    let state = status.backend_state.clone().unwrap_or_else(|| "unknown".to_owned());
    checks.push(if status.is_running() {
        Check::pass(
            "tailscale.running",
            format!("tailscaled is Running as {}", status.dns_name().unwrap_or_default()),
        )
    } else {
        Check::fail("tailscale.running", format!("tailscaled is {state}"), "run `tailscale up` on this host")
    });
    let funnels = serve.funnels();
    checks.push(if funnels.is_empty() {
        Check::pass("tailscale.funnel", "no Funnel: nothing is published to the internet")
    } else {
        Check::fail(
            "tailscale.funnel",
            format!("Funnel publishes {} to the internet", funnels.join(", ")),
            "tailscale funnel reset (or `tailscale funnel --https=443 off`)",
        )
    });
    let port: String = sqlx::query_scalar("SELECT current_setting('port')").fetch_one(&mut *conn).await?;
    if serve.served_tcp_ports().contains(&port) {
        checks.push(Check::warn(
            "tailscale.serve",
            format!("tailscale serve forwards tcp/{port}: every client reaches PostgreSQL as 127.0.0.1, so pg_hba cannot tell them apart"),
            format!("tailscale serve --tcp={port} off; let PostgreSQL listen on the Tailscale address instead"),
        ));
    }
    let node_ips: Vec<IpAddr> = status.ips().iter().filter_map(|ip| ip.parse().ok()).collect();
    let port: u16 = port.parse().unwrap_or(5432);
    checks.push(match listening(&options.proc_root, port) {
        Ok(addresses) if addresses.is_empty() => Check::warn(
            "network.listening",
            format!("nothing listens on port {port} in this network namespace"),
            "run the audit on the database host",
        ),
        Ok(addresses) => {
            let stray: Vec<String> = addresses
                .iter()
                .filter(|ip| !ip.is_loopback() && !node_ips.contains(ip))
                .map(|ip| if ip.is_unspecified() { format!("{ip} (every interface)") } else { ip.to_string() })
                .collect();
            let all: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            if stray.is_empty() {
                Check::pass("network.listening", format!("port {port} is bound to {} only", all.join(", ")))
            } else {
                Check::fail(
                    "network.listening",
                    format!("port {port} is bound to {}", stray.join(", ")),
                    "set listen_addresses to localhost and this node's Tailscale IPs, then restart PostgreSQL",
                )
            }
        }
        Err(e) => Check::warn("network.listening", format!("could not read {}/net/tcp*: {e}", options.proc_root.display()), ""),
    });
    Ok(checks)
}

/// The admin panel's port: nothing, or tailnet addresses only. Loopback fails too: a panel
/// there is a development one (`--dev-identity`, trusting every caller) or reachable by every
/// local process.
pub fn panel(options: &AuditOptions) -> Check {
    let port = options.panel_port;
    let addresses = match listening(&options.proc_root, port) {
        Ok(addresses) => addresses,
        Err(e) => {
            return Check::warn(
                "panel.listening",
                format!("could not read {}/net/tcp*: {e}", options.proc_root.display()),
                "",
            );
        }
    };
    if addresses.is_empty() {
        return Check::pass("panel.listening", format!("no admin panel on port {port} here"));
    }
    let shown = |ips: &[&IpAddr]| {
        ips.iter()
            .map(|ip| if ip.is_unspecified() { format!("{ip} (every interface)") } else { ip.to_string() })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let stray: Vec<&IpAddr> =
        addresses.iter().filter(|ip| !crate::tailnet::is_tailnet_address(**ip)).collect();
    if stray.is_empty() {
        let all: Vec<&IpAddr> = addresses.iter().collect();
        Check::pass(
            "panel.listening",
            format!("the admin panel (port {port}) listens on {} only", shown(&all)),
        )
    } else {
        Check::fail(
            "panel.listening",
            format!("port {port} (the admin panel's) is bound to {}", shown(&stray)),
            "run `cabinet-db serve` without --dev-identity and without --listen (it then binds this node's Tailscale addresses only); stop whatever else holds the port",
        )
    }
}

/// Addresses with a socket in LISTEN state on `port`, from `net/tcp` and `net/tcp6`.
pub(crate) fn listening(proc_root: &Path, port: u16) -> std::io::Result<Vec<IpAddr>> {
    let mut found = Vec::new();
    for file in ["net/tcp", "net/tcp6"] {
        let text = match std::fs::read_to_string(proc_root.join(file)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        found.extend(parse_listening(&text, port));
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// LISTEN is state `0A`; addresses are hex, each 32-bit word in host (little-endian) order.
fn parse_listening(text: &str, port: u16) -> Vec<IpAddr> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (fields.get(1)?, fields.get(3)?);
            if *state != "0A" {
                return None;
            }
            let (address, local_port) = local.split_once(':')?;
            if u16::from_str_radix(local_port, 16).ok()? != port {
                return None;
            }
            let words: Vec<u32> = (0..address.len() / 8)
                .map(|i| u32::from_str_radix(&address[i * 8..i * 8 + 8], 16))
                .collect::<Result<_, _>>()
                .ok()?;
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            match bytes.len() {
                4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?))),
                16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?))),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_read_from_proc_net() {
        let tcp =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 1 1
   1: 67666564:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 2 1
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: 0100007F:1538 0100007F:9C40 01 00000000:00000000 00:00000000 00000000   104        0 4 1
";
        let found = parse_listening(tcp, 5432);
        assert_eq!(found, vec!["127.0.0.1".parse::<IpAddr>().unwrap(), "100.101.102.103".parse().unwrap()]);
        let tcp6 = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:1538 00000000000000000000000000000000:0000 0A 0
   1: 00000000000000000000000000000000:1538 00000000000000000000000000000000:0000 0A 0
";
        assert_eq!(
            parse_listening(tcp6, 5432),
            vec!["::1".parse::<IpAddr>().unwrap(), "::".parse().unwrap()]
        );
    }
}
