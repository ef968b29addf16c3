//! Errors of the WebRTC peer layer.

/// Why a call's peer connection could not be set up or driven.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("the configuration is unusable: {0}")]
    Config(String),
    #[error(
        "the browser's offer was refused: {0}; check that it offers H.264 or Opus and is a complete SDP offer"
    )]
    BadOffer(String),
    #[error("could not build the answer: {0}")]
    Answer(String),
    #[error("a remote ICE candidate was refused: {0}")]
    BadCandidate(String),
    #[error("WebRTC failed: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    #[error("media setup failed: {0}; check the camera, microphone and encoder settings")]
    Media(#[from] doorbell_media::MediaError),
}
