//! tailscaled's LocalAPI: HTTP over a unix socket. Requests carry `Host:
//! local-tailscaled.sock` and no `Origin`/`Referer` (tailscaled answers 403 otherwise).
//! Field names are Go's; the API is not promised stable, so every field is optional and
//! unknown ones are ignored.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::http_client::Failure;

/// Where tailscaled listens on Linux (`/run/tailscale/…` is the same file under systemd).
pub(crate) const DEFAULT_SOCKET: &str = "/var/run/tailscale/tailscaled.sock";
const HOST_HEADER: &str = "local-tailscaled.sock";
const REQUEST_TIMEOUT_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub(crate) enum LocalApiError {
    #[error(
        "tailscaled is not running on this host (no socket at {}); install Tailscale and run `tailscale up`, or pass --socket",
        .0.display()
    )]
    SocketMissing(PathBuf),
    #[error("cannot talk to tailscaled at {}", .path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("tailscaled did not answer {endpoint} within {REQUEST_TIMEOUT_SECS} s")]
    Timeout { endpoint: String },
    #[error("tailscaled answered {endpoint} with HTTP {status}: {body}")]
    Status { endpoint: String, status: u16, body: String },
    #[error("tailscaled's answer to {endpoint} is not valid: {reason}")]
    Malformed { endpoint: String, reason: String },
}

/// `GET /localapi/v0/status`, the parts we use.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Status {
    pub(crate) backend_state: Option<String>,
    #[serde(rename = "TailscaleIPs")]
    pub(crate) tailscale_ips: Option<Vec<String>>,
    #[serde(rename = "Self")]
    pub(crate) self_node: Option<Node>,
    #[serde(rename = "MagicDNSSuffix")]
    pub(crate) magic_dns_suffix: Option<String>,
    pub(crate) current_tailnet: Option<Tailnet>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Node {
    pub(crate) host_name: Option<String>,
    #[serde(rename = "DNSName")]
    pub(crate) dns_name: Option<String>,
    #[serde(rename = "TailscaleIPs")]
    pub(crate) tailscale_ips: Option<Vec<String>>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) online: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Tailnet {
    pub(crate) name: Option<String>,
    #[serde(rename = "MagicDNSSuffix")]
    pub(crate) magic_dns_suffix: Option<String>,
    #[serde(rename = "MagicDNSEnabled")]
    pub(crate) magic_dns_enabled: Option<bool>,
}

/// `GET /localapi/v0/whois?addr=IP:PORT`, the parts we use: who is behind a peer address.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct WhoIs {
    pub(crate) node: Option<Node>,
    pub(crate) user_profile: Option<UserProfile>,
    /// The app capabilities the tailnet policy grants this peer towards us, by name.
    pub(crate) cap_map: Option<BTreeMap<String, Vec<serde_json::Value>>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct UserProfile {
    pub(crate) login_name: Option<String>,
    pub(crate) display_name: Option<String>,
}

/// `GET /localapi/v0/serve-config`, the parts we use.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct ServeConfig {
    #[serde(rename = "TCP")]
    pub(crate) tcp: Option<BTreeMap<String, serde_json::Value>>,
    pub(crate) web: Option<BTreeMap<String, serde_json::Value>>,
    pub(crate) allow_funnel: Option<BTreeMap<String, bool>>,
}

impl Status {
    pub(crate) fn is_running(&self) -> bool {
        self.backend_state.as_deref() == Some("Running")
    }

    /// This node's Tailscale addresses (from `Self`, else the top level).
    pub(crate) fn ips(&self) -> Vec<String> {
        self.self_node
            .as_ref()
            .and_then(|n| n.tailscale_ips.clone())
            .or_else(|| self.tailscale_ips.clone())
            .unwrap_or_default()
    }

    /// The MagicDNS name without its trailing dot.
    pub(crate) fn dns_name(&self) -> Option<String> {
        let name = self.self_node.as_ref()?.dns_name.as_deref()?.trim_end_matches('.');
        (!name.is_empty()).then(|| name.to_owned())
    }

    pub(crate) fn tags(&self) -> Vec<String> {
        self.self_node.as_ref().and_then(|n| n.tags.clone()).unwrap_or_default()
    }
}

