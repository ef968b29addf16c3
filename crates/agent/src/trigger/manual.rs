use super::press::{Press, Trigger, TriggerError};
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

/// Presses sent by the program itself (the demo's ring at start, tests). The trigger lasts
/// as long as its [`ManualTrigger::new`] sender lives, which keeps the agent running.
pub struct ManualTrigger {
    rx: mpsc::Receiver<Press>,
}

impl ManualTrigger {
    pub fn new() -> (Self, mpsc::Sender<Press>) {
        let (tx, rx) = mpsc::channel(4);
        (Self { rx }, tx)
    }
}

impl Trigger for ManualTrigger {
    fn name(&self) -> String {
        "manual".into()
    }

    fn run(
        mut self: Box<Self>,
        presses: mpsc::Sender<Press>,
    ) -> BoxFuture<'static, Result<(), TriggerError>> {
        Box::pin(async move {
            while let Some(press) = self.rx.recv().await {
                if presses.send(press).await.is_err() {
                    break;
                }
            }
            Ok(())
        })
    }
}
