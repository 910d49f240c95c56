//! Zero-downtime upgrade: a new microlith process takes over the listening
//! socket and the state of the running one, the Rust stand-in for
//! Erlang's hot code upgrade.
//!
//! The running process (`--upgrade-socket PATH`) waits on a Unix socket
//! for a successor. A successor (`--take-over PATH`) connects; the old
//! process sends it a duplicate of its listening TCP socket (SCM_RIGHTS),
//! stops accepting, drains what is in flight (answers carry
//! `connection: close`, so clients do not reuse those connections), stops
//! its actors and closes its store, then writes one byte: released. The
//! successor opens the store only then and starts accepting on the same
//! socket. The socket never closes, so no connection is refused: those
//! that arrive while the state changes hands wait in the kernel's accept
//! queue, and their wait shows as latency, not as errors.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// Why a hand-over failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// A socket operation failed.
    #[error("upgrade socket: {0}")]
    Io(#[from] std::io::Error),
    /// The predecessor sent no listening socket.
    #[error("the running process sent no listening socket")]
    NoSocket,
}

/// A Unix socket path may hold at most 107 bytes; a longer one (a deep
/// data directory) is reached through its directory's descriptor instead,
/// `/proc/self/fd/N/name`, which the kernel resolves. The directory stays
/// open as long as the returned `File` lives.
fn reachable(path: &Path) -> std::io::Result<(Option<std::fs::File>, PathBuf)> {
    use std::os::fd::AsRawFd;
    if path.as_os_str().len() < 100 {
        return Ok((None, path.to_owned()));
    }
    let dir = std::fs::File::open(
        path.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )?;
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a socket path needs a file name",
        )
    })?;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    Ok((Some(dir), short))
}

impl From<rustix::io::Errno> for UpgradeError {
    fn from(e: rustix::io::Errno) -> Self {
        Self::Io(e.into())
    }
}

/// The running side: waits for a successor on a Unix socket.
pub struct Handover {
    listener: UnixListener,
    path: PathBuf,
}

/// A successor connected: its connection, to send the socket on and to
/// say released on.
pub struct Successor(UnixStream);

impl Handover {
    /// Listens on `path`, making its directory if needed (a stale socket
    /// file left by a dead process is replaced).
    pub fn bind(path: &Path) -> Result<Self, UpgradeError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        let (_dir, reachable) = reachable(path)?;
        Ok(Self {
            listener: UnixListener::bind(reachable)?,
            path: path.to_owned(),
        })
    }

    /// Waits (blocking) for a successor, then sends it `socket`.
    pub fn wait(self, socket: impl AsFd) -> Result<Successor, UpgradeError> {
        let (stream, _) = self.listener.accept()?;
        let fds = [socket.as_fd()];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            &stream,
            &[IoSlice::new(b"L")],
            &mut control,
            SendFlags::empty(),
        )?;
        // The successor binds the path again for its own successor.
        let _ = std::fs::remove_file(&self.path);
        Ok(Successor(stream))
    }
}

impl Successor {
    /// Tells the successor the state is free: actors stopped, store closed.
    pub fn released(mut self) -> Result<(), UpgradeError> {
        self.0.write_all(b"R")?;
        Ok(())
    }
}

/// The successor's side: the listening socket, and a wait for the state.
pub struct TakeOver {
    stream: UnixStream,
    /// The inherited listening socket.
    pub listener: std::net::TcpListener,
}

impl TakeOver {
    /// Connects to the running process at `path` and receives its
    /// listening socket.
    pub fn connect(path: &Path) -> Result<Self, UpgradeError> {
        let (_dir, reachable) = reachable(path)?;
        let stream = UnixStream::connect(reachable)?;
        let mut byte = [0u8; 1];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        rustix::net::recvmsg(
            &stream,
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        let mut received: Option<OwnedFd> = None;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                for fd in fds {
                    received.get_or_insert(fd);
                }
            }
        }
        let fd = received.ok_or(UpgradeError::NoSocket)?;
        let listener = std::net::TcpListener::from(fd);
        listener.set_nonblocking(true)?;
        Ok(Self { stream, listener })
    }

    /// Waits (blocking) until the running process has released the state;
    /// its exit counts too (the stream ends).
    pub fn released(mut self) -> Result<std::net::TcpListener, UpgradeError> {
        let mut byte = [0u8; 1];
        let _ = self.stream.read(&mut byte)?;
        Ok(self.listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory inside the workspace's `target/` (tests write
    /// nothing outside the project tree).
    fn test_dir() -> tempfile::TempDir {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-tmp");
        std::fs::create_dir_all(&root).expect("create target/test-tmp");
        tempfile::tempdir_in(root).expect("tempdir")
    }

    /// The socket handed over is the same listening socket: a connection
    /// made to its address before and after the hand-over is accepted by
    /// the successor, and the successor waits for the release.
    #[test]
    fn the_listening_socket_and_the_release_pass_to_the_successor() {
        let dir = test_dir();
        let path = dir.path().join("upgrade.sock");
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let handover = Handover::bind(&path).expect("handover");
        let old = std::thread::spawn(move || {
            let successor = handover.wait(&tcp).expect("wait");
            // The old process stops accepting: its copy closes.
            drop(tcp);
            // A client arriving meanwhile waits in the accept queue.
            let early = std::net::TcpStream::connect(addr).expect("connect during the hand-over");
            std::thread::sleep(std::time::Duration::from_millis(50));
            successor.released().expect("released");
            early
        });
        let taken = TakeOver::connect(&path).expect("take over");
        assert_eq!(taken.listener.local_addr().expect("addr"), addr);
        let listener = taken.released().expect("released");
        let _early = old.join().expect("old side");
        listener.set_nonblocking(false).expect("blocking");
        let (_, _) = listener
            .accept()
            .expect("the early connection is accepted by the successor");
        let _late = std::net::TcpStream::connect(addr).expect("connect after");
        let (_, _) = listener.accept().expect("accepted");
        assert!(
            !path.exists(),
            "the old socket file is gone for the successor to bind"
        );
    }

    /// A socket path past the 107 bytes a Unix socket address holds.
    #[test]
    fn a_deep_socket_path_works_too() {
        let dir = test_dir();
        let deep = dir
            .path()
            .join("a-directory-name-long-enough-to-matter".repeat(3));
        std::fs::create_dir_all(&deep).expect("mkdir");
        let path = deep.join("upgrade.sock");
        assert!(path.as_os_str().len() > 108);
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let handover = Handover::bind(&path).expect("handover");
        assert!(path.exists(), "bound at the real path");
        let old = std::thread::spawn(move || {
            handover
                .wait(&tcp)
                .expect("wait")
                .released()
                .expect("released")
        });
        let taken = TakeOver::connect(&path).expect("take over");
        assert_eq!(taken.listener.local_addr().expect("addr"), addr);
        taken.released().expect("released");
        old.join().expect("old side");
    }
}
