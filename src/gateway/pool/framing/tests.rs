//! The framing rules on byte strings: heads, lengths, chunked bodies, split
//! at every point a socket could split them, and what is refused.

use proptest::prelude::*;

use super::*;

fn head_of(text: &str, method: &Method) -> Result<Option<Head>, Malformed> {
    parse_head(&mut BytesMut::from(text), method)
}

fn whole_head(text: &str) -> Head {
    head_of(text, &Method::POST)
        .expect("a valid head")
        .expect("a whole head")
}

fn refused(text: &str) -> &'static str {
    match head_of(text, &Method::POST) {
        Err(Malformed(why)) => why,
        Ok(head) => panic!("accepted {text:?}: {head:?}"),
    }
}

/// Decodes `body` fed in pieces of `piece` bytes: the data, the trailers,
/// and the bytes left after the body's end.
fn decode(
    mut decoder: Decoder,
    body: &[u8],
    piece: usize,
) -> Result<(Vec<u8>, Option<HeaderMap>, usize), Malformed> {
    let mut read = BytesMut::new();
    let mut rest = body;
    let mut data = Vec::new();
    loop {
        match decoder.step(&mut read)? {
            Step::Data(bytes) => {
                assert!(!bytes.is_empty(), "an empty data frame");
                data.extend_from_slice(&bytes);
            }
            Step::End(trailers) => return Ok((data, trailers, read.len() + rest.len())),
            Step::NeedMore if rest.is_empty() => return Err(Malformed("test: body cut short")),
            Step::NeedMore => {
                let (now, later) = rest.split_at(piece.min(rest.len()));
                read.extend_from_slice(now);
                rest = later;
            }
        }
    }
}

#[test]
fn a_head_gives_status_headers_and_a_reusable_length() {
    let head = whole_head(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-A: 1\r\nx-a: 2\r\ncontent-length: 12\r\n\r\n",
    );
    assert_eq!(head.parts.status, StatusCode::OK);
    assert_eq!(head.parts.headers["content-type"], "text/event-stream");
    let values: Vec<_> = head.parts.headers.get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
    assert_eq!(head.body, Decoder::Length(12));
    assert!(head.reusable);
}

#[test]
fn a_head_is_taken_out_of_the_buffer_and_the_body_left() {
    let mut read = BytesMut::from("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let head = parse_head(&mut read, &Method::GET)
        .expect("valid")
        .expect("whole");
    assert_eq!(head.body, Decoder::Length(2));
    assert_eq!(&read[..], b"ok");
}

#[test]
fn a_partial_head_asks_for_more_and_takes_nothing() {
    let text = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n";
    for end in 0..text.len() {
        let mut read = BytesMut::from(&text[..end]);
        assert!(
            parse_head(&mut read, &Method::GET)
                .expect("valid so far")
                .is_none(),
            "{end}"
        );
        assert_eq!(read.len(), end);
    }
}

#[test]
fn connection_scoped_fields_are_read_and_not_kept() {
    let head = whole_head(
        "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nx-hop: 1\r\nx-kept: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(head.body, Decoder::Chunked(Chunk::Size));
    let names: Vec<&str> = head.parts.headers.keys().map(HeaderName::as_str).collect();
    assert_eq!(names, ["x-kept"]);
}

#[test]
fn interim_answers_are_skipped() {
    let head = whole_head(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
    );
    assert_eq!(head.parts.status, StatusCode::CREATED);
    assert!(!head.parts.headers.contains_key("link"));
    assert!(head.body.is_end());
}

#[test]
fn answers_without_a_body_have_none_whatever_their_headers_say() {
    for (text, method) in [
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 40\r\n\r\n",
            Method::HEAD,
        ),
        (
            "HTTP/1.1 204 No Content\r\ncontent-length: 40\r\n\r\n",
            Method::POST,
        ),
        (
            "HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n",
            Method::GET,
        ),
    ] {
        let head = head_of(text, &method).expect("valid").expect("whole");
        assert!(head.body.is_end(), "{text:?}");
        assert!(head.reusable, "{text:?}");
    }
}

#[test]
fn a_body_without_a_length_runs_to_the_close_and_ends_the_connection() {
    for text in ["HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\n"] {
        let head = whole_head(text);
        assert_eq!(head.body, Decoder::UntilClose);
        assert!(!head.reusable, "{text:?}");
    }
}

#[test]
fn close_or_http_1_0_ends_the_connection_after_the_answer() {
    for text in [
        "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n",
    ] {
        assert!(!whole_head(text).reusable, "{text:?}");
    }
    assert!(
        whole_head("HTTP/1.1 200 OK\r\nconnection: closed\r\ncontent-length: 0\r\n\r\n").reusable
    );
}

#[test]
fn framings_two_readers_could_read_differently_are_refused() {
    for text in [
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 0x2\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: identity\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: xchunked\r\n\r\n",
    ] {
        refused(text);
    }
}

#[test]
fn malformed_heads_and_protocol_switches_are_refused() {
    for text in [
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
        "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        "HTTP/1.1 200 OK\r\nname : value\r\n\r\n",
        "HTTP/1.1 200 OK\r\nfolded: a\r\n b\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n",
    ] {
        refused(text);
    }
    let many: String = (0..=MAX_HEADERS).map(|n| format!("x-{n}: v\r\n")).collect();
    assert_eq!(
        refused(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")),
        "too many headers"
    );
    let huge = format!("HTTP/1.1 200 OK\r\nx: {}\r\n", "v".repeat(MAX_HEAD));
    assert_eq!(refused(&huge), "head too large");
}

#[test]
fn a_length_body_ends_at_its_length_and_leaves_what_follows() {
    let (data, trailers, left) = decode(Decoder::Length(5), b"hello, next", 3).expect("valid");
    assert_eq!(data, b"hello");
    assert!(trailers.is_none());
    assert_eq!(left, 6);
}

#[test]
fn a_chunked_body_is_decoded_with_extensions_and_trailers() {
    let body = b"5;name=value\r\nhello\r\n7 ; x\r\n, world\r\n0\r\nx-checksum: 1\r\n\r\n";
    for piece in 1..body.len() {
        let (data, trailers, left) =
            decode(Decoder::Chunked(Chunk::Size), body, piece).expect("valid");
        assert_eq!(data, b"hello, world", "pieces of {piece}");
        assert_eq!(trailers.expect("trailers")["x-checksum"], "1");
        assert_eq!(left, 0);
    }
}

#[test]
fn malformed_chunked_bodies_are_refused() {
    for body in [
        &b"5\nhello\r\n0\r\n\r\n"[..],
        b"5\r\nhelloX\r\n0\r\n\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"5 x\r\nhello\r\n0\r\n\r\n",
        b"5;a\rb\r\nhello\r\n0\r\n\r\n",
        b"11111111111111111\r\n",
        b"0\r\nbad trailer\r\n\r\n",
    ] {
        let result = decode(Decoder::Chunked(Chunk::Size), body, body.len());
        assert!(
            matches!(result, Err(Malformed(why)) if !why.starts_with("test")),
            "{:?}: {result:?}",
            String::from_utf8_lossy(body)
        );
    }
    // A line that never ends is refused once it is longer than any chunk
    // line need be, not buffered on.
    let endless = vec![b'a'; MAX_CHUNK_LINE + 2];
    assert_eq!(
        decode(Decoder::Chunked(Chunk::Size), &endless, 100),
        Err(Malformed("chunk-size line too long"))
    );
    let mut long_extension = b"5;".to_vec();
    long_extension.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE + 1));
    assert_eq!(
        decode(
            Decoder::Chunked(Chunk::Size),
            &long_extension,
            long_extension.len()
        ),
        Err(Malformed("chunk-size line too long"))
    );
}

