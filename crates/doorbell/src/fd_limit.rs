//! The open-file limit against the server's connection cap. Every Socket.IO connection holds a
//! file descriptor; with systemd's default soft limit of 1024 the server would fail to accept
//! long before `--max-connections` (10,000 by default) and refuse doorbells and owners alike.
//! At start the soft limit is raised as far as the hard limit allows; if that is still short,
//! the server says so and how to fix it.

/// Descriptors besides the connections: listener, TLS files, logs, the TURN sockets.
pub const HEADROOM: u64 = 256;

/// Descriptors `max_connections` needs: the server accepts up to twice as many raw TCP
/// connections (a polling client holds two or three; `tcp_limit.rs`) before Socket.IO counts.
pub fn needed(max_connections: usize) -> u64 {
    (max_connections as u64)
        .saturating_mul(2)
        .saturating_add(HEADROOM)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdPlan {
    /// The soft limit already covers the cap.
    Enough,
    /// Raise the soft limit to this (at most the hard limit).
    Raise { to: u64 },
    /// Even the hard limit is short: raise to it and warn.
    TooLow { raise_to: u64, need: u64 },
}

/// What to do with limits `soft`/`hard` for `max_connections`.
pub fn plan(soft: u64, hard: u64, max_connections: usize) -> FdPlan {
    let need = needed(max_connections);
    if soft >= need {
        FdPlan::Enough
    } else if hard >= need {
        FdPlan::Raise { to: need }
    } else {
        FdPlan::TooLow {
            raise_to: hard.max(soft),
            need,
        }
    }
}

/// Applies [`plan`] to this process; returns a warning when the limit stays below the cap.
pub fn ensure(max_connections: usize) -> Option<String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Some("cannot read the open-file limit (RLIMIT_NOFILE)".into());
    }
    let (soft, hard) = (limit.rlim_cur, limit.rlim_max);
    let (raise_to, warning) = match plan(soft, hard, max_connections) {
        FdPlan::Enough => return None,
        FdPlan::Raise { to } => (to, None),
        FdPlan::TooLow { raise_to, need } => (
            raise_to,
            Some(format!(
                "the open-file limit ({raise_to}) is below what --max-connections \
                 {max_connections} needs ({need}: twice the cap for connections still in their \
                 handshake, plus {HEADROOM} for the server itself): connections beyond it will \
                 be refused; raise it (systemd: LimitNOFILE={need} in the unit; shell: ulimit -n) \
                 or lower --max-connections"
            )),
        ),
    };
    if raise_to > soft {
        let raised = libc::rlimit {
            rlim_cur: raise_to,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads one rlimit through a valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Some(format!(
                "cannot raise the open-file limit from {soft} to {raise_to}; set LimitNOFILE in \
                 the systemd unit"
            ));
        }
    }
    warning
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_1024_is_raised_to_the_cap_when_the_hard_limit_allows() {
        assert_eq!(plan(1024, 524_288, 10_000), FdPlan::Raise { to: 20_256 });
        assert_eq!(plan(65_536, 65_536, 10_000), FdPlan::Enough);
    }

    #[test]
    fn a_hard_limit_below_the_cap_is_used_and_reported() {
        assert_eq!(
            plan(1024, 4096, 10_000),
            FdPlan::TooLow {
                raise_to: 4096,
                need: 20_256
            }
        );
    }

    #[test]
    fn the_warning_names_the_fix() {
        // This process: a cap beyond any sane hard limit always warns.
        let warning = ensure(usize::MAX / 2).expect("a warning");
        assert!(warning.contains("LimitNOFILE"), "{warning}");
    }
}
