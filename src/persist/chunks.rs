//! A blocking `Read` over byte chunks sent from another thread, so an RDB
//! can be parsed by a loader thread while its bytes are still arriving
//! (a replica parses its master's snapshot during the transfer).
//!
//! The sending side never blocks: [`ChunkSender::offer`] hands a chunk back
//! when the loader is behind, and the async caller waits and retries. The
//! channel is bounded, so a slow loader costs at most `capacity` chunks of
//! memory. Owns only the channel; knows nothing of RDB.

use bytes::Bytes;
use crossbeam::channel::{self, Receiver, Sender, TrySendError};
use std::io::Read;

enum Piece {
    Data(Bytes),
    /// The producer gave up: the reader fails with this message.
    Failed(String),
}

pub struct ChunkSender(Sender<Piece>);

pub struct ChunkReader {
    rx: Receiver<Piece>,
    current: Bytes,
    failed: Option<String>,
}

/// A channel holding at most `capacity` chunks in flight.
pub fn channel(capacity: usize) -> (ChunkSender, ChunkReader) {
    let (tx, rx) = channel::bounded(capacity.max(1));
    (
        ChunkSender(tx),
        ChunkReader {
            rx,
            current: Bytes::new(),
            failed: None,
        },
    )
}

/// What [`ChunkSender::offer`] did with a chunk.
pub enum Offer {
    Taken,
    /// The reader is behind: try again later with this chunk.
    Full(Bytes),
    /// The reader is gone (it failed or finished early).
    Closed,
}

impl ChunkSender {
    pub fn offer(&self, chunk: Bytes) -> Offer {
        if chunk.is_empty() {
            return Offer::Taken;
        }
        match self.0.try_send(Piece::Data(chunk)) {
            Ok(()) => Offer::Taken,
            Err(TrySendError::Full(Piece::Data(c))) => Offer::Full(c),
            Err(TrySendError::Full(Piece::Failed(_))) => Offer::Closed,
            Err(TrySendError::Disconnected(_)) => Offer::Closed,
        }
    }

    /// Ends the stream with an error instead of a clean end (dropping the
    /// sender is the clean end).
    pub fn fail(self, why: String) {
        // A full channel still gets the failure: this send may wait for the
        // reader to take one chunk, which it is doing.
        let _ = self.0.send(Piece::Failed(why));
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            if let Some(why) = &self.failed {
                return Err(std::io::Error::other(why.clone()));
            }
            match self.rx.recv() {
                Ok(Piece::Data(b)) => self.current = b,
                Ok(Piece::Failed(why)) => self.failed = Some(why),
                // Every sender dropped: the stream ended cleanly.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_across_threads() {
        let (tx, mut rx) = channel(2);
        let producer = std::thread::spawn(move || {
            for i in 0..200u32 {
                let mut chunk = Bytes::from(vec![(i % 251) as u8; (i % 7 + 1) as usize]);
                loop {
                    match tx.offer(chunk) {
                        Offer::Taken => break,
                        Offer::Full(c) => {
                            chunk = c;
                            std::thread::yield_now();
                        }
                        Offer::Closed => panic!("reader gone"),
                    }
                }
            }
        });
        let mut all = Vec::new();
        rx.read_to_end(&mut all).unwrap();
        producer.join().unwrap();
        let want: Vec<u8> = (0..200u32)
            .flat_map(|i| std::iter::repeat_n((i % 251) as u8, (i % 7 + 1) as usize))
            .collect();
        assert_eq!(all, want);
    }

    #[test]
    fn a_failed_producer_fails_the_reader_after_its_data() {
        let (tx, mut rx) = channel(4);
        assert!(matches!(tx.offer(Bytes::from_static(b"abc")), Offer::Taken));
        tx.fail("link lost".into());
        let mut buf = [0u8; 8];
        assert_eq!(rx.read(&mut buf).unwrap(), 3);
        let err = rx.read(&mut buf).unwrap_err();
        assert_eq!(err.to_string(), "link lost");
    }

    #[test]
    fn a_gone_reader_closes_the_sender() {
        let (tx, rx) = channel(1);
        drop(rx);
        assert!(matches!(tx.offer(Bytes::from_static(b"x")), Offer::Closed));
    }
}
