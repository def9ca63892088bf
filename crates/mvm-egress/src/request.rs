//! The one request a guest connection may make: `CONNECT host:port`, read
//! up to the blank line that ends its head. Input is untrusted bytes.

use std::io::{self, BufRead, Read};

use crate::{GateError, Grant};

/// Longest request head accepted; a CONNECT needs a few hundred bytes.
pub const MAX_HEAD: usize = 16 * 1024;

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Ask {
    Connect(Grant),
    /// Anything but CONNECT (`METHOD target`, raw): plain HTTP is not
    /// relayed.
    Other(String),
}

/// Reads the request head (up to the blank line) and says what it asks.
/// Bytes after the head stay in `reader`. A read that times out is an
/// `Io` error of kind `TimedOut` or `WouldBlock`.
pub fn read_request(reader: &mut impl BufRead) -> Result<Ask, GateError> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader
            .by_ref()
            .take((MAX_HEAD - head.len()) as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(GateError::BadRequest(
                "the connection closed before a request".into(),
            ));
        }
        head.extend_from_slice(&line);
        if head.len() > MAX_HEAD {
            return Err(GateError::BadRequest("request head too long".into()));
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    parse_head(&head)
}

/// Parses a complete head.
fn parse_head(head: &[u8]) -> Result<Ask, GateError> {
    let head = String::from_utf8_lossy(head);
    let first = head.lines().next().unwrap_or_default();
    let bad = || GateError::BadRequest(format!("`{first}`"));
    let mut words = first.split_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(bad());
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad());
    }
    if method != "CONNECT" {
        return Ok(Ask::Other(format!("{method} {target}")));
    }
    Ok(Ask::Connect(Grant::parse(target).map_err(|_| {
        GateError::BadRequest(format!("CONNECT target `{target}` is not HOST:PORT"))
    })?))
}

/// Whether an I/O error is a read timeout (`SO_RCVTIMEO` reports
/// `WouldBlock` on Unix).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn ask(bytes: &[u8]) -> Result<Ask, GateError> {
        read_request(&mut Cursor::new(bytes.to_vec()))
    }

    #[test]
    fn connect_requests_parse_and_keep_what_follows() {
        let mut r = Cursor::new(b"CONNECT PyPI.org:443 HTTP/1.1\r\nHost: x\r\n\r\nTLS".to_vec());
        assert_eq!(
            read_request(&mut r).unwrap(),
            Ask::Connect(Grant::new("pypi.org", 443))
        );
        let mut rest = String::new();
        r.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "TLS");
    }

    #[test]
    fn other_methods_and_garbage_are_refused() {
        assert_eq!(
            ask(b"GET http://x/ HTTP/1.1\r\n\r\n").unwrap(),
            Ask::Other("GET http://x/".into())
        );
        for bad in [
            &b"\x16\x03\x01 hello\r\n\r\n"[..],
            b"CONNECT pypi.org:443 HTTP/1.1\r\n",
            b"CONNECT pypi.org:443 HTTP/1.1 extra\r\n\r\n",
            b"CONNECT pypi.org HTTP/1.1\r\n\r\n",
            b"CONNECT \x1b]0;pwned\x07:443 HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(ask(bad), Err(GateError::BadRequest(_))), "{bad:?}");
        }
        let long = format!(
            "CONNECT pypi.org:443 HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD)
        );
        assert!(matches!(
            ask(long.as_bytes()),
            Err(GateError::BadRequest(_))
        ));
    }
}
