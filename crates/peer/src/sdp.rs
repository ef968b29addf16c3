//! The little SDP reading the peer needs.

use doorbell_media::VideoCodec;

/// The first `a=mid:` of an SDP: with BUNDLE every candidate belongs to that m-line.
pub(crate) fn first_mid(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=mid:"))
        .filter(|mid| !mid.is_empty())
}

/// The answer with `a=end-of-candidates` in every media section that has none (RFC 8840): said
/// once gathering is complete, so the browser knows no candidate of ours is still to come.
/// Chromium then nominates the first pair that works on its first check instead of a second
/// one ~50 ms later (measured, BENCHMARKS.md "Page open → first frame").
pub(crate) fn with_end_of_candidates(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len() + 64);
    let mut in_media = false;
    let mut marked = false;
    let close = |out: &mut String, in_media: bool, marked: bool| {
        if in_media && !marked {
            out.push_str("a=end-of-candidates\r\n");
        }
    };
    for line in sdp.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            close(&mut out, in_media, marked);
            in_media = true;
            marked = false;
        } else if line == "a=end-of-candidates" {
            marked = true;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    close(&mut out, in_media, marked);
    out
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

/// Which video codec the agent prefers when the browser offers both (`--video-codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoCodecPreference {
    /// H.264 when offered (cheaper to encode on the Pi, Safari's only codec), else VP8.
    #[default]
    Auto,
    /// This codec when offered, else the other.
    Prefer(VideoCodec),
}

impl VideoCodecPreference {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(Self::Auto),
            "h264" => Ok(Self::Prefer(VideoCodec::H264)),
            "vp8" => Ok(Self::Prefer(VideoCodec::Vp8)),
            other => Err(format!(
                "{other:?} is not a video codec; use auto, h264 or vp8"
            )),
        }
    }
}

/// The video codecs we can send that the offer's first video section accepts, in the offer's
/// order: H.264 only with packetization-mode 1 and a baseline-family profile (what openh264
/// makes), VP8 always.
pub(crate) fn offered_video_codecs(offer_sdp: &str) -> Vec<VideoCodec> {
    let mut in_video = false;
    let mut seen_video = false;
    let mut order: Vec<&str> = Vec::new();
    let mut names: Vec<(&str, String)> = Vec::new();
    let mut fmtps: Vec<(&str, &str)> = Vec::new();
    for line in offer_sdp.lines().map(str::trim_end) {
        if let Some(media) = line.strip_prefix("m=") {
            if seen_video {
                break;
            }
            let mut fields = media.split_whitespace();
            in_video = fields.next() == Some("video") && fields.next() != Some("0");
            if in_video {
                seen_video = true;
                order = fields.skip(1).collect();
            }
        } else if in_video {
            if let Some((pt, rest)) = line
                .strip_prefix("a=rtpmap:")
                .and_then(|r| r.split_once(' '))
            {
                let name = rest
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                names.push((pt, name));
            } else if let Some((pt, params)) =
                line.strip_prefix("a=fmtp:").and_then(|r| r.split_once(' '))
            {
                fmtps.push((pt, params));
            }
        }
    }
    let fmtp_of = |pt: &str| {
        fmtps
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, f)| *f)
            .unwrap_or("")
    };
    let mut codecs = Vec::new();
    for pt in order {
        let Some((_, name)) = names.iter().find(|(p, _)| *p == pt) else {
            continue;
        };
        let codec = match name.as_str() {
            "H264" if h264_fits(fmtp_of(pt)) => VideoCodec::H264,
            "VP8" => VideoCodec::Vp8,
            _ => continue,
        };
        if !codecs.contains(&codec) {
            codecs.push(codec);
        }
    }
    codecs
}

/// packetization-mode=1 and a profile-level-id of the baseline family (profile_idc 0x42;
/// absent means 42000a).
fn h264_fits(fmtp: &str) -> bool {
    let param = |key: &str| {
        fmtp.split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim())
    };
    let mode_1 = param("packetization-mode") == Some("1");
    let baseline = param("profile-level-id")
        .is_none_or(|id| id.len() == 6 && id[..2].eq_ignore_ascii_case("42"));
    mode_1 && baseline
}