impl ServeConfig {
    /// Host:port entries published to the internet with Funnel.
    pub(crate) fn funnels(&self) -> Vec<String> {
        self.allow_funnel.iter().flatten().filter(|(_, on)| **on).map(|(k, _)| k.clone()).collect()
    }

    /// TCP ports tailscale serve forwards.
    pub(crate) fn served_tcp_ports(&self) -> Vec<String> {
        self.tcp.iter().flatten().map(|(port, _)| port.clone()).collect()
    }
}

/// A LocalAPI client for one socket.
#[derive(Debug, Clone)]
pub(crate) struct LocalApi {
    pub(crate) socket: PathBuf,
}

impl LocalApi {
    pub(crate) fn new(socket: impl Into<PathBuf>) -> Self {
        LocalApi { socket: socket.into() }
    }

    pub(crate) async fn status(&self) -> Result<Status, LocalApiError> {
        self.get_json("status?peers=false").await
    }

    pub(crate) async fn serve_config(&self) -> Result<ServeConfig, LocalApiError> {
        self.get_json("serve-config").await
    }

    /// Who is behind a peer's address and port; `None` when tailscaled knows no such peer
    /// (it answers 404 "no match").
    pub(crate) async fn whois(&self, peer: std::net::SocketAddr) -> Result<Option<WhoIs>, LocalApiError> {
        let peer = std::net::SocketAddr::new(peer.ip().to_canonical(), peer.port());
        match self.get_json(&format!("whois?addr={peer}")).await {
            Ok(whois) => Ok(Some(whois)),
            Err(LocalApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned + Default>(
        &self,
        endpoint: &str,
    ) -> Result<T, LocalApiError> {
        let body = self.get(endpoint).await?;
        if body.trim().is_empty() || body.trim() == "null" {
            return Ok(T::default());
        }
        serde_json::from_str(&body)
            .map_err(|e| LocalApiError::Malformed { endpoint: endpoint.to_owned(), reason: e.to_string() })
    }

    /// The body of `GET /localapi/v0/<endpoint>`.
    pub(crate) async fn get(&self, endpoint: &str) -> Result<String, LocalApiError> {
        if !Path::new(&self.socket).exists() {
            return Err(LocalApiError::SocketMissing(self.socket.clone()));
        }
        let request = async {
            let stream = tokio::net::UnixStream::connect(&self.socket)
                .await
                .map_err(|source| LocalApiError::Connect { path: self.socket.clone(), source })?;
            let request = hyper::Request::get(format!("/localapi/v0/{endpoint}"))
                .header(hyper::header::HOST, HOST_HEADER)
                .header(hyper::header::ACCEPT, "application/json");
            crate::http_client::exchange(stream, request, String::new()).await.map_err(
                |failure| match failure {
                    Failure::Connection(source) => {
                        LocalApiError::Connect { path: self.socket.clone(), source }
                    }
                    Failure::Request(_) => LocalApiError::Connect {
                        path: self.socket.clone(),
                        source: std::io::Error::other(failure),
                    },
                    Failure::NotHttp(reason) => {
                        LocalApiError::Malformed { endpoint: endpoint.to_owned(), reason }
                    }
                    Failure::TooLong => LocalApiError::Malformed {
                        endpoint: endpoint.to_owned(),
                        reason: failure.to_string(),
                    },
                },
            )
        };
        let (status, body) = tokio::time::timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS), request)
            .await
            .map_err(|_| LocalApiError::Timeout { endpoint: endpoint.to_owned() })??;
        if status != 200 {
            return Err(LocalApiError::Status {
                endpoint: endpoint.to_owned(),
                status,
                body: crate::models::characters::peer_excerpt(&body),
            });
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_missing_fields_are_tolerated() {
        let status: Status = serde_json::from_str(
            r#"{"BackendState":"Running","Version":"1.99","Self":{"DNSName":"db.tail1.ts.net."}}"#,
        )
        .unwrap();
        assert!(status.is_running());
        assert_eq!(status.dns_name().as_deref(), Some("db.tail1.ts.net"));
        assert!(status.ips().is_empty());
    }
}
