//! The Ring button of a smart-home device (MQTT's `…/ring/set`): each press it reports rings
//! the bell exactly like the physical button. Whoever may publish to the broker can press it,
//! so, like the HTTP trigger, it takes at most [`RATE_PRESSES`] presses a minute.

use super::http::{PressRate, RATE_PRESSES};
use super::press::{Press, Trigger, TriggerError};
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

pub struct DeviceTrigger {
    name: String,
    presses: mpsc::Receiver<()>,
}

impl DeviceTrigger {
    /// A trigger named `name` (e.g. the channel, `mqtt`) and the sender its device presses on.
    pub fn new(name: impl Into<String>) -> (Self, mpsc::Sender<()>) {
        let (tx, presses) = mpsc::channel(4);
        (
            Self {
                name: name.into(),
                presses,
            },
            tx,
        )
    }
}

impl Trigger for DeviceTrigger {
    fn name(&self) -> String {
        format!("device:{}", self.name)
    }

    fn run(
        mut self: Box<Self>,
        presses: mpsc::Sender<Press>,
    ) -> BoxFuture<'static, Result<(), TriggerError>> {
        Box::pin(async move {
            let mut rate = PressRate::default();
            while self.presses.recv().await.is_some() {
                if !rate.allow(tokio::time::Instant::now().into_std()) {
                    tracing::warn!(
                        trigger = %self.name(),
                        "more than {RATE_PRESSES} rings a minute from the device's Ring \
                         button; this one is ignored"
                    );
                    continue;
                }
                if presses.send(Press).await.is_err() {
                    break;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_device_press_is_one_press() {
        let (trigger, device) = DeviceTrigger::new("mqtt");
        assert_eq!(trigger.name(), "device:mqtt");
        let (tx, mut rx) = mpsc::channel(4);
        let running = tokio::spawn(Box::new(trigger).run(tx));
        device.send(()).await.unwrap();
        device.send(()).await.unwrap();
        assert_eq!(rx.recv().await, Some(Press));
        assert_eq!(rx.recv().await, Some(Press));
        drop(device);
        assert!(running.await.unwrap().is_ok(), "ends with its device");
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_device_presses_rings_six_times_a_minute() {
        let (trigger, device) = DeviceTrigger::new("mqtt");
        let (tx, mut rx) = mpsc::channel(16);
        tokio::spawn(Box::new(trigger).run(tx));
        for _ in 0..RATE_PRESSES + 3 {
            device.send(()).await.unwrap();
        }
        tokio::task::yield_now().await;
        let mut rung = 0;
        while tokio::time::timeout(std::time::Duration::from_secs(1), rx.recv())
            .await
            .is_ok()
        {
            rung += 1;
        }
        assert_eq!(rung, RATE_PRESSES);
        // A minute later the button rings again.
        tokio::time::sleep(crate::trigger::RATE_WINDOW).await;
        device.send(()).await.unwrap();
        assert_eq!(rx.recv().await, Some(Press));
    }
}
