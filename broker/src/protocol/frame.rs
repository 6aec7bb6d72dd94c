//! Size-prefixed frames: a 4-byte big-endian length, then that many bytes.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size} is negative or zero")]
    BadSize { size: i32 },
    #[error("frame size {size} exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: i32, max: u32 },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame. `Ok(None)` is a clean close between frames.
///
/// The size is checked against `max_size` before anything is allocated, so a
/// hostile length cannot make the broker reserve memory it will never fill.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_size: u32,
) -> Result<Option<Bytes>, FrameError> {
    let mut size_bytes = [0u8; 4];
    match reader.read_exact(&mut size_bytes).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size_bytes);
    if size <= 0 {
        return Err(FrameError::BadSize { size });
    }
    if size as u32 > max_size {
        return Err(FrameError::TooLarge {
            size,
            max: max_size,
        });
    }
    // Filled by `read_buf` into spare capacity, so the body is never zeroed first.
    let size = size as usize;
    let mut body = BytesMut::with_capacity(size);
    while body.len() < size {
        let remaining = size - body.len();
        let mut rest = (&mut body).limit(remaining);
        if reader.read_buf(&mut rest).await? == 0 {
            return Err(FrameError::Truncated);
        }
    }
    Ok(Some(body.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8], max: u32) -> Result<Option<Bytes>, FrameError> {
        let mut reader = bytes;
        read_frame(&mut reader, max).await
    }

    #[tokio::test]
    async fn reads_a_frame_and_a_clean_close() {
        assert_eq!(
            read(&[0, 0, 0, 2, 7, 8], 10)
                .await
                .unwrap()
                .unwrap()
                .as_ref(),
            &[7, 8]
        );
        assert!(read(&[], 10).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn rejects_bad_sizes_and_truncation() {
        assert!(matches!(
            read(&[0xff, 0xff, 0xff, 0xfe], 10).await,
            Err(FrameError::BadSize { .. })
        ));
        assert!(matches!(
            read(&[0, 0, 0, 0], 10).await,
            Err(FrameError::BadSize { .. })
        ));
        assert!(matches!(
            read(&[0, 0, 0, 11], 10).await,
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            read(&[0, 0, 0, 5, 1, 2], 10).await,
            Err(FrameError::Truncated)
        ));
    }
}
