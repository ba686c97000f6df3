//! Reading a socket of this shard: plain non-blocking `recv` calls straight
//! into the caller's buffer, told by the shard's epoll set ([`super::ready`])
//! when the socket has something.
//!
//! Used by every long-lived TCP link of a shard: client connections, a
//! master's link to each of its replicas (their ACKs), and a replica's link
//! to its master (the replication stream). Waiting through the runtime's
//! own read instead costs an io_uring poll per read, and a read future
//! dropped before it completes (a select against other events) costs a
//! cancellation as well; here waiting costs nothing until the shard's
//! watcher finds the socket ready.
//!
//! Owns the socket's registration and whether the last read emptied it;
//! the socket itself and what is read stay with the caller.

use super::ready;
use bytes::BytesMut;
use std::os::fd::RawFd;

/// How much spare room a read wants in its buffer. A reader whose buffer
/// is split into pieces that outlive it (forwarded, or handed to other
/// shards) keeps `min` well below `reserve`: a shared buffer cannot grow in
/// place, so every reserve is a fresh allocation of `reserve` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Room {
    /// Below this much spare room, reserve first.
    pub min: usize,
    /// What to reserve then.
    pub reserve: usize,
}

impl Room {
    /// `n` bytes of room, reserved whenever fewer are spare.
    pub const fn exactly(n: usize) -> Room {
        Room { min: n, reserve: n }
    }
}

/// One socket's input side. Dropping it removes the socket from the epoll
/// set, so it must be dropped before the socket is closed.
pub struct SocketInput {
    fd: RawFd,
    interest: ready::Interest,
    /// The last read emptied the socket: wait for an event before the
    /// next `recv`.
    drained: bool,
}

impl SocketInput {
    /// Registers `fd`, a non-blocking socket owned by the caller and used
    /// on this shard only, with the shard's epoll set.
    pub fn new(fd: RawFd) -> std::io::Result<SocketInput> {
        Ok(SocketInput {
            fd,
            interest: ready::register(fd)?,
            drained: false,
        })
    }

    /// Appends what the socket holds to `buf`, waiting until it holds
    /// something: the bytes read, 0 at end of stream. The kernel writes
    /// straight into `buf`'s spare room (no copy through a staging chunk);
    /// when that room is under `room.min`, `room.reserve` bytes are
    /// reserved first. Safe to cancel: bytes are only taken from the
    /// socket by a poll that returns them.
    pub async fn read(&mut self, buf: &mut BytesMut, room: Room) -> std::io::Result<usize> {
        if buf.capacity() - buf.len() < room.min.max(1) {
            buf.reserve(room.reserve.max(room.min).max(1));
        }
        loop {
            if self.drained {
                self.interest.readable().await;
                self.drained = false;
            }
            let spare = buf.capacity() - buf.len();
            match recv_into_spare(self.fd, buf)? {
                Some(n) => {
                    // A short read took everything queued: more data
                    // arriving later raises a new edge.
                    self.drained = n > 0 && n < spare;
                    return Ok(n);
                }
                None => self.drained = true,
            }
        }
    }
}

/// One non-blocking `recv` into the spare room of `buf`, which grows by
/// what was read: the byte count (0 at end of stream), or `None` when the
/// socket holds nothing now. A raw `recvfrom` rather than libc's `recv`,
/// which is a thread-cancellation point and pays for that on every call.
fn recv_into_spare(fd: RawFd, buf: &mut BytesMut) -> std::io::Result<Option<usize>> {
    let spare = buf.spare_capacity_mut();
    loop {
        // SAFETY: `spare` is the buffer's allocated, unused tail, valid for
        // `spare.len()` bytes for the whole call, and the kernel writes at
        // most that many into it; `fd` is the caller's socket, open while
        // its SocketInput lives; no address is asked for.
        let n = unsafe {
            libc::syscall(
                libc::SYS_recvfrom,
                fd,
                spare.as_mut_ptr(),
                spare.len(),
                libc::MSG_DONTWAIT,
                std::ptr::null_mut::<libc::sockaddr>(),
                std::ptr::null_mut::<libc::socklen_t>(),
            )
        };
        if n >= 0 {
            let n = n as usize;
            // SAFETY: the kernel initialised the first `n` bytes of the
            // spare room, and `n <= spare.len()`.
            unsafe { buf.set_len(buf.len() + n) };
            return Ok(Some(n));
        }
        let err = std::io::Error::last_os_error();
        match err.kind() {
            std::io::ErrorKind::WouldBlock => return Ok(None),
            std::io::ErrorKind::Interrupted => continue,
            _ => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ready::tests::{nonblocking_pair, on_executor};
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn reads_what_arrives_in_order_then_the_end_of_stream() {
        on_executor(|| async {
            let (ours, mut peer) = nonblocking_pair();
            let mut input = SocketInput::new(ours.as_raw_fd()).unwrap();
            let mut buf = BytesMut::new();
            peer.write_all(b"hello ").unwrap();
            let n = input.read(&mut buf, Room::exactly(4)).await.unwrap();
            assert_eq!(n, 6);
            // Nothing queued: the next read waits for the writer.
            let writer = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                peer.write_all(b"world").unwrap();
                peer
            });
            let n = input.read(&mut buf, Room::exactly(4)).await.unwrap();
            assert_eq!(n, 5);
            assert_eq!(&buf[..], b"hello world");
            drop(writer.join().unwrap());
            assert_eq!(input.read(&mut buf, Room::exactly(4)).await.unwrap(), 0);
            drop(input);
        });
    }

    #[test]
    fn a_read_bigger_than_the_spare_room_is_taken_in_several_reads() {
        on_executor(|| async {
            let (ours, mut peer) = nonblocking_pair();
            let mut input = SocketInput::new(ours.as_raw_fd()).unwrap();
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let sent = data.clone();
            let writer = std::thread::spawn(move || {
                peer.write_all(&sent).unwrap();
            });
            let mut buf = BytesMut::new();
            while buf.len() < data.len() {
                let n = input.read(&mut buf, Room::exactly(1000)).await.unwrap();
                assert!(n > 0);
            }
            writer.join().unwrap();
            assert_eq!(&buf[..], &data[..]);
            drop(input);
        });
    }
}
