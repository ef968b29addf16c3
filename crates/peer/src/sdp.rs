//! The little SDP reading the peer needs.

/// The first `a=mid:` of an SDP: with BUNDLE every candidate belongs to that m-line.
pub(crate) fn first_mid(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=mid:"))
        .filter(|mid| !mid.is_empty())
}

/// Whether the answer sends media of `kind` ("audio", "video"): an m-line of that kind that
/// is not rejected (port 0) and whose direction is sendrecv or sendonly.
pub(crate) fn sends(answer_sdp: &str, kind: &str) -> bool {
    let mut in_section = false;
    let mut rejected = false;
    let mut sending = false;
    for line in answer_sdp.lines().map(str::trim_end) {
        if let Some(media) = line.strip_prefix("m=") {
            if in_section && !rejected && sending {
                return true;
            }
            let mut fields = media.split_whitespace();
            in_section = fields.next() == Some(kind);
            rejected = fields.next() == Some("0");
            sending = false;
        } else if in_section && (line == "a=sendrecv" || line == "a=sendonly") {
            sending = true;
        }
    }
    in_section && !rejected && sending
}

#[cfg(test)]
mod tests {
    use super::{first_mid, sends};

    #[test]
    fn knows_what_an_answer_sends() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 125\r\na=sendonly\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sendrecv\r\n";
        assert!(sends(sdp, "audio"));
        assert!(sends(sdp, "video"));
        let rejected = "m=audio 9 X 111\r\na=sendrecv\r\nm=video 0 X 125\r\na=sendonly\r\n";
        assert!(!sends(rejected, "video"));
        let receiving = "m=video 9 X 125\r\na=recvonly\r\nm=audio 9 X 111\r\na=inactive\r\n";
        assert!(!sends(receiving, "video"));
        assert!(!sends(receiving, "audio"));
        assert!(!sends("m=audio 9 X 111\r\na=sendrecv\r\n", "video"));
    }

    #[test]
    fn finds_the_first_mid() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:1\r\n";
        assert_eq!(first_mid(sdp), Some("audio0"));
        assert_eq!(first_mid("v=0\r\n"), None);
        assert_eq!(first_mid("a=mid:\r\n"), None);
    }
}
