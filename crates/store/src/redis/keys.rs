//! Key naming of the Redis store: every key of a tenant starts with
//! `{ns}:{<tenant>}:` (the tenant in a hash tag, so Redis Cluster keeps a
//! tenant on one shard and a Lua script sees one slot), and the few global
//! keys start with `{ns}:` alone. The layout table is in `mod.rs`.
//!
//! A delivery is named by a *member* string, `<event>|<output>|<group>`
//! with the group as `-` (none) or `=<name>`: event first, so sorted sets of
//! members with equal scores list deliveries in event order, and the group
//! last, so a group name may hold any character.

use model::{EventId, OutputId, TenantId, TunnelId};

use crate::{DeliveryKey, Error, Result};

/// Names the keys of one namespace.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    ns: String,
}

impl Keys {
    pub(super) fn new(ns: &str) -> Self {
        Self { ns: ns.to_owned() }
    }

    /// The prefix of every key of `tenant` (`KEYS[1]` of tenant scripts).
    pub(super) fn tenant(&self, tenant: &TenantId) -> String {
        format!("{}:{{{}}}:", self.ns, tenant.as_str())
    }

    /// A SCAN pattern matching every key of `tenant`.
    pub(super) fn tenant_pattern(&self, tenant: &TenantId) -> String {
        format!("{}*", glob_escape(&self.tenant(tenant)))
    }

    /// Set of every tenant id (`list_tenants`, retention).
    pub(super) fn tenants(&self) -> String {
        format!("{}:tenants", self.ns)
    }

    /// Input id → tenant id: ingest knows only the input id.
    pub(super) fn input_owner(&self, id: &str) -> String {
        format!("{}:input:{id}", self.ns)
    }

    /// Tunnel name → `<tenant> <id>`: names are unique on the server.
    pub(super) fn tunnel_names(&self) -> String {
        format!("{}:tname", self.ns)
    }

    /// Sorted set of the node URLs holding agents of a tunnel, scored by
    /// when each hold lapses (tunnel ids are unique on the server).
    pub(super) fn tunnel_nodes(&self, tunnel: &TunnelId) -> String {
        format!("{}:tat:{}", self.ns, tunnel.as_str())
    }

    /// Channel capability digest → `<tenant> <id>` (public streams know
    /// only the capability).
    pub(super) fn channel_capabilities(&self) -> String {
        format!("{}:chcap", self.ns)
    }

    /// Token key → tenant id: a bearer token names its key first.
    pub(super) fn token_owner(&self, key: &str) -> String {
        format!("{}:token:{key}", self.ns)
    }

    /// Set of `<tenant>|<key>` of admin-scope tokens (bootstrap check).
    pub(super) fn admins(&self) -> String {
        format!("{}:admins", self.ns)
    }

    /// Set of tenants that ever had a public output's delivery queued: the
    /// server's own delivery worker looks at these tenants' `pq`.
    pub(super) fn public_tenants(&self) -> String {
        format!("{}:pubt", self.ns)
    }

    /// A node's liveness key (expires unless refreshed).
    pub(super) fn node(&self, node: &str) -> String {
        format!("{}:node:{node}", self.ns)
    }

    /// Set of node ids that opened the store and have not been swept.
    pub(super) fn nodes(&self) -> String {
        format!("{}:nodes", self.ns)
    }

    /// Set of tenants in which a node may hold claims (what the sweeper
    /// visits when the node is gone).
    pub(super) fn node_tenants(&self, node: &str) -> String {
        format!("{}:nt:{node}", self.ns)
    }

    /// A value sealed under the first node's key: nodes whose keyring
    /// cannot open it refuse to start (`cluster`).
    pub(super) fn canary(&self) -> String {
        format!("{}:canary", self.ns)
    }

    /// Hash of node id → the key id it seals with, written when a node
    /// opens the store (`hookrelay keys` checks the running nodes).
    pub(super) fn node_keys(&self) -> String {
        format!("{}:nodekeys", self.ns)
    }

    /// The pub/sub channel of commits and signals.
    pub(super) fn bus(&self) -> String {
        format!("{}:bus", self.ns)
    }

    /// A rate-limit counter. Ingest keys (`ingest:<tenant>:...`) live under
    /// their tenant's hash tag; others (`poll:<ip>`) are global.
    pub(super) fn rate(&self, key: &str) -> String {
        let mut parts = key.splitn(3, ':');
        match (parts.next(), parts.next().map(str::parse::<TenantId>)) {
            (Some("ingest"), Some(Ok(tenant))) => format!("{}rl:{key}", self.tenant(&tenant)),
            _ => format!("{}:rl:{key}", self.ns),
        }
    }
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The member string of a delivery (see the module doc).
pub(super) fn member(event: &EventId, output: &OutputId, group: Option<&str>) -> String {
    match group {
        Some(g) => format!("{event}|{}|={g}", output.as_str()),
        None => format!("{event}|{}|-", output.as_str()),
    }
}

/// A group as it appears in members and queue names.
pub(super) fn group_tag(group: Option<&str>) -> String {
    group.map_or_else(|| "-".to_owned(), |g| format!("={g}"))
}

/// The delivery a member string names, in `tenant`.
pub(super) fn parse_member(tenant: &TenantId, m: &str) -> Result<DeliveryKey> {
    let bad = || Error::Corrupt(format!("delivery member {m:?}"));
    let mut parts = m.splitn(3, '|');
    let (Some(event), Some(output), Some(group)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let group = match group {
        "-" => None,
        g => Some(g.strip_prefix('=').ok_or_else(bad)?.to_owned()),
    };
    Ok(DeliveryKey {
        tenant: tenant.clone(),
        event: event.parse().map_err(|_| bad())?,
        output: output.parse().map_err(|_| bad())?,
        group,
    })
}

/// The lex bound of `ZRANGEBYLEX` for "events from `ms` on" (inclusive).
pub(super) fn floor_bound(ms: i64) -> String {
    format!("[{}", EventId::floor_at(ms.clamp(0, MAX_ULID_MS)))
}

/// The largest time a ULID can carry (48 bits of ms).
pub(super) const MAX_ULID_MS: i64 = (1 << 48) - 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_with_any_group_name() {
        let tenant: TenantId = "acme".parse().unwrap();
        let event = EventId::floor_at(1_700_000_000_000);
        let output = OutputId::generate();
        for group in [None, Some("blue"), Some("a|b=c")] {
            let m = member(&event, &output, group);
            let key = parse_member(&tenant, &m).unwrap();
            assert_eq!(
                (key.event, key.output, key.group.as_deref()),
                (event, output.clone(), group)
            );
        }
    }

    #[test]
    fn tenant_keys_carry_a_hash_tag_and_rate_keys_find_their_tenant() {
        let keys = Keys::new("hr");
        let tenant: TenantId = "acme".parse().unwrap();
        assert_eq!(keys.tenant(&tenant), "hr:{acme}:");
        assert_eq!(
            keys.rate("ingest:acme:x:1.2.3.4"),
            "hr:{acme}:rl:ingest:acme:x:1.2.3.4"
        );
        assert_eq!(keys.rate("poll:1.2.3.4"), "hr:rl:poll:1.2.3.4");
    }
}