/// `data` in chunks of the given sizes (an empty chunk is skipped: it would
/// end the body), with an optional extension on each.
fn chunked(data: &[u8], sizes: &[usize], extension: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().expect("sizes")).clamp(1, rest.len());
        let (chunk, later) = rest.split_at(size);
        out.extend_from_slice(format!("{size:X}").as_bytes());
        if extension {
            out.extend_from_slice(b";ext=\"v\"");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        rest = later;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

proptest! {
    /// Any data, chunked any way and read in any pieces, decodes to itself,
    /// and the bytes after the body stay in the buffer for the next answer.
    #[test]
    fn generated_chunked_bodies_decode_to_their_data(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        sizes in proptest::collection::vec(1usize..200, 1..8),
        extension in any::<bool>(),
        piece in 1usize..64,
        after in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut body = chunked(&data, &sizes, extension);
        body.extend_from_slice(&after);
        let (decoded, trailers, left) = decode(Decoder::Chunked(Chunk::Size), &body, piece)
            .expect("a valid body");
        prop_assert_eq!(decoded, data);
        prop_assert!(trailers.is_none());
        prop_assert_eq!(left, after.len());
    }

    /// A chunked body with one byte changed either decodes (the byte was
    /// data, or a hex digit for another) or is refused; it never reads past
    /// the end of what the upstream sent, nor panics.
    #[test]
    fn generated_corrupted_chunked_bodies_never_panic(
        data in proptest::collection::vec(any::<u8>(), 1..200),
        sizes in proptest::collection::vec(1usize..50, 1..4),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        piece in 1usize..32,
    ) {
        let mut body = chunked(&data, &sizes, false);
        let at = at.index(body.len());
        body[at] = byte;
        if let Ok((decoded, _, left)) = decode(Decoder::Chunked(Chunk::Size), &body, piece) {
            prop_assert!(decoded.len() + left <= body.len());
        }
    }

    /// Heads with any header bytes parse or are refused, never panic; a
    /// parsed head's values are the bytes sent.
    #[test]
    fn generated_heads_parse_or_are_refused(
        name in "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}",
        value in proptest::collection::vec(
            // Line ends would start another header line, not a value.
            any::<u8>().prop_map(|byte| if byte == b'\r' || byte == b'\n' { b' ' } else { byte }),
            0..40,
        ),
    ) {
        let mut text = b"HTTP/1.1 200 OK\r\n".to_vec();
        text.extend_from_slice(name.as_bytes());
        text.extend_from_slice(b": ");
        text.extend_from_slice(&value);
        text.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
        let lowercase = name.to_ascii_lowercase();
        if let Ok(Some(head)) = parse_head(&mut BytesMut::from(&text[..]), &Method::GET)
            && lowercase != "content-length"
            && !is_hop_by_hop(&lowercase)
        {
            let sent = head.parts.headers.get(name.as_str()).expect("the header");
            prop_assert_eq!(sent.as_bytes(), value.trim_ascii());
        }
    }
}
