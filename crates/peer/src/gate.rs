//! A start/stop gate shared by the media threads of one call.
//!
//! The threads are spawned when the answer is built but must not capture or encode before the
//! connection is up (the first frame has to be the IDR the browser sees first), and must stop
//! promptly when the call is closed, even if it never connected.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GateState {
    Waiting,
    Open,
    Closed,
}

#[derive(Clone)]
pub(crate) struct MediaGate(Arc<(Mutex<GateState>, Condvar)>);

impl MediaGate {
    pub fn new() -> Self {
        Self(Arc::new((Mutex::new(GateState::Waiting), Condvar::new())))
    }

    fn set(&self, to: GateState) {
        let (lock, cvar) = &*self.0;
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Closed is final: a late "connected" must not restart a closed call.
        if *state != GateState::Closed {
            *state = to;
        }
        cvar.notify_all();
    }

    /// The connection is up: media may flow.
    pub fn open(&self) {
        self.set(GateState::Open);
    }

    /// The call is over: media threads stop.
    pub fn close(&self) {
        self.set(GateState::Closed);
    }

    /// Blocks until the gate opens (`true`) or closes (`false`).
    pub fn wait_open(&self) -> bool {
        let (lock, cvar) = &*self.0;
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while *state == GateState::Waiting {
            state = cvar.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        *state == GateState::Open
    }

    pub fn is_closed(&self) -> bool {
        let (lock, _) = &*self.0;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) == GateState::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_returns_on_open_and_close_is_final() {
        let gate = MediaGate::new();
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.wait_open())
        };
        gate.open();
        assert!(waiter.join().unwrap());
        gate.close();
        gate.open();
        assert!(gate.is_closed());
        assert!(!gate.wait_open());
    }
}
