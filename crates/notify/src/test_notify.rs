//! `doorbell agent --test-notify`: one message on every channel, and what became of each.

use crate::dispatch::{ChannelOutcome, RetryPolicy, dispatch_with};
use crate::notifier::{Notifier, Ring};
use doorbell_protocol::RoomId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// For `doorbell agent --test-notify`: sends one message on every channel (with retries, like
/// a real ring, until `deadline`) and returns each channel's outcome in config order.
pub async fn test_notify(
    notifiers: &[Arc<dyn Notifier>],
    link: Option<(RoomId, String)>,
    snapshot_jpeg: Option<Arc<Vec<u8>>>,
    deadline: Duration,
) -> Vec<ChannelOutcome> {
    let (room, link) = link.unzip();
    let ring = Arc::new(Ring {
        at: SystemTime::now(),
        link,
        room,
        snapshot_jpeg,
        message: None,
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let handles = dispatch_with(
        notifiers,
        ring,
        deadline,
        RetryPolicy::default(),
        move |event| {
            if let Ok(mut events) = sink.lock() {
                events.push(event);
            }
        },
    );
    for handle in handles {
        let _ = handle.await;
    }
    let mut by_channel: HashMap<String, Result<(), String>> = HashMap::new();
    if let Ok(events) = events.lock() {
        for outcome in events.iter() {
            by_channel.insert(outcome.channel.clone(), outcome.result.clone());
        }
    }
    notifiers
        .iter()
        .map(|n| {
            let channel = n.channel();
            let result = by_channel
                .remove(&channel)
                .unwrap_or_else(|| Err("the channel's task ended without an outcome".into()));
            ChannelOutcome { channel, result }
        })
        .collect()
}
