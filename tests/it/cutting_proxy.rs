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
                let flag = flag.clone();
                let (client_in, server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                // Server to client: plain copying until either side closes.
                let (mut from_server, mut to_client) = (server, client);
                thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                });
                thread::spawn(move || forward_until_commit(client_in, server_out, &flag));
            }
        });
        CuttingProxy { port, cut }
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
        if server.write_all(chunk).is_err() {
            return;
        }
        if chunk.windows(COMMIT_MESSAGE.len()).any(|w| w == COMMIT_MESSAGE) {
            cut.store(true, Ordering::SeqCst);
            let _ = client.shutdown(Shutdown::Both);
            // The server must still read and run the COMMIT; closing our side of it only
            // after a moment keeps it from seeing the disconnect first.
            thread::sleep(std::time::Duration::from_millis(500));
            let _ = server.shutdown(Shutdown::Both);
            return;
        }
    }
}
