use super::press::{Press, Trigger, TriggerError};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

/// One line on standard input (Enter in a terminal) is one press; end of input ends the
/// trigger. Generic over the reader so tests feed it a pipe.
pub struct StdinTrigger<R> {
    input: R,
}

impl<R: AsyncRead + Unpin + Send + 'static> StdinTrigger<R> {
    pub fn new(input: R) -> Self {
        Self { input }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> Trigger for StdinTrigger<R> {
    fn name(&self) -> String {
        "stdin".into()
    }

    fn run(
        self: Box<Self>,
        presses: mpsc::Sender<Press>,
    ) -> BoxFuture<'static, Result<(), TriggerError>> {
        Box::pin(async move {
            let mut lines = BufReader::new(self.input).lines();
            while lines
                .next_line()
                .await
                .map_err(TriggerError::Stdin)?
                .is_some()
            {
                if presses.send(Press).await.is_err() {
                    break; // the agent is gone
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
    async fn one_line_is_one_press_and_eof_ends() {
        let (tx, mut rx) = mpsc::channel(8);
        let input: &[u8] = b"\nring\n\n";
        Box::new(StdinTrigger::new(input)).run(tx).await.unwrap();
        let mut n = 0;
        while rx.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
    }
}
