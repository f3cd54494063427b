//! Who is calling, as the per-client budgets count it: the client's IP
//! (the socket peer, or `X-Forwarded-For` behind a trusted proxy) and the
//! network it shares with its neighbours.
//!
//! Depends on nothing of ours; ingest (rate limits), `auth` (the bcrypt
//! budget and its fairness), the poll routes and the agent transports'
//! pre-authentication budget all use it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

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

fn mask_v6(ip: Ipv6Addr, bits: u32) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(ip) & !(u128::MAX >> bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(host(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(host(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    }
}
