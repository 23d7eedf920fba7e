//! Who is asking: the peer's tailnet identity (LocalAPI `whois`) and the role the tailnet
//! policy grants it through the panel's app capability. Deny by default: an unknown peer, a
//! tagged device, a login without a grant, or a grant naming no known role is refused. Headers
//! a client sends (`Tailscale-User-Login` …) are never read.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, SocketAddr},
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    history::Actor,
    tailnet::localapi::{LocalApi, LocalApiError, WhoIs},
};

/// How long a whois answer (identity or refusal) is reused for one peer address: long enough
/// that a page and its assets cost one LocalAPI call, short enough that a revoked grant or a
/// re-tagged device stops working within seconds.
pub(crate) const WHOIS_CACHE_TTL: Duration = Duration::from_secs(10);

/// What a signed-in person may do; each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// Reads everything.
    Viewer,
    /// Also creates, changes, deletes, reverts and restores sites.
    Editor,
    /// Also forgets users and imports files.
    Admin,
}

impl Role {
    pub(crate) fn parse(name: &str) -> Option<Role> {
        match name {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Identity {
    /// The tailnet login (`alice@example.com`): what the change history records.
    pub(crate) login: String,
    pub(crate) display_name: String,
    pub(crate) role: Role,
}

impl Identity {
    /// The history's actor for this person's writes.
    pub(crate) fn actor(&self) -> Actor {
        Actor::new(&self.login).expect("logins are checked to be valid actors when resolved")
    }

    pub(crate) fn may(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// Why a peer is not let in. Shown to that peer: says what to ask for, reveals nothing else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("this address ({0}) is not a known tailnet device")]
    UnknownPeer(IpAddr),
    #[error(
        "tagged devices ({0}) have no person behind them and may not use the admin panel; open it from your own device"
    )]
    Tagged(String),
    #[error(
        "{login} has no role for the admin panel: ask a tailnet admin to grant {capability} with {{\"role\": \"viewer\"|\"editor\"|\"admin\"}}"
    )]
    NoGrant { login: String, capability: String },
    #[error("the tailnet login {0:?} cannot be recorded as an actor (control or invisible characters)")]
    BadLogin(String),
    #[error(
        "this device may not read the metrics: ask a tailnet admin to grant {capability} with {{\"role\": \"metrics\"}} to the scraper (e.g. tag:monitoring)"
    )]
    NoMetricsGrant { capability: String },
}

/// The grant that admits a scraper to `/metrics` (and nothing else: no page accepts it).
pub(crate) const METRICS_GRANT: &str = "metrics";

/// Where identities come from.
pub(crate) enum IdentitySource {
    /// tailscaled's whois for the connection's peer address.
    Tailnet { api: LocalApi, capability: String, cache: Mutex<HashMap<IpAddr, Cached>> },
    /// One configured identity for every request: development and tests on loopback only
    /// (`serve --dev-identity`), never derived from anything the client sends.
    Development(Identity),
}

/// What one whois answer settles: the person (or why not), and whether the peer may scrape.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    person: Result<Identity, Refusal>,
    scraper: Result<(), Refusal>,
}

type Cached = (Instant, Answer);

impl fmt::Debug for IdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentitySource::Tailnet { api, capability, .. } => f
                .debug_struct("Tailnet")
                .field("socket", &api.socket)
                .field("capability", capability)
                .finish_non_exhaustive(),
            IdentitySource::Development(identity) => f.debug_tuple("Development").field(identity).finish(),
        }
    }
}

impl IdentitySource {
    pub(crate) fn tailnet(api: LocalApi, capability: impl Into<String>) -> IdentitySource {
        IdentitySource::Tailnet { api, capability: capability.into(), cache: Mutex::new(HashMap::new()) }
    }

    /// The identity behind a connection from `peer`; `Err(Ok(refusal))` when it may not enter,
    /// `Err(Err(e))` when tailscaled could not be asked.
    pub(crate) async fn resolve(&self, peer: SocketAddr) -> Result<Identity, Result<Refusal, LocalApiError>> {
        match self {
            IdentitySource::Development(identity) => Ok(identity.clone()),
            IdentitySource::Tailnet { api, capability, cache } => {
                answer(api, capability, cache, peer).await.map_err(Err)?.person.map_err(Ok)
            }
        }
    }

    /// Whether the peer at `peer` may read `/metrics`: the tailnet policy grants it the
    /// `metrics` role (tagged devices may hold it); with a development identity, loopback is
    /// all there is.
    pub(crate) async fn resolve_scraper(
        &self,
        peer: SocketAddr,
    ) -> Result<(), Result<Refusal, LocalApiError>> {
        match self {
            IdentitySource::Development(_) => Ok(()),
            IdentitySource::Tailnet { api, capability, cache } => {
                answer(api, capability, cache, peer).await.map_err(Err)?.scraper.map_err(Ok)
            }
        }
    }
}

/// What whois says of `peer`, asked at most once per `WHOIS_CACHE_TTL`.
async fn answer(
    api: &LocalApi,
    capability: &str,
    cache: &Mutex<HashMap<IpAddr, Cached>>,
    peer: SocketAddr,
) -> Result<Answer, LocalApiError> {
    {
        let ip = peer.ip().to_canonical();
        if let Some((at, answer)) = lock(cache).get(&ip)
            && at.elapsed() < WHOIS_CACHE_TTL
        {
            return Ok(answer.clone());
        }
        let answer = match api.whois(peer).await? {
            None => Answer { person: Err(Refusal::UnknownPeer(ip)), scraper: Err(Refusal::UnknownPeer(ip)) },
            Some(whois) => Answer {
                person: identity_of(&whois, capability),
                scraper: if granted(&whois, capability).any(|role| role == METRICS_GRANT) {
                    Ok(())
                } else {
                    Err(Refusal::NoMetricsGrant { capability: capability.to_owned() })
                },
            },
        };
        let mut cache = lock(cache);
        // Entries of departed peers are dropped as the map grows, not kept forever.
        if cache.len() > 1024 {
            cache.retain(|_, (at, _)| at.elapsed() < WHOIS_CACHE_TTL);
        }
        cache.insert(ip, (Instant::now(), answer.clone()));
        Ok(answer)
    }
}

