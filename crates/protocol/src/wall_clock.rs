//! Calendar time for messages and records (`2026-11-25 11:58:20 UTC`) without a date library: the agent
//! runs on a Pi whose time zone is often unset, so every channel says UTC explicitly.

use std::time::{SystemTime, UNIX_EPOCH};

/// (year, month, day, hour, minute, second) in UTC; times before 1970 count as 1970.
fn civil_utc(at: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `2026-11-25 11:58:20 UTC`, for people.
pub fn human_utc(at: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil_utc(at);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// `2026-11-25T11:58:20.250Z` (RFC 3339, milliseconds), for machines.
pub fn rfc3339_utc(at: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil_utc(at);
    let millis = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_607_900_250);
        assert_eq!(rfc3339_utc(at), "2026-11-25T11:58:20.250Z");
        assert_eq!(human_utc(at), "2026-11-25 11:58:20 UTC");
        // A leap day and the turn of a century.
        assert_eq!(
            human_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
