//! Media for the doorbell: sources (test pattern, tone, cameras), encoders (H.264, Opus) and
//! sinks (WAV, null). (In progress.)
