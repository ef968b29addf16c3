//! Which Opus packets never arrived, from RTP sequence numbers, so the decoder can conceal
//! each with 20 ms of plausible sound instead of a click of silence and a shortened stream.

/// Lost packets concealed in a row at most (100 ms). A longer gap is an outage or a stream
/// restart: synthetic sound that long is worse than silence.
pub const MAX_CONCEALED: u16 = 5;

/// What to do with an arriving packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Play it, after concealing this many lost packets before it.
    Play { conceal: u16 },
    /// A duplicate, or later than its place: its time was already played or concealed.
    Drop,
}

/// Follows one stream's sequence numbers.
#[derive(Debug, Default)]
pub struct LossDetector {
    last: Option<u16>,
}

impl LossDetector {
    pub fn arrived(&mut self, sequence: u16) -> Arrival {
        let Some(last) = self.last else {
            self.last = Some(sequence);
            return Arrival::Play { conceal: 0 };
        };
        // Sequence numbers wrap at 2^16; a step of less than half the range is forward.
        let step = sequence.wrapping_sub(last);
        if step == 0 || step >= 0x8000 {
            return Arrival::Drop;
        }
        self.last = Some(sequence);
        Arrival::Play {
            conceal: (step - 1).min(MAX_CONCEALED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_packets_conceal_nothing_across_the_wrap() {
        let mut loss = LossDetector::default();
        for sequence in [65_534, 65_535, 0, 1] {
            assert_eq!(loss.arrived(sequence), Arrival::Play { conceal: 0 });
        }
    }

    #[test]
    fn a_gap_conceals_the_missing_packets_up_to_100_ms() {
        let mut loss = LossDetector::default();
        loss.arrived(10);
        assert_eq!(loss.arrived(13), Arrival::Play { conceal: 2 });
        assert_eq!(loss.arrived(1_000), Arrival::Play { conceal: 5 });
    }

    #[test]
    fn late_and_duplicate_packets_are_dropped() {
        let mut loss = LossDetector::default();
        loss.arrived(10);
        loss.arrived(12);
        assert_eq!(loss.arrived(11), Arrival::Drop);
        assert_eq!(loss.arrived(12), Arrival::Drop);
        assert_eq!(loss.arrived(13), Arrival::Play { conceal: 0 });
    }
}
