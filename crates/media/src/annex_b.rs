//! Reading H.264 Annex-B byte streams (start-code separated NAL units).

/// NAL unit type of an IDR slice (a keyframe).
pub const NAL_IDR_SLICE: u8 = 5;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;

/// The NAL units of an Annex-B stream, without their start codes (3- or 4-byte). Bytes before
/// the first start code are skipped.
pub fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut index = 0;
    while index + 3 <= stream.len() {
        if stream[index] == 0 && stream[index + 1] == 0 && stream[index + 2] == 1 {
            starts.push(index + 3);
            index += 3;
        } else {
            index += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len());
    for (position, &start) in starts.iter().enumerate() {
        let mut end = match starts.get(position + 1) {
            Some(next) => next - 3,
            None => stream.len(),
        };
        // A 4-byte start code's leading zero (and trailing zeros) belong to no NAL unit.
        while end > start && stream[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            units.push(&stream[start..end]);
        }
    }
    units
}

/// The type (low 5 bits of the header byte) of each NAL unit in `stream`.
pub fn nal_unit_types(stream: &[u8]) -> Vec<u8> {
    nal_units(stream)
        .iter()
        .filter_map(|unit| unit.first().map(|header| header & 0x1F))
        .collect()
}

/// Whether an access unit holds an IDR slice (a decoder can start there).
pub fn is_keyframe(access_unit: &[u8]) -> bool {
    nal_unit_types(access_unit).contains(&NAL_IDR_SLICE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let stream = [
            0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1F, // SPS, 4-byte start code
            0, 0, 1, 0x68, 0xCE, // PPS, 3-byte start code
            0, 0, 0, 1, 0x65, 0x88, 0x00, 0x10, // IDR slice with an inner 00
        ];
        let units = nal_units(&stream);
        assert_eq!(
            units,
            vec![
                &[0x67, 0x42, 0xC0, 0x1F][..],
                &[0x68, 0xCE],
                &[0x65, 0x88, 0x00, 0x10]
            ]
        );
        assert_eq!(
            nal_unit_types(&stream),
            vec![NAL_SPS, NAL_PPS, NAL_IDR_SLICE]
        );
        assert!(is_keyframe(&stream));
        assert!(!is_keyframe(&[0, 0, 0, 1, 0x41, 0x9A]));
    }

    #[test]
    fn garbage_yields_nothing_and_does_not_panic() {
        assert!(nal_units(&[]).is_empty());
        assert!(nal_units(&[0, 0]).is_empty());
        assert!(nal_units(&[1, 2, 3, 0, 0, 1]).is_empty());
        assert!(nal_units(&[0, 0, 1, 0, 0, 1]).is_empty());
        assert!(!is_keyframe(&[0xFF; 64]));
    }
}
