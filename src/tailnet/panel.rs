//! The admin panel as the tailnet sees it: the port it serves on and the app capability the
//! tailnet policy grants. The renderer writes both into the policy and the firewall; the panel
//! listens on the one and reads the other from whois answers.

/// The panel's port when `--listen` gives none (PostgreSQL's 5432, one row up).
pub(crate) const DEFAULT_PORT: u16 = 8432;

/// postgres_exporter's port (its default), which the policy opens to the monitoring node.
pub(crate) const EXPORTER_PORT: u16 = 9187;

/// The capability the tailnet policy grants (`"app": {"<this>": [{"role": "editor"}]}`).
/// `.internal` is reserved for private use, so no one else's capability can share the name.
pub(crate) const DEFAULT_CAPABILITY: &str = "ai-cabinet.internal/cap/cabinet-db";

/// An app capability name as Tailscale writes them: `<domain>/cap/<name>`, lower-case letters,
/// digits, `.`, `-`, `_` (it is written into the policy file and looked up in whois answers).
pub(crate) fn check_capability(name: &str) -> Result<(), String> {
    let ok_part = |part: &str, extra: &str| {
        !part.is_empty()
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c) || extra.contains(c)
            })
    };
    match name.split_once("/cap/") {
        Some((domain, cap)) if ok_part(domain, "") && domain.contains('.') && ok_part(cap, "_") => Ok(()),
        _ => Err(format!(
            "the capability {name:?} is not of the form <domain>/cap/<name> (lower-case letters, digits, . - _), e.g. {DEFAULT_CAPABILITY}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_are_checked() {
        assert_eq!(check_capability(DEFAULT_CAPABILITY), Ok(()));
        assert_eq!(check_capability("example.com/cap/cabinet_db"), Ok(()));
        for bad in [
            "cabinet-db",
            "example.com/cap/",
            "/cap/x",
            "Example.com/cap/x",
            "ex\"ample.com/cap/x",
            "example.com/cap/x\n",
            "localhost/cap/x",
        ] {
            assert!(check_capability(bad).is_err(), "{bad:?}");
        }
    }
}