/// The role names the policy's grants of `capability` carry (`{"role": "…"}` each).
fn granted<'a>(whois: &'a WhoIs, capability: &str) -> impl Iterator<Item = &'a str> {
    whois
        .cap_map
        .as_ref()
        .and_then(|caps| caps.get(capability))
        .into_iter()
        .flatten()
        .filter_map(|grant| grant.get("role")?.as_str())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a map that is still valid: keep using it.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The identity a whois answer describes, with the highest role its grants name.
pub(crate) fn identity_of(whois: &WhoIs, capability: &str) -> Result<Identity, Refusal> {
    let tags = whois.node.as_ref().and_then(|n| n.tags.clone()).unwrap_or_default();
    if !tags.is_empty() {
        return Err(Refusal::Tagged(crate::models::characters::peer_excerpt(&tags.join(", "))));
    }
    let profile = whois.user_profile.clone().unwrap_or_default();
    let login = profile.login_name.unwrap_or_default();
    // A node without tags still reports this placeholder when its owner is a tag.
    if login.is_empty() || login == "tagged-devices" {
        return Err(Refusal::Tagged("tagged-devices".to_owned()));
    }
    if Actor::new(&login).is_err() {
        return Err(Refusal::BadLogin(login));
    }
    let role = granted(whois, capability).filter_map(Role::parse).max();
    let Some(role) = role else {
        return Err(Refusal::NoGrant { login, capability: capability.to_owned() });
    };
    let display_name =
        profile.display_name.filter(|n| Actor::new(n).is_ok()).unwrap_or_else(|| login.clone());
    Ok(Identity { login, display_name, role })
}

/// `LOGIN=ROLE`, as `serve --dev-identity` takes it.
pub(crate) fn parse_dev_identity(text: &str) -> Result<Identity, String> {
    let (login, role) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not LOGIN=ROLE, e.g. dev@example.com=admin"))?;
    let role =
        Role::parse(role).ok_or_else(|| format!("{role:?} is not a role: use viewer, editor or admin"))?;
    Actor::new(login).map_err(|e| format!("{login:?} {}", e.reason))?;
    Ok(Identity { login: login.to_owned(), display_name: login.to_owned(), role })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whois(json: &str) -> WhoIs {
        serde_json::from_str(json).unwrap()
    }

    const CAP: &str = crate::tailnet::panel::DEFAULT_CAPABILITY;

    #[test]
    fn the_highest_granted_role_wins_and_unknown_roles_grant_nothing() {
        let w = whois(&format!(
            r#"{{"Node":{{"Tags":[]}},"UserProfile":{{"LoginName":"alice@example.com","DisplayName":"Alice"}},
               "CapMap":{{"{CAP}":[{{"role":"viewer"}},{{"role":"root"}},{{"role":"editor"}},"admin",{{"role":["admin"]}}]}}}}"#
        ));
        let identity = identity_of(&w, CAP).unwrap();
        assert_eq!((identity.login.as_str(), identity.role), ("alice@example.com", Role::Editor));

        let only_unknown = whois(&format!(
            r#"{{"UserProfile":{{"LoginName":"bob@example.com"}},"CapMap":{{"{CAP}":[{{"role":"superuser"}}]}}}}"#
        ));
        assert!(matches!(identity_of(&only_unknown, CAP), Err(Refusal::NoGrant { .. })));
        let other_cap = whois(
            r#"{"UserProfile":{"LoginName":"bob@example.com"},"CapMap":{"example.com/cap/other":[{"role":"admin"}]}}"#,
        );
        assert!(matches!(identity_of(&other_cap, CAP), Err(Refusal::NoGrant { .. })));
    }

    #[test]
    fn tagged_devices_and_bad_logins_are_refused() {
        let tagged = whois(&format!(
            r#"{{"Node":{{"Tags":["tag:n8n"]}},"UserProfile":{{"LoginName":"tagged-devices"}},"CapMap":{{"{CAP}":[{{"role":"admin"}}]}}}}"#
        ));
        assert_eq!(identity_of(&tagged, CAP), Err(Refusal::Tagged("tag:n8n".into())));
        let placeholder = whois(r#"{"UserProfile":{"LoginName":"tagged-devices"}}"#);
        assert!(matches!(identity_of(&placeholder, CAP), Err(Refusal::Tagged(_))));
        let control = whois(&format!(
            r#"{{"UserProfile":{{"LoginName":"eve\u001b[2J@example.com"}},"CapMap":{{"{CAP}":[{{"role":"admin"}}]}}}}"#
        ));
        assert!(matches!(identity_of(&control, CAP), Err(Refusal::BadLogin(_))));
    }

    #[test]
    fn dev_identities_parse_strictly() {
        assert_eq!(parse_dev_identity("dev@example.com=admin").unwrap().role, Role::Admin);
        assert!(parse_dev_identity("dev@example.com").is_err());
        assert!(parse_dev_identity("dev@example.com=root").is_err());
        assert!(parse_dev_identity("=viewer").is_err());
    }
}
