//! Reading the WAV files `doorbell audio-check` takes: 48 kHz, mono, 16-bit PCM, nothing else,
//! and a message saying what a file is instead when it is not.

use doorbell_media::SAMPLE_RATE;
use std::path::{Path, PathBuf};

/// The largest file read (about 58 minutes at 48 kHz mono 16-bit).
const MAX_BYTES: u64 = 1 << 28;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a WAV file ({why})")]
    NotWav { path: PathBuf, why: &'static str },
    #[error(
        "{path} is {what}; audio-check needs 48000 Hz mono 16-bit PCM \
         (convert with: sox IN -r 48000 -c 1 -b 16 OUT.wav)"
    )]
    Format { path: PathBuf, what: String },
    #[error("{path} is larger than {} MiB; give a shorter recording", MAX_BYTES >> 20)]
    TooLarge { path: PathBuf },
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The samples of a 48 kHz mono 16-bit PCM WAV file.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, WavError> {
    let read_error = |source| WavError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_BYTES {
        return Err(WavError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    parse_wav(&bytes).map_err(|problem| match problem {
        Problem::NotWav(why) => WavError::NotWav {
            path: path.to_path_buf(),
            why,
        },
        Problem::Format(what) => WavError::Format {
            path: path.to_path_buf(),
            what,
        },
    })
}

#[derive(Debug, PartialEq)]
enum Problem {
    NotWav(&'static str),
    Format(String),
}

fn parse_wav(bytes: &[u8]) -> Result<Vec<i16>, Problem> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(Problem::NotWav("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut format = None;
    while let (Some(id), Some(len)) = (bytes.get(at..at + 4), u32_at(bytes, at + 4)) {
        let body = at + 8;
        let len = len as usize;
        match id {
            b"fmt " => {
                let tag = u16_at(bytes, body).ok_or(Problem::NotWav("fmt chunk cut short"))?;
                let channels =
                    u16_at(bytes, body + 2).ok_or(Problem::NotWav("fmt chunk cut short"))?;
                let rate = u32_at(bytes, body + 4).ok_or(Problem::NotWav("fmt chunk cut short"))?;
                let bits =
                    u16_at(bytes, body + 14).ok_or(Problem::NotWav("fmt chunk cut short"))?;
                // 1 = PCM; 0xFFFE = WAVE_FORMAT_EXTENSIBLE, whose sub-format GUID starts with
                // the same tag.
                let pcm = tag == 1 || (tag == 0xFFFE && u16_at(bytes, body + 24) == Some(1));
                format = Some((pcm, channels, rate, bits));
            }
            b"data" => {
                let Some((pcm, channels, rate, bits)) = format else {
                    return Err(Problem::NotWav("data before the fmt chunk"));
                };
                if !pcm || channels != 1 || rate != SAMPLE_RATE || bits != 16 {
                    let kind = if pcm {
                        "PCM"
                    } else {
                        "not PCM (compressed or float)"
                    };
                    return Err(Problem::Format(format!(
                        "{rate} Hz, {channels} channel(s), {bits}-bit, {kind}"
                    )));
                }
                // A header written before the recording ended may say 0 or too much: take
                // what is there.
                let end = body.saturating_add(len).min(bytes.len());
                let data = bytes.get(body..end).unwrap_or_default();
                return Ok(data
                    .chunks_exact(2)
                    .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
                    .collect());
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(len).saturating_add(len & 1);
    }
    Err(Problem::NotWav("no data chunk"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, bits: u16, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16_u32.to_le_bytes());
        out.extend_from_slice(&1_u16.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        out.extend_from_slice(&(channels * 2).to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        // A LIST chunk of odd length before the data, as recorders write.
        out.extend_from_slice(b"LIST");
        out.extend_from_slice(&3_u32.to_le_bytes());
        out.extend_from_slice(b"abc\0");
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn reads_the_samples_past_other_chunks() {
        assert_eq!(
            parse_wav(&wav(48_000, 1, 16, &[1, -2, 3])),
            Ok(vec![1, -2, 3])
        );
    }

    #[test]
    fn refuses_other_formats_saying_what_the_file_is() {
        let Err(Problem::Format(what)) = parse_wav(&wav(44_100, 2, 16, &[0, 0])) else {
            panic!("accepted");
        };
        assert!(
            what.contains("44100 Hz") && what.contains("2 channel"),
            "{what}"
        );
    }

    #[test]
    fn refuses_what_is_not_a_wav_file() {
        assert!(matches!(
            parse_wav(b"ID3\x03 an mp3"),
            Err(Problem::NotWav(_))
        ));
        assert!(matches!(
            parse_wav(b"RIFF\0\0\0\0WAVE"),
            Err(Problem::NotWav(_))
        ));
        let mut cut = wav(48_000, 1, 16, &[1, 2]);
        cut.truncate(30);
        assert!(matches!(parse_wav(&cut), Err(Problem::NotWav(_))));
    }
}
