//! The little SDP reading the peer needs.

/// The first `a=mid:` of an SDP: with BUNDLE every candidate belongs to that m-line.
pub(crate) fn first_mid(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=mid:"))
        .filter(|mid| !mid.is_empty())
}

#[cfg(test)]
mod tests {
    use super::first_mid;

    #[test]
    fn finds_the_first_mid() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:1\r\n";
        assert_eq!(first_mid(sdp), Some("audio0"));
        assert_eq!(first_mid("v=0\r\n"), None);
        assert_eq!(first_mid("a=mid:\r\n"), None);
    }
}
