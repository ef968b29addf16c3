//! The WebRTC side of a call: answers the browser's offer and pumps media. (In progress.)
