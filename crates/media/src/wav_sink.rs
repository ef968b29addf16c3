//! A sink that records to a WAV file (48 kHz, mono, 16-bit PCM).

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{AudioSink, MediaError, SAMPLE_RATE};

const HEADER_LEN: u32 = 44;
const BYTES_PER_SAMPLE: u16 = 2;
const CHANNELS: u16 = 1;

/// Writes a canonical 44-byte-header WAV file. The header is written with zero lengths at
/// creation and fixed up by `finish()` (also attempted on drop), so a crash leaves a file most
/// players still open.
pub struct WavSink {
    path: PathBuf,
    /// `None` once finished.
    writer: Option<BufWriter<File>>,
    data_bytes: u32,
}

impl WavSink {
    /// Creates (or truncates) the file at `path` and writes a provisional header.
    pub fn create(path: &Path) -> Result<Self, MediaError> {
        let file_error = |action| {
            let path = path.to_path_buf();
            move |source| MediaError::File {
                action,
                path,
                source,
            }
        };
        let file = File::create(path).map_err(file_error("create"))?;
        let mut writer = BufWriter::new(file);
        writer.write_all(&header(0)).map_err(file_error("write"))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Some(writer),
            data_bytes: 0,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_error(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> MediaError + use<> {
        let path = self.path.clone();
        move |source| MediaError::File {
            action,
            path,
            source,
        }
    }
}

/// The RIFF/WAVE header for `data_bytes` bytes of samples.
fn header(data_bytes: u32) -> [u8; HEADER_LEN as usize] {
    let byte_rate = SAMPLE_RATE * u32::from(CHANNELS) * u32::from(BYTES_PER_SAMPLE);
    let mut header = [0_u8; HEADER_LEN as usize];
    header[0..4].copy_from_slice(b"RIFF");
    header[4..8].copy_from_slice(&(HEADER_LEN - 8 + data_bytes).to_le_bytes());
    header[8..12].copy_from_slice(b"WAVE");
    header[12..16].copy_from_slice(b"fmt ");
    header[16..20].copy_from_slice(&16_u32.to_le_bytes());
    header[20..22].copy_from_slice(&1_u16.to_le_bytes()); // PCM
    header[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
    header[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    header[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    header[32..34].copy_from_slice(&(CHANNELS * BYTES_PER_SAMPLE).to_le_bytes());
    header[34..36].copy_from_slice(&(BYTES_PER_SAMPLE * 8).to_le_bytes());
    header[36..40].copy_from_slice(b"data");
    header[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    header
}

impl AudioSink for WavSink {
    fn write(&mut self, pcm: &[i16]) -> Result<(), MediaError> {
        let added = u32::try_from(pcm.len() * usize::from(BYTES_PER_SAMPLE)).ok();
        let total = added
            .and_then(|added| self.data_bytes.checked_add(added))
            .filter(|total| total.checked_add(HEADER_LEN - 8).is_some());
        let Some(total) = total else {
            return Err(MediaError::WavFull(self.path.clone()));
        };
        let error = self.io_error("write");
        let writer = self.writer.as_mut().ok_or(MediaError::SinkFinished)?;
        let mut bytes = Vec::with_capacity(pcm.len() * 2);
        for sample in pcm {
            bytes.extend_from_slice(&sample.to_le_bytes());
        }
        writer.write_all(&bytes).map_err(error)?;
        self.data_bytes = total;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), MediaError> {
        let Some(mut writer) = self.writer.take() else {
            return Ok(());
        };
        let result = (|| {
            writer.seek(SeekFrom::Start(0))?;
            writer.write_all(&header(self.data_bytes))?;
            writer.flush()?;
            writer.get_ref().sync_data()
        })();
        result.map_err(self.io_error("finish"))?;
        tracing::debug!(path = %self.path.display(), bytes = self.data_bytes, "WAV file finished");
        Ok(())
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        if self.writer.is_some()
            && let Err(error) = self.finish()
        {
            tracing::warn!(%error, "WAV file left with a provisional header");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FRAME_SAMPLES;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("doorbell-media-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn u32_at(bytes: &[u8], offset: usize) -> u32 {
        u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
    }

    fn u16_at(bytes: &[u8], offset: usize) -> u16 {
        u16::from_le_bytes(bytes[offset..offset + 2].try_into().unwrap())
    }

    #[test]
    fn header_is_fixed_up_on_finish_and_samples_read_back() {
        let path = temp_path("finish.wav");
        let mut sink = WavSink::create(&path).unwrap();
        assert_eq!(sink.path(), path);
        let block: Vec<i16> = (0..FRAME_SAMPLES as i16).map(|i| i * 30 - 14_000).collect();
        sink.write(&block).unwrap();
        sink.write(&[i16::MIN, i16::MAX, -1]).unwrap();
        sink.finish().unwrap();
        sink.finish().unwrap();
        assert!(matches!(sink.write(&[1]), Err(MediaError::SinkFinished)));

        let bytes = std::fs::read(&path).unwrap();
        let data_len = (FRAME_SAMPLES + 3) * 2;
        assert_eq!(bytes.len(), 44 + data_len);
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(u32_at(&bytes, 4) as usize, 36 + data_len);
        assert_eq!(&bytes[8..16], b"WAVEfmt ");
        assert_eq!(u32_at(&bytes, 16), 16);
        assert_eq!(u16_at(&bytes, 20), 1, "PCM");
        assert_eq!(u16_at(&bytes, 22), 1, "mono");
        assert_eq!(u32_at(&bytes, 24), 48_000);
        assert_eq!(u32_at(&bytes, 28), 96_000, "byte rate");
        assert_eq!(u16_at(&bytes, 32), 2, "block align");
        assert_eq!(u16_at(&bytes, 34), 16, "bits per sample");
        assert_eq!(&bytes[36..40], b"data");
        assert_eq!(u32_at(&bytes, 40) as usize, data_len);
        let samples: Vec<i16> = bytes[44..]
            .chunks_exact(2)
            .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        assert_eq!(&samples[..FRAME_SAMPLES], &block[..]);
        assert_eq!(&samples[FRAME_SAMPLES..], &[i16::MIN, i16::MAX, -1]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn drop_finishes_the_file() {
        let path = temp_path("drop.wav");
        {
            let mut sink = WavSink::create(&path).unwrap();
            sink.write(&[5; 100]).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(u32_at(&bytes, 40), 200);
        assert_eq!(u32_at(&bytes, 4), 236);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn unwritable_path_is_a_clear_error() {
        let path = temp_path("no-such-dir").join("x").join("out.wav");
        let error = WavSink::create(&path).err().unwrap();
        assert!(matches!(
            error,
            MediaError::File {
                action: "create",
                ..
            }
        ));
        assert!(error.to_string().contains("out.wav"));
    }
}
