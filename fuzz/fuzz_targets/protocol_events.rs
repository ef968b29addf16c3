//! Signaling events as a hostile peer sends them: an event name, a JSON payload, and the room
//! ids inside. Parsing must answer Ok or Err, never panic, and what it accepts must survive a
//! round trip through its own encoding.
#![no_main]

use doorbell_protocol::{ClientEvent, RoomId, ServerEvent};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // "name\npayload": the name as the wire carries it, the payload as any JSON (or a string).
    let (name, payload_text) = text.split_once('\n').unwrap_or((text, ""));
    let payload: Value =
        serde_json::from_str(payload_text).unwrap_or_else(|_| Value::String(payload_text.into()));

    if let Ok(room) = RoomId::parse(name) {
        assert_eq!(RoomId::parse(room.as_str()).ok().as_ref(), Some(&room));
        // The redacted form never carries the whole id.
        assert!(room.as_str().len() <= 4 || room.redacted() != room.as_str());
    }
    if let Ok(event) = ClientEvent::parse(name, &payload) {
        let again = ClientEvent::parse(event.name().as_str(), &event.payload());
        assert_eq!(again.ok().as_ref(), Some(&event), "client event round trip");
    }
    // What the agent reads from the server: parsed, never trusted.
    let _ = ServerEvent::parse(name, &payload);
});
