//! hyper's HTTP/1.1 client for the control APIs cabinet-db talks to — tailscaled's LocalAPI
//! (over a unix socket), Patroni's REST API and etcd's health (over the tailnet): one request
//! per connection (`Connection: close`), the answer's body read to its end and taken as UTF-8,
//! lossily (the callers' serde types tolerate what they do not know).

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::{
    Request,
    header::{CONNECTION, HOST, USER_AGENT},
    http::request::Builder,
};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Why one exchange brought no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// Our request is not valid HTTP (a path or header we built).
    #[error("cannot write the request: {0}")]
    Request(#[source] hyper::http::Error),
    /// The connection failed, or closed before the answer ended.
    #[error("cannot reach it: {}", chain(.0))]
    Connection(#[source] std::io::Error),
    /// Something answered, but not in HTTP.
    #[error("not an HTTP answer: {0}")]
    NotHttp(String),
    /// An answer longer than any these APIs give: a peer on the tailnet must not fill our memory.
    #[error("the answer is longer than {} MiB", MAX_ANSWER_BYTES / (1024 * 1024))]
    TooLong,
}

/// The longest answer read: tailscaled's status of a large tailnet and Patroni's cluster view
/// are kilobytes.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// One request to `address` (`host:port`, also its `Host` header) over TCP, answered within
/// `timeout`: the status and body, or what went wrong in words.
pub(crate) async fn tcp_request(
    address: &str,
    request: Builder,
    body: String,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(address).await.map_err(Failure::Connection)?;
        exchange(stream, request.header(HOST, address), body).await
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
        .map_err(|e| e.to_string())
}

/// Sends `request` (method, path and headers; `User-Agent` and `Connection: close` are added)
/// with `body` over `stream`, and reads the answer to its end: the status and body.
pub(crate) async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    request: Builder,
    body: String,
) -> Result<(u16, String), Failure> {
    let request: Request<String> = request
        .header(USER_AGENT, "cabinet-db")
        .header(CONNECTION, "close")
        .body(body)
        .map_err(Failure::Request)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(failure)?;
    let answer = async move {
        let response = sender.send_request(request).await.map_err(failure)?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| match e.downcast::<hyper::Error>() {
                Ok(e) => failure(*e),
                Err(_) => Failure::TooLong,
            })?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    // The connection runs beside the exchange, in this task: when a timeout drops the
    // exchange, the socket closes with it.
    let answer = std::pin::pin!(answer);
    match futures_util::future::select(answer, connection).await {
        futures_util::future::Either::Left((answer, _)) => answer,
        futures_util::future::Either::Right((ended, answer)) => {
            ended.map_err(failure)?;
            answer.await
        }
    }
}

fn failure(e: hyper::Error) -> Failure {
    // A body that breaks HTTP's framing (a bad chunk size) comes as an I/O error of kind
    // InvalidInput or InvalidData: it is the answer that is wrong, not the connection.
    let bad_framing =
        std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>()).is_some_and(|io| {
            matches!(io.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData)
        });
    if e.is_parse() || bad_framing {
        Failure::NotHttp(chain(&e))
    } else {
        Failure::Connection(std::io::Error::other(e))
    }
}

/// An error and its causes, `outer: inner`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server of one connection on a local port: reads the request head, writes `answer`,
    /// closes.
    async fn answering(answer: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0];
                if stream.read(&mut byte).await.unwrap() == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            stream.write_all(answer).await.unwrap();
        });
        address
    }

    async fn get(answer: &'static [u8]) -> Result<(u16, String), String> {
        let address = answering(answer).await;
        tcp_request(
            &address,
            Request::get("/health?addr=[fd7a::1]:80"),
            String::new(),
            Duration::from_secs(5),
        )
        .await
    }

    #[tokio::test]
    async fn a_broken_chunk_is_a_bad_answer_not_a_bad_connection() {
        let answer =
            get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n").await;
        let error = answer.unwrap_err();
        assert!(error.starts_with("not an HTTP answer"), "{error}");
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
            let block = vec![b'x'; 64 * 1024];
            while stream.write_all(&block).await.is_ok() {}
        });
        let answer = tcp_request(&address, Request::get("/"), String::new(), Duration::from_secs(20)).await;
        assert_eq!(answer, Err("the answer is longer than 8 MiB".to_owned()));
    }

    #[tokio::test]
    async fn plain_chunked_and_close_delimited_bodies_are_read_to_their_end() {
        let plain =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        assert_eq!(get(plain).await.unwrap(), (200, "{\"a\":1}".to_owned()));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(get(chunked).await.unwrap(), (404, "{\"a\":1}".to_owned()));
        let until_close = b"HTTP/1.1 200 OK\r\n\r\nno length, \xff";
        assert_eq!(get(until_close).await.unwrap(), (200, "no length, \u{fffd}".to_owned()));
    }

    #[tokio::test]
    async fn what_is_not_http_or_not_there_is_said_in_words() {
        let not_http = get(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await.unwrap_err();
        assert!(not_http.starts_with("not an HTTP answer: "), "{not_http}");
        let closed = get(b"").await.unwrap_err();
        assert!(closed.starts_with("cannot reach it: "), "{closed}");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        let refused = tcp_request(&address, Request::get("/"), String::new(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(refused.starts_with("cannot reach it: "), "{refused}");
    }

    #[tokio::test]
    async fn a_silent_server_is_no_answer_within_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let silent = tcp_request(&address, Request::get("/"), String::new(), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(silent, "no answer within 1 s");
    }
}
