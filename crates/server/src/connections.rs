//! Counting held connections, in total and per client address, to refuse floods.

use crate::config::Caps;
use doorbell_protocol::{ErrorCode, ProtocolError};
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Default)]
pub(crate) struct Connections {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl Connections {
    pub fn admit(&mut self, ip: Option<IpAddr>, caps: Caps) -> Result<(), ProtocolError> {
        if self.total >= caps.total {
            return Err(ProtocolError::new(
                ErrorCode::TooManyConnections,
                "the server holds too many connections; try again later",
            ));
        }
        if let Some(ip) = ip {
            let from_ip = self.per_ip.entry(ip).or_default();
            if *from_ip >= caps.per_ip {
                return Err(ProtocolError::new(
                    ErrorCode::TooManyConnections,
                    "too many connections from your address; close some and try again",
                ));
            }
            *from_ip += 1;
        }
        self.total += 1;
        Ok(())
    }

    pub fn release(&mut self, ip: Option<IpAddr>) {
        self.total = self.total.saturating_sub(1);
        if let Some(ip) = ip
            && let Some(n) = self.per_ip.get_mut(&ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
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

    #[test]
    fn per_ip_and_total_limits() {
        let limits = Caps {
            total: 3,
            per_ip: 2,
        };
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let mut c = Connections::default();
        c.admit(Some(a), limits).unwrap();
        c.admit(Some(a), limits).unwrap();
        let err = c.admit(Some(a), limits).unwrap_err();
        assert_eq!(err.code, ErrorCode::TooManyConnections);
        c.admit(Some(b), limits).unwrap();
        assert_eq!(
            c.admit(Some(b), limits).unwrap_err().code,
            ErrorCode::TooManyConnections
        );
        assert_eq!(c.total(), 3);
        c.release(Some(a));
        c.admit(Some(b), limits).unwrap();
        assert_eq!(c.total(), 3);
        c.release(Some(b));
        c.release(Some(b));
        c.release(Some(a));
        assert_eq!(c.total(), 0);
        assert!(c.per_ip.is_empty(), "no entry kept for gone addresses");
    }
}
