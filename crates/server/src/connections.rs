//! Counting held connections, in total and per client address, to refuse floods. Part of the
//! total is kept for clients that presented the doorbell token: connections without it (a
//! browser, or someone filling the server) cannot take the last slots, so a doorbell can
//! always connect and ring. The per-address cap applies to those without the token only, and
//! counts an IPv6 client by its /64 (one household, one ISP customer).

use crate::config::Caps;
use doorbell_protocol::{ErrorCode, ProtocolError};
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Default)]
pub(crate) struct Connections {
    total: usize,
    /// Connections without the doorbell token.
    untrusted: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// The address a per-address cap counts: IPv4 as is (an IPv4-mapped IPv6 address as its
/// IPv4), IPv6 by its /64.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Connections {
    /// `trusted`: the connection presented the doorbell token.
    pub fn admit(
        &mut self,
        ip: Option<IpAddr>,
        trusted: bool,
        caps: Caps,
    ) -> Result<(), ProtocolError> {
        let full = || {
            ProtocolError::new(
                ErrorCode::TooManyConnections,
                "the server holds too many connections; try again later",
            )
        };
        if self.total >= caps.total {
            return Err(full());
        }
        if trusted {
            self.total += 1;
            return Ok(());
        }
        if self.untrusted >= caps.total.saturating_sub(caps.reserved) {
            return Err(full());
        }
        if let Some(ip) = ip {
            let from_address = self.per_address.entry(address_key(ip)).or_default();
            if *from_address >= caps.per_ip {
                return Err(ProtocolError::new(
                    ErrorCode::TooManyConnections,
                    "too many connections from your address; close some and try again",
                ));
            }
            *from_address += 1;
        }
        self.untrusted += 1;
        self.total += 1;
        Ok(())
    }

    pub fn release(&mut self, ip: Option<IpAddr>, trusted: bool) {
        self.total = self.total.saturating_sub(1);
        if trusted {
            return;
        }
        self.untrusted = self.untrusted.saturating_sub(1);
        if let Some(ip) = ip {
            let key = address_key(ip);
            if let Some(n) = self.per_address.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_address.remove(&key);
                }
            }
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        total: 4,
        per_ip: 2,
        reserved: 1,
    };

    #[test]
    fn per_address_and_total_limits_for_connections_without_the_token() {
        let mut c = Connections::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        c.admit(Some(a), false, CAPS).unwrap();
        c.admit(Some(a), false, CAPS).unwrap();
        let err = c.admit(Some(a), false, CAPS).unwrap_err();
        assert_eq!(err.code, ErrorCode::TooManyConnections);
        c.admit(Some(b), false, CAPS).unwrap();
        // Three without the token fill everything but the reserved slot.
        assert!(c.admit(Some(b), false, CAPS).is_err());
        c.release(Some(a), false);
        c.release(Some(a), false);
        c.release(Some(b), false);
        assert_eq!(c.total(), 0);
        assert!(c.per_address.is_empty(), "no entry kept for gone addresses");
    }

    #[test]
    fn the_reserved_slots_are_for_the_token_only() {
        let mut c = Connections::default();
        let flood: IpAddr = "198.51.100.9".parse().unwrap();
        let caps = Caps {
            per_ip: 100,
            ..CAPS
        };
        for _ in 0..3 {
            c.admit(Some(flood), false, caps).unwrap();
        }
        assert!(
            c.admit(Some(flood), false, caps).is_err(),
            "the reserve is not theirs"
        );
        // The doorbell, even from the flooding address, takes the reserved slot.
        c.admit(Some(flood), true, caps).unwrap();
        assert!(c.admit(None, true, caps).is_err(), "the total still holds");
        c.release(Some(flood), true);
        assert_eq!(c.total(), 3);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let mut c = Connections::default();
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2"] {
            c.admit(Some(host.parse().unwrap()), false, CAPS).unwrap();
        }
        let third: IpAddr = "2001:db8:1:2:ffff::3".parse().unwrap();
        assert!(c.admit(Some(third), false, CAPS).is_err(), "same /64");
        c.admit(Some("2001:db8:1:3::1".parse().unwrap()), false, CAPS)
            .unwrap();
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
