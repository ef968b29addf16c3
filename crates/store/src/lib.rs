//! What the server remembers between starts, in one SQLite file in its data dir
//! (`doorbell.sqlite3`): the owners' paired devices ([`owners`]), the ring history with
//! its snapshots ([`rings`]), and Web Push subscriptions and the server's VAPID key ([`push`]). Secrets (pairing codes, device cookies) are stored only as
//! SHA-256 hashes. Every call is synchronous: the server runs them off its async threads.
//! Time is passed in, so every rule about expiry and retention is tested on injected time.

mod db;
pub mod owners;
pub mod push;
pub mod replies;
pub mod rings;

pub use db::{Store, StoreError};
pub use owners::{Device, DeviceInfo, PairError, Paired, PairingCode};
pub use push::{MAX_SUBSCRIPTIONS_PER_DEVICE, PushTarget};
pub use replies::{MAX_REPLIES, MAX_REPLY, Reply, ReplyError};
pub use rings::{
    MAX_MESSAGE_BYTES, MAX_SNAPSHOT_BYTES, MessageError, Outcome, Retention, RingEntry,
    SnapshotError,
};
