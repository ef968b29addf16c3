//! The fuzz targets without libFuzzer, on stable: every seed (fuzz/seeds/<target>, including
//! inputs that once failed) and a fixed number of seeded random mutations of them. It finds
//! less than coverage-guided fuzzing but runs anywhere:
//!   cargo test --manifest-path fuzz/Cargo.toml --release
//! DOORBELL_FUZZ_MUTATIONS sets the mutations per target (default 20000; the offer target
//! does a tenth of that, each run builds a peer connection).

use std::path::Path;

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\n",
    b"\r\n",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"/",
    b"0",
    b"9",
    b"-1",
    b"18446744073709551616",
    b"1e999",
    b"null",
    b"\xff",
    b"\xc3\xa9",
    b"m=",
    b"a=",
    b"candidate:",
    b" typ host",
    b" udp ",
    b"IN IP4 ",
    b"\\u0000",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            2 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                input.splice(at..at, piece.iter().copied());
            }
            3 if !input.is_empty() => {
                let i = rng.below(input.len());
                let byte = input[i];
                input.splice(at..at, std::iter::repeat_n(byte, 1 + rng.below(64)));
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let to = (from + rng.below(64)).min(other.len());
                    input.splice(at..at, other[from..to].iter().copied());
                }
            }
            _ => input.push(rng.next() as u8),
        }
    }
    input.truncate(16_384);
}

fn replay(target: &str, run: fn(&[u8]), mutations: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.expect("seed entry").path()).expect("read seed"))
        .collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds.sort();
    for seed in &seeds {
        run(seed);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ target.len() as u64);
    for i in 0..mutations {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &seeds, &mut input);
        let result = std::panic::catch_unwind(|| run(&input));
        if result.is_err() {
            let path = std::env::temp_dir().join(format!("doorbell-fuzz-{target}-{i}"));
            let _ = std::fs::write(&path, &input);
            panic!(
                "{target}: mutation {i} panicked; input saved to {} (add it to fuzz/seeds/{target} once fixed)",
                path.display()
            );
        }
    }
}

fn mutations() -> usize {
    std::env::var("DOORBELL_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn protocol_events() {
    replay(
        "protocol_events",
        doorbell_fuzz::protocol_events,
        mutations(),
    );
}

#[test]
fn opus_packets() {
    replay("opus_packets", doorbell_fuzz::opus_packets, mutations() / 4);
}

#[test]
fn wire_packets() {
    replay("wire_packets", doorbell_fuzz::wire_packets, mutations());
}

#[test]
fn remote_offer_and_candidates() {
    replay(
        "remote_offer_and_candidates",
        doorbell_fuzz::remote_offer_and_candidates,
        mutations() / 10,
    );
}
