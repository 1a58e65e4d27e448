//! Spot interruption notices from the instance metadata service, with IMDSv2 tokens (C24).
//!
//! Every few seconds the poller asks `spot/instance-action`. A 404 means no notice; a 401 means
//! the session token expired, so a new one is fetched and the question asked again; a 200 is a
//! notice. The metadata service speaks plain HTTP/1.1, so a small client over a TCP stream is
//! enough.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN_PATH: &str = "/latest/api/token";
const NOTICE_PATH: &str = "/latest/meta-data/spot/instance-action";
const TOKEN_TTL_SECONDS: u64 = 21_600;
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks the metadata service at `endpoint` for spot interruption notices.
#[derive(Debug)]
pub struct NoticePoller {
    host_port: String,
    token: Option<(String, Instant)>,
}

impl NoticePoller {
    /// A poller for `endpoint` (`http://host:port`).
    pub fn new(endpoint: &str) -> Self {
        let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
        let host_port = rest.trim_end_matches('/').to_string();
        let host_port = if host_port.contains(':') { host_port } else { format!("{host_port}:80") };
        Self { host_port, token: None }
    }

    /// The notice body (`{"action":"terminate","time":...}`) if there is one.
    pub async fn check(&mut self) -> std::io::Result<Option<String>> {
        for _ in 0..2 {
            let token = self.token().await?;
            let headers = [("X-aws-ec2-metadata-token", token.as_str())];
            let (status, body) = self.call("GET", NOTICE_PATH, &headers).await?;
            match status {
                200 => return Ok(Some(body)),
                404 => return Ok(None),
                401 => {
                    tracing::debug!("instance metadata token rejected; fetching a new one");
                    self.token = None;
                }
                other => {
                    return Err(std::io::Error::other(format!(
                        "metadata service answered {other}"
                    )));
                }
            }
        }
        Err(std::io::Error::other("metadata service rejected a fresh token"))
    }

    async fn token(&mut self) -> std::io::Result<String> {
        if let Some((token, fetched)) = &self.token
            && fetched.elapsed() < Duration::from_secs(TOKEN_TTL_SECONDS - 60)
        {
            return Ok(token.clone());
        }
        let ttl = TOKEN_TTL_SECONDS.to_string();
        let (status, body) =
            self.call("PUT", TOKEN_PATH, &[("X-aws-ec2-metadata-token-ttl-seconds", &ttl)]).await?;
        if status != 200 || body.trim().is_empty() {
            return Err(std::io::Error::other(format!(
                "no metadata token (HTTP {status}); inside a container, check the hop limit"
            )));
        }
        let token = body.trim().to_string();
        self.token = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<(u16, String)> {
        let exchange = async {
            let mut stream = TcpStream::connect(&self.host_port).await?;
            let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host_port);
            for (name, value) in headers {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
            request.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            parse_response(&String::from_utf8_lossy(&response))
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange).await.map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "metadata service timed out")
        })?
    }
}

fn parse_response(text: &str) -> std::io::Result<(u16, String)> {
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_give_status_and_body() {
        let (status, body) =
            parse_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").expect("parse");
        assert_eq!((status, body.as_str()), (200, "ok"));
        assert!(parse_response("garbage").is_err());
    }

    #[test]
    fn endpoints_get_a_port() {
        assert_eq!(NoticePoller::new("http://169.254.169.254").host_port, "169.254.169.254:80");
        assert_eq!(NoticePoller::new("http://127.0.0.1:9/").host_port, "127.0.0.1:9");
    }
}