/// The codec to send: the preferred one among those offered that this build can encode.
pub(crate) fn choose_video_codec(
    offered: &[VideoCodec],
    preference: VideoCodecPreference,
) -> Option<VideoCodec> {
    let first = match preference {
        VideoCodecPreference::Auto | VideoCodecPreference::Prefer(VideoCodec::H264) => {
            [VideoCodec::H264, VideoCodec::Vp8]
        }
        VideoCodecPreference::Prefer(VideoCodec::Vp8) => [VideoCodec::Vp8, VideoCodec::H264],
    };
    first
        .into_iter()
        .find(|codec| codec.is_available() && offered.contains(codec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_candidates_closes_every_media_section_once() {
        let sdp = "v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n\
                   a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=end-of-candidates\r\n";
        let marked = with_end_of_candidates(sdp);
        assert_eq!(
            marked,
            "v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n\
             a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=end-of-candidates\r\n"
        );
        assert_eq!(with_end_of_candidates(&marked), marked, "said once");
        assert_eq!(
            with_end_of_candidates("v=0\r\n"),
            "v=0\r\n",
            "no media, nothing to say"
        );
    }

    const CHROMIUM_VIDEO: &str = "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 45 46 98\r\n\
        a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
        a=rtpmap:102 H264/90000\r\n\
        a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
        a=rtpmap:103 rtx/90000\r\na=rtpmap:45 AV1/90000\r\na=rtpmap:46 rtx/90000\r\n\
        a=rtpmap:98 VP9/90000\r\n";
    /// Safari 17 on iOS: H.264 only, High and constrained baseline, with RTX, RED and ulpfec.
    pub(crate) const SAFARI_VIDEO: &str = "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 127 125\r\n\
        a=rtpmap:96 H264/90000\r\na=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 nack pli\r\n\
        a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f\r\n\
        a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
        a=rtpmap:98 H264/90000\r\n\
        a=fmtp:98 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
        a=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n\
        a=rtpmap:100 H264/90000\r\n\
        a=fmtp:100 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
        a=rtpmap:101 rtx/90000\r\na=fmtp:101 apt=100\r\n\
        a=rtpmap:127 red/90000\r\na=rtpmap:125 ulpfec/90000\r\n";
    const FIREFOX_VIDEO: &str = "m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125\r\n\
        a=rtpmap:120 VP8/90000\r\na=rtpmap:124 rtx/90000\r\na=rtpmap:121 VP9/90000\r\n\
        a=rtpmap:125 rtx/90000\r\n";

    fn offer(video: &str) -> String {
        format!("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n{video}")
    }

    #[test]
    fn reads_the_usable_video_codecs_in_offer_order() {
        assert_eq!(
            offered_video_codecs(&offer(CHROMIUM_VIDEO)),
            [VideoCodec::Vp8, VideoCodec::H264]
        );
        assert_eq!(
            offered_video_codecs(&offer(SAFARI_VIDEO)),
            [VideoCodec::H264]
        );
        assert_eq!(
            offered_video_codecs(&offer(FIREFOX_VIDEO)),
            [VideoCodec::Vp8]
        );
        // High profile only, or packetization-mode 0 only: nothing openh264 makes fits.
        let high_only = "m=video 9 X 96\r\na=rtpmap:96 H264/90000\r\n\
                         a=fmtp:96 packetization-mode=1;profile-level-id=640c1f\r\n";
        assert!(offered_video_codecs(&offer(high_only)).is_empty());
        let rejected = "m=video 0 X 96\r\na=rtpmap:96 VP8/90000\r\n";
        assert!(offered_video_codecs(&offer(rejected)).is_empty());
    }

    #[test]
    fn h264_is_chosen_when_both_are_offered_unless_vp8_is_preferred() {
        let both = [VideoCodec::Vp8, VideoCodec::H264];
        assert_eq!(
            choose_video_codec(&both, VideoCodecPreference::Auto),
            Some(VideoCodec::H264)
        );
        assert_eq!(
            choose_video_codec(
                &[VideoCodec::H264],
                VideoCodecPreference::Prefer(VideoCodec::Vp8)
            ),
            Some(VideoCodec::H264),
            "the other codec when the preferred one is not offered"
        );
        assert_eq!(choose_video_codec(&[], VideoCodecPreference::Auto), None);
        if VideoCodec::Vp8.is_available() {
            assert_eq!(
                choose_video_codec(&both, VideoCodecPreference::Prefer(VideoCodec::Vp8)),
                Some(VideoCodec::Vp8)
            );
            assert_eq!(
                choose_video_codec(&[VideoCodec::Vp8], VideoCodecPreference::Auto),
                Some(VideoCodec::Vp8)
            );
        }
    }

    #[test]
    fn video_codec_preferences_parse_and_refuse_by_name() {
        assert_eq!(
            VideoCodecPreference::parse("auto"),
            Ok(VideoCodecPreference::Auto)
        );
        assert_eq!(
            VideoCodecPreference::parse("vp8"),
            Ok(VideoCodecPreference::Prefer(VideoCodec::Vp8))
        );
        assert!(
            VideoCodecPreference::parse("av1")
                .unwrap_err()
                .contains("auto, h264 or vp8")
        );
    }

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
