//! A TCP proxy in front of the test PostgreSQL that forwards everything, except that right
//! after passing on a client's `COMMIT` it cuts both connections: the server commits, and
//! the client never hears whether it did. The only fake here is the network failure.

use std::{
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
};

/// The simple-protocol `Query` message sqlx sends to commit: 'Q', length 11, "COMMIT\0".
const COMMIT_MESSAGE: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

pub struct CuttingProxy {
    pub port: u16,
    /// Set once a COMMIT was forwarded and the connection cut.
    pub cut: Arc<AtomicBool>,
}

impl CuttingProxy {
    pub fn start(upstream_port: u16) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let flag = cut.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else { continue };
                let (client_in, server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                // Server to client: copying until either side closes, or the cut.
                let cut = flag.clone();
                thread::spawn(move || forward_until_cut(server, client, &cut));
                let cut = flag.clone();
                thread::spawn(move || forward_until_commit(client_in, server_out, &cut));
            }
        });
        CuttingProxy { port, cut }
    }
}

fn forward_until_cut(mut server: TcpStream, mut client: TcpStream, cut: &AtomicBool) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let Ok(read) = server.read(&mut buffer) else { return };
        if read == 0 || cut.load(Ordering::SeqCst) || client.write_all(&buffer[..read]).is_err() {
            return;
        }
    }
}

fn forward_until_commit(mut client: TcpStream, mut server: TcpStream, cut: &AtomicBool) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let Ok(read) = client.read(&mut buffer) else { return };
        if read == 0 {
            let _ = server.shutdown(Shutdown::Write);
            return;
        }
        let chunk = &buffer[..read];
        if chunk.windows(COMMIT_MESSAGE.len()).any(|w| w == COMMIT_MESSAGE) {
            // Cut the client off first, so no answer can reach it; then let the COMMIT through.
            cut.store(true, Ordering::SeqCst);
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.write_all(chunk);
            // The server must still read and run the COMMIT; closing our side of it only
            // after a moment keeps it from seeing the disconnect first.
            thread::sleep(std::time::Duration::from_millis(500));
            let _ = server.shutdown(Shutdown::Both);
            return;
        }
        if server.write_all(chunk).is_err() {
            return;
        }
    }
}
