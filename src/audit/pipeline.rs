//! Producing and consuming at the same time, on two threads: the verifier reads the next page
//! of events from the database while it checks the current one (reading costs more than
//! hashing, and the machine this was measured on has two cores; docs/performance.md).
//!
//! Plain std: a scoped thread (so the producer may borrow the caller's connection) and a bounded
//! channel (so memory stays at a few pages however long the trail). Items arrive in the order
//! they were produced. The stream counts as complete only when the producer says so: a producer
//! that fails, or panics, makes the whole run an error, never a short stream that looks whole —
//! for verification a silently shortened trail would read as valid.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Why a pipeline did not run to the end.
#[derive(Debug, PartialEq, Eq)]
pub enum PipelineError<E> {
    /// The producer returned this error; items before it were consumed, none after.
    Producer(E),
    /// The producer thread panicked or could not be started.
    ProducerLost,
}

/// What travels on the channel: items, then exactly one last word (unless the producer panics).
enum Message<T, E> {
    Item(T),
    Failed(E),
    Done,
}

/// The producer's end of the channel.
pub struct Feed<T, E> {
    tx: SyncSender<Message<T, E>>,
}

impl<T, E> Feed<T, E> {
    /// Hands `item` to the consumer, waiting while `depth` items are already queued. `false`
    /// when the consumer has gone (it panicked): the producer should stop.
    pub fn send(&mut self, item: T) -> bool {
        self.tx.send(Message::Item(item)).is_ok()
    }
}

/// Runs `produce` on a thread of its own, handing each item it sends to `consume` on the
/// calling thread, in order; the stream is complete when `produce` returns `Ok`. At most
/// `depth` items wait between the two (at least one).
pub fn pipeline<T, E, P, C>(depth: usize, produce: P, mut consume: C) -> Result<(), PipelineError<E>>
where
    T: Send,
    E: Send,
    P: FnOnce(&mut Feed<T, E>) -> Result<(), E> + Send,
    C: FnMut(T),
{
    let (tx, rx) = sync_channel(depth.max(1));
    std::thread::scope(|scope| {
        let producer = std::thread::Builder::new()
            .name("audit-reader".into())
            .spawn_scoped(scope, move || {
                let mut feed = Feed { tx };
                let last = match produce(&mut feed) {
                    Ok(()) => Message::Done,
                    Err(e) => Message::Failed(e),
                };
                // Fails only when the consumer is gone: nobody is left to tell.
                let _ = feed.tx.send(last);
            })
            .map_err(|_| PipelineError::ProducerLost)?;
        let outcome = drain(rx, &mut consume);
        // `rx` is gone by now, so a producer blocked on a full channel has been released.
        let joined = producer.join();
        match (outcome, joined) {
            (Err(e), _) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
            (Ok(()), Err(_)) => Err(PipelineError::ProducerLost),
        }
    })
}

/// Consumes until the producer's last word; takes `rx` by value so that it is dropped on
/// return, whatever the reason.
fn drain<T, E>(rx: Receiver<Message<T, E>>, consume: &mut impl FnMut(T)) -> Result<(), PipelineError<E>> {
    loop {
        match rx.recv() {
            Ok(Message::Item(item)) => consume(item),
            Ok(Message::Done) => return Ok(()),
            Ok(Message::Failed(e)) => return Err(PipelineError::Producer(e)),
            // The producer hung up without a last word: it panicked.
            Err(_) => return Err(PipelineError::ProducerLost),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A producer of `0..n`, then the end; with `fail_at`, an error instead of that item.
    fn counting(n: u32, fail_at: Option<u32>) -> impl FnOnce(&mut Feed<u32, String>) -> Result<(), String> + Send {
        move |feed| {
            for i in 0..n {
                if Some(i) == fail_at {
                    return Err(format!("database gone at {i}"));
                }
                if !feed.send(i) {
                    return Ok(());
                }
            }
            Ok(())
        }
    }

    #[test]
    fn delivers_every_item_in_order_whatever_the_depth() {
        for depth in [0, 1, 2, 7, 1000] {
            let mut got = Vec::new();
            let result = pipeline(depth, counting(500, None), |i| got.push(i));
            assert_eq!(result, Ok(()));
            assert_eq!(got, (0..500).collect::<Vec<_>>(), "depth {depth}");
        }
    }

    #[test]
    fn an_empty_stream_is_complete() {
        let mut got = Vec::<u32>::new();
        assert_eq!(pipeline(2, counting(0, None), |i| got.push(i)), Ok(()));
        assert!(got.is_empty());
    }

    #[test]
    fn a_producer_error_ends_the_run_as_that_error_after_the_items_before_it() {
        let mut got = Vec::new();
        let result = pipeline(2, counting(100, Some(4)), |i| got.push(i));
        assert_eq!(result, Err(PipelineError::Producer("database gone at 4".to_string())));
        assert_eq!(got, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_producer_panic_is_an_error_not_a_short_stream() {
        let produce = |feed: &mut Feed<u32, String>| {
            for i in 0..100 {
                assert!(i < 2, "reader bug");
                feed.send(i);
            }
            Ok(())
        };
        let mut got = Vec::new();
        let result = pipeline(1, produce, |i| got.push(i));
        assert_eq!(result, Err(PipelineError::ProducerLost));
        assert_eq!(got, vec![0, 1]);
    }

    #[test]
    fn a_panicking_consumer_does_not_leave_the_producer_blocked() {
        // The producer would block on the full channel forever if the receiver were kept alive
        // while the scope waits for it; the test finishing is the assertion.
        let result = std::panic::catch_unwind(|| {
            let _ = pipeline(1, counting(u32::MAX, None), |i| assert!(i < 3, "consumer bug"));
        });
        assert!(result.is_err());
    }
}
