//! The Ring button of a smart-home device (MQTT's `…/ring/set`): each press it reports rings
//! the bell exactly like the physical button.

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
            while self.presses.recv().await.is_some() {
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
}
