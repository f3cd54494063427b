//! Who is calling, as the per-client budgets count it: the client's IP
//! (the socket peer, or `X-Forwarded-For` behind a trusted proxy) and the
//! network it shares with its neighbours.
//!
//! Depends on nothing of ours; ingest (rate limits), `auth` (the bcrypt
//! budget and its fairness), the poll routes and the agent transports'
//! pre-authentication budget all use it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The client's address: the socket peer, or, behind a trusted proxy, the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
pub(crate) fn client_ip(trusted: &[IpAddr], peer: SocketAddr, headers: &http::HeaderMap) -> IpAddr {
    let peer_ip = peer.ip();
    if !trusted.contains(&peer_ip) {
        return peer_ip;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer_ip)
}

/// What a per-IP budget counts: an IPv4 address (an IPv4-mapped IPv6 one
/// as its IPv4), or the /64 of an IPv6 address, since a host is usually
/// given a whole /64 and may use any address in it.
pub(crate) fn host(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(mask_v6(v6, 64)),
        },
        v4 => v4,
    }
}

/// What a per-network budget counts: the /24 of an IPv4 address (what one
/// hosting customer usually holds), the /48 of an IPv6 one (one site).
pub(crate) fn prefix(ip: IpAddr) -> IpAddr {
    match host(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => IpAddr::V6(mask_v6(v6, 48)),
    }
}

fn mask_v6(ip: Ipv6Addr, bits: u32) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(ip) & !(u128::MAX >> bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_prefixes() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(host(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(host(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(prefix(ip("127.0.0.77")), ip("127.0.0.0"));
        assert_eq!(prefix(ip("::ffff:127.1.0.1")), ip("127.1.0.0"));
        assert_eq!(prefix(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1::"));
    }
}
