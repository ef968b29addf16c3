//! Which peers the relay may talk to. A TURN server on the internet must not become a way into
//! the network it sits in: no loopback, private (RFC 1918), shared/CGNAT (100.64/10),
//! link-local, multicast, broadcast, unspecified or `0/8`, nor their IPv6 kin (loopback, ULA
//! `fc00::/7`, link-local `fe80::/10`, multicast), unless a range is allowed explicitly.

use std::net::IpAddr;
use std::str::FromStr;

/// An address range, `ADDRESS/PREFIX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not ADDRESS/PREFIX, e.g. 203.0.113.0/24"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|e| format!("{text:?}: {addr:?} is not an IP address ({e})"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{text:?}: the prefix must be 0..={max}"))?;
        Ok(Self { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PeerFilter {
    allowed: Vec<Cidr>,
}

impl PeerFilter {
    pub fn new(allowed: Vec<Cidr>) -> Self {
        Self { allowed }
    }

    /// Whether the relay may send to or take from `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allowed.iter().any(|c| c.contains(ip)) || !is_internal(ip)
    }
}

fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn local_and_private_peers_are_refused_public_ones_relayed() {
        let filter = PeerFilter::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.1.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::",
            "::ffff:10.0.0.1",
        ] {
            assert!(!filter.allows(ip(refused)), "{refused}");
        }
        for relayed in [
            "203.0.113.7",
            "198.51.100.2",
            "8.8.8.8",
            "2001:db8::1",
            "100.128.0.1",
        ] {
            assert!(filter.allows(ip(relayed)), "{relayed}");
        }
    }

    #[test]
    fn an_allowed_range_opens_only_itself() {
        let filter = PeerFilter::new(vec!["192.168.77.0/24".parse().unwrap()]);
        assert!(filter.allows(ip("192.168.77.2")));
        assert!(!filter.allows(ip("192.168.78.2")));
        assert!(!filter.allows(ip("127.0.0.1")));
        let all_v6: Cidr = "::/0".parse().unwrap();
        assert!(all_v6.contains(ip("fe80::1")));
        assert!(!all_v6.contains(ip("10.0.0.1")));
    }

    #[test]
    fn bad_ranges_are_refused_with_an_example() {
        assert!(
            "10.0.0.0"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("ADDRESS/PREFIX")
        );
        assert!(
            "10.0.0.0/33"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("0..=32")
        );
        assert!("ten/8".parse::<Cidr>().is_err());
    }
}
