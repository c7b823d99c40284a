//! Input sources: local files and HTTP(S) URLs, read in chunks, starting at a resume offset.

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

enum Inner {
    File(tokio::fs::File),
    Http(reqwest::Response),
}

pub struct Input {
    inner: Inner,
    /// Total size in bytes when known (for the progress bar).
    pub total_len: Option<u64>,
    /// Bytes still to discard before the resume offset (a server that ignored the Range header).
    skip: u64,
}

const CHUNK: usize = 256 * 1024;

/// Opens `source` positioned at `offset`.
pub async fn open(source: &str, offset: u64) -> anyhow::Result<Input> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(20))
            .user_agent(concat!("dvmdash/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut req = client.get(source);
        if offset > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot fetch {source}"))?;
        let status = resp.status();
        anyhow::ensure!(status.is_success(), "{source} answered {status}");
        let partial = status == reqwest::StatusCode::PARTIAL_CONTENT;
        let len = resp.content_length();
        Ok(Input {
            total_len: len.map(|l| if partial { l + offset } else { l }),
            skip: if partial { 0 } else { offset },
            inner: Inner::Http(resp),
        })
    } else {
        let mut f = tokio::fs::File::open(source)
            .await
            .with_context(|| format!("cannot open {source}"))?;
        let len = f.metadata().await.ok().map(|m| m.len());
        if offset > 0 {
            f.seek(std::io::SeekFrom::Start(offset)).await?;
        }
        Ok(Input {
            inner: Inner::File(f),
            total_len: len,
            skip: 0,
        })
    }
}

impl Input {
    /// The next chunk, `None` at the end.
    pub async fn next_chunk(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            let mut chunk = match &mut self.inner {
                Inner::File(f) => {
                    let mut buf = vec![0u8; CHUNK];
                    let n = f.read(&mut buf).await?;
                    if n == 0 {
                        return Ok(None);
                    }
                    buf.truncate(n);
                    buf
                }
                Inner::Http(r) => match r.chunk().await.context("download interrupted")? {
                    Some(b) => b.to_vec(),
                    None => return Ok(None),
                },
            };
            if self.skip > 0 {
                let drop = (self.skip as usize).min(chunk.len());
                chunk.drain(..drop);
                self.skip -= drop as u64;
                if chunk.is_empty() {
                    continue;
                }
            }
            return Ok(Some(chunk));
        }
    }
}
