//! Unit tests of `request_body.rs`: reading, framing and normalizing.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll},
};

use http_body::Frame;

use super::*;

/// A body of the frames given, in order.
struct Frames(VecDeque<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
}

async fn data(frames: Vec<Frame<Bytes>>) -> Bytes {
    data_of(Frames(frames.into())).await.expect("infallible")
}

#[tokio::test]
async fn a_body_is_its_data_frames_joined_whatever_their_number() {
    let one = Bytes::from_static(b"{\"id\":1}");
    let alone = data(vec![Frame::data(one.clone())]).await;
    assert_eq!(alone, one);
    assert_eq!(alone.as_ptr(), one.as_ptr(), "one frame is not copied");
    let trailers = Frame::trailers(HeaderMap::new());
    let split = vec![
        Frame::data(Bytes::new()),
        Frame::data(Bytes::from_static(b"{\"id\"")),
        trailers,
        Frame::data(Bytes::new()),
        Frame::data(Bytes::from_static(b":1")),
        Frame::data(Bytes::from_static(b"}")),
    ];
    assert_eq!(data(split).await, one);
    assert!(data(vec![]).await.is_empty());
}

#[test]
fn normalized_headers_say_json_and_the_judged_length_in_one_spelling() {
    let normalized = |pairs: &[(&'static str, &'static str)], len: usize| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        normalize(&mut headers, len);
        let all = |name| -> Vec<_> { headers.get_all(name).iter().cloned().collect() };
        (all(header::CONTENT_TYPE), all(header::CONTENT_LENGTH))
    };
    let json = || vec![HeaderValue::from_static("application/json")];
    let length = |n: usize| vec![HeaderValue::from(n)];
    for (pairs, len) in [
        (
            &[
                ("content-type", "application/json"),
                ("content-length", "12"),
            ][..],
            12,
        ),
        (
            &[
                ("content-type", "Application/JSON"),
                ("content-length", "012"),
            ],
            12,
        ),
        (&[("content-type", "application/json; charset=utf-8")], 12),
        (&[("content-length", "+12"), ("content-length", "12")], 12),
        (
            &[("content-length", "7"), ("transfer-encoding", "chunked")],
            12,
        ),
        (&[("content-length", "0")], 10_000_000_000),
    ] {
        assert_eq!(normalized(pairs, len), (json(), length(len)), "{pairs:?}");
    }
    let none = (vec![], vec![]);
    let empty = [
        ("content-type", "application/json"),
        ("content-length", "0"),
    ];
    assert_eq!(normalized(&empty[..], 0), none);
    let mut digits = [0; 20];
    for n in [0, 9, 10, 4096, usize::MAX] {
        assert_eq!(decimal(n, &mut digits), n.to_string().as_bytes());
    }
}

fn with_type(value: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
    headers
}

#[test]
fn only_json_in_utf8_is_read_as_json() {
    for ok in [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=\"UTF-8\"",
    ] {
        assert!(is_json_utf8(&with_type(ok)), "{ok}");
    }
    for refused in [
        "text/plain",
        "application/json-seq",
        "application/jsonx",
        "application/json; charset=utf-16",
        "application/json; charset=utf-8; boundary=x",
        "application/json, text/plain",
        "multipart/form-data; boundary=x",
    ] {
        assert!(!is_json_utf8(&with_type(refused)), "{refused}");
    }
    let mut twice = with_type("application/json");
    twice.append(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    assert!(!is_json_utf8(&twice));
    assert!(!is_json_utf8(&HeaderMap::new()));
}
