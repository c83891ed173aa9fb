//! The `taskapi healthcheck` client: a minimal HTTP/1.1 GET against this instance (the
//! probes themselves are served by `routes::health`).
//! The runtime image is distroless (no shell, no curl), so the binary probes itself.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn probe(port: u16, path: &str) -> anyhow::Result<()> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = vec![0u8; 64];
        let read = stream.read(&mut head).await?;
        anyhow::Ok(String::from_utf8_lossy(&head[..read]).to_string())
    };
    let head = tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .context("health probe timed out")??;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        println!("{path}: ok");
        Ok(())
    } else {
        bail!("{path}: unhealthy (status {status:?})")
    }
}
