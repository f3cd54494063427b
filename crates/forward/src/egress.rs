//! The SSRF guard of [`EgressPolicy::PublicOnly`] (DESIGN §7): which
//! addresses count as public, and the DNS resolver that hands the connector
//! only those. The check runs on the resolved addresses the connector then
//! dials, so a name that re-resolves to a private address between a check and
//! the connect (DNS rebinding) never reaches it. IP-literal URLs never reach a
//! resolver; `Forwarder::send` checks them with [`is_public`] before sending.
//!
//! [`EgressPolicy::PublicOnly`]: crate::EgressPolicy::PublicOnly

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The leading words of the error of a refused destination. [`crate::verdict`]
/// treats an error starting with them as permanent, so keep them stable.
pub const NOT_PUBLIC: &str = "destination address is not public";

/// IPv4 ranges that are not globally reachable unicast, as (network, prefix).
const V4_BLOCKED: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network", incl. unspecified
    (0x0A00_0000, 8),  // 10/8 RFC 1918
    (0x6440_0000, 10), // 100.64/10 CGNAT (incl. Alibaba's metadata 100.100.100.200)
    (0x7F00_0000, 8),  // 127/8 loopback
    (0xA9FE_0000, 16), // 169.254/16 link-local (incl. cloud metadata 169.254.169.254)
    (0xAC10_0000, 12), // 172.16/12 RFC 1918
    (0xC000_0000, 24), // 192.0.0/24 IETF protocol assignments
    (0xC000_0200, 24), // 192.0.2/24 TEST-NET-1
    (0xC058_6300, 24), // 192.88.99/24 6to4 relay anycast (deprecated)
    (0xC0A8_0000, 16), // 192.168/16 RFC 1918
    (0xC612_0000, 15), // 198.18/15 benchmarking
    (0xC633_6400, 24), // 198.51.100/24 TEST-NET-2
    (0xCB00_7100, 24), // 203.0.113/24 TEST-NET-3
    (0xE000_0000, 4),  // 224/4 multicast
    (0xF000_0000, 4),  // 240/4 reserved, incl. broadcast 255.255.255.255
];

/// Whether `ip` is a globally reachable unicast address: the only kind a
/// `PublicOnly` forwarder connects to. IPv6 forms that embed an IPv4 address
/// (mapped, compatible, NAT64, 6to4) are judged by the embedded address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !V4_BLOCKED
        .iter()
        .any(|&(net, prefix)| bits >> (32 - prefix) == net >> (32 - prefix))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let in_net = |net: u128, prefix: u32| bits >> (128 - prefix) == net >> (128 - prefix);
    let embedded_v4 = || Ipv4Addr::from((bits & 0xFFFF_FFFF) as u32);
    // ::/96 (IPv4-compatible, incl. :: and ::1) and ::ffff:0:0/96 (mapped) and
    // 64:ff9b::/96 (NAT64) all carry an IPv4 address in their low 32 bits;
    // `::` and `::1` embed 0.0.0.0 and 0.0.0.1, both in 0.0.0.0/8.
    if in_net(0, 96) || in_net(0xFFFF << 32, 96) || in_net(0x0064_FF9B << 96, 96) {
        return is_public_v4(embedded_v4());
    }
    if in_net(0x2002 << 112, 16) {
        // 6to4: the IPv4 address sits in bits 16..48.
        return is_public_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    const BLOCKED: &[(u128, u32)] = &[
        (0x0064_FF9B_0001 << 80, 48), // 64:ff9b:1::/48 local-use NAT64
        (0x0100 << 112, 64),          // 100::/64 discard-only
        (0x2001 << 112, 32),          // 2001::/32 Teredo (tunnels to any IPv4)
        (0x2001_0002 << 96, 48),      // 2001:2::/48 benchmarking
        (0x2001_0DB8 << 96, 32),      // 2001:db8::/32 documentation
        (0x3FFF << 112, 20),          // 3fff::/20 documentation (RFC 9637)
        (0xFC00 << 112, 7),           // fc00::/7 unique local (incl. AWS fd00:ec2::254)
        (0xFE80 << 112, 10),          // fe80::/10 link-local
        (0xFEC0 << 112, 10),          // fec0::/10 site-local (deprecated)
        (0xFF00 << 112, 8),           // ff00::/8 multicast
    ];
    !BLOCKED.iter().any(|&(net, prefix)| in_net(net, prefix))
}

/// A name that resolved, but only to addresses [`is_public`] refuses.
#[derive(Debug, thiserror::Error)]
#[error("{NOT_PUBLIC}: {host} resolves only to non-public addresses")]
pub(crate) struct NotPublic {
    pub(crate) host: String,
}

/// Resolves with tokio (the system resolver, on the blocking pool) and keeps
/// only public addresses; a name left with none is an error the connector
/// reports, so nothing is dialled. Mixed answers are filtered, not refused:
/// what is dialled is always public.
#[derive(Debug, Default)]
pub(crate) struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the connector sets the URL's port on every address.
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = resolved.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(NotPublic { host }) as _);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifier_table() {
        let cases: &[(&str, bool)] = &[
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("10.0.0.1", false),
            ("10.255.255.255", false),
            ("100.64.0.1", false),
            ("100.100.100.200", false),
            ("100.127.255.255", false),
            ("100.128.0.1", true),
            ("100.63.255.255", true),
            ("127.0.0.1", false),
            ("127.1.2.3", false),
            ("169.254.169.254", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("172.32.0.1", true),
            ("172.15.255.255", true),
            ("192.0.0.170", false),
            ("192.0.2.1", false),
            ("192.168.1.1", false),
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            ("198.20.0.1", true),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            ("1.1.1.1", true),
            ("8.8.8.8", true),
            ("93.184.216.34", true),
            ("::", false),
            ("::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:8.8.8.8", true),
            ("::127.0.0.1", false),
            ("::8.8.8.8", true),
            ("64:ff9b::10.0.0.1", false),
            ("64:ff9b::8.8.8.8", true),
            ("64:ff9b:1::1", false),
            ("2002:7f00:1::", false),
            ("2002:0808:0808::1", true),
            ("100::1", false),
            ("2001::1", false),
            ("2001:2::1", false),
            ("2001:db8::1", false),
            ("3fff::1", false),
            ("fc00::1", false),
            ("fd00:ec2::254", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("2606:4700:4700::1111", true),
            ("2a00:1450:4001:80b::200e", true),
        ];
        for &(addr, public) in cases {
            let ip: IpAddr = addr.parse().expect("table addresses are valid");
            assert_eq!(is_public(ip), public, "{addr}");
        }
    }

    #[tokio::test]
    async fn resolver_refuses_a_name_that_resolves_to_loopback() {
        let name: Name = "localhost".parse().expect("a valid name");
        let err = PublicResolver.resolve(name).await.err().expect("refused");
        assert!(err.to_string().starts_with(NOT_PUBLIC), "{err}");
    }
}
