//! The wire format: the streaming decoder fed whole, byte by byte, in random splits and
//! with hostile bytes; replies to unknown types, malformed payloads and oversized
//! headers.

mod common;

use proptest::prelude::*;
use xenstore::wire::{split_args, Decoder, HEADER_LEN, PAYLOAD_MAX};
use xenstore::{Message, MsgType, ProtocolError, XsError};

fn decode_all(decoder: &mut Decoder, mut bytes: &[u8]) -> Result<Vec<Message>, ProtocolError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (used, message) = decoder.push(bytes)?;
        out.extend(message);
        bytes = &bytes[used..];
    }
    Ok(out)
}

#[test]
fn header_layout_is_xen_s() {
    let m = Message::with_args(MsgType::Read, 7, 9, &[b"a"]);
    let bytes = m.encode();
    assert_eq!(
        &bytes[..HEADER_LEN],
        &[2, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0]
    );
    assert_eq!(&bytes[HEADER_LEN..], b"a\0");
}

#[test]
fn byte_by_byte_decoding() {
    let first = Message::with_args(MsgType::Write, 1, 0, &[b"/a", b"v"]);
    let second = Message::new(MsgType::TransactionStart, 2, 0, Vec::new());
    let mut stream = first.encode();
    stream.extend(second.encode());
    let mut decoder = Decoder::new();
    let mut got = Vec::new();
    for byte in &stream {
        assert!(decoder.wanted() >= 1);
        let (used, message) = decoder.push(core::slice::from_ref(byte)).unwrap();
        assert_eq!(used, 1);
        got.extend(message);
    }
    assert_eq!(got, vec![first, second]);
}

#[test]
fn push_stops_after_one_message() {
    let a = Message::with_args(MsgType::Read, 1, 0, &[b"x"]).encode();
    let mut stream = a.clone();
    stream.extend(&a);
    let (used, message) = Decoder::new().push(&stream).unwrap();
    assert_eq!(used, a.len());
    assert!(message.is_some());
}

#[test]
fn oversized_length_breaks_the_stream() {
    let mut header = Vec::new();
    for word in [2u32, 1, 0, (PAYLOAD_MAX + 1) as u32] {
        header.extend(word.to_le_bytes());
    }
    let mut decoder = Decoder::new();
    assert_eq!(decoder.push(&header), Err(ProtocolError::TooLong(4097)));
    assert_eq!(decoder.wanted(), 0);
    assert!(decoder.push(&[0]).is_err());
}

#[test]
fn maximum_payload_is_accepted() {
    let m = Message::new(MsgType::Write, 1, 0, vec![b'a'; PAYLOAD_MAX]);
    assert_eq!(
        decode_all(&mut Decoder::new(), &m.encode()).unwrap(),
        vec![m]
    );
}

#[test]
fn unknown_type_gets_enosys_under_its_id() {
    let (mut store, dom0) = common::store();
    let reply = store.process(
        dom0,
        &Message {
            kind: 20,
            req_id: 42,
            tx_id: 0,
            payload: vec![],
        },
    );
    assert_eq!(reply.error(), Some(XsError::Nosys));
    assert_eq!(reply.req_id, 42);
    let reply = store.process(
        dom0,
        &Message {
            kind: 9999,
            req_id: 43,
            tx_id: 0,
            payload: vec![],
        },
    );
    assert_eq!(reply.error(), Some(XsError::Nosys));
}

#[test]
fn malformed_payloads_get_einval() {
    let (mut store, dom0) = common::store();
    for (kind, payload) in [
        (MsgType::Read, b"/local".to_vec()),            // no NUL
        (MsgType::Read, b"/local\0extra\0".to_vec()),   // two arguments
        (MsgType::Read, b"\0".to_vec()),                // empty path
        (MsgType::Read, b"/a b\0".to_vec()),            // bad character
        (MsgType::Read, b"/a//b\0".to_vec()),           // empty component
        (MsgType::Read, b"/a/\0".to_vec()),             // trailing slash
        (MsgType::Write, b"/a".to_vec()),               // no NUL after the path
        (MsgType::Watch, b"/a\0".to_vec()),             // no token
        (MsgType::TransactionEnd, b"X\0".to_vec()),     // not T or F
        (MsgType::SetPerms, b"/local\0x0\0".to_vec()),  // bad perm letter
        (MsgType::SetPerms, b"/local\0r01\0".to_vec()), // leading zero
        (MsgType::SetPerms, b"/local\0".to_vec()),      // no perms
        (MsgType::GetDomainPath, b"-1\0".to_vec()),
    ] {
        let reply = store.process(dom0, &Message::new(kind, 5, 0, payload.clone()));
        assert_eq!(reply.error(), Some(XsError::Inval), "{kind:?} {payload:?}");
    }
}

#[test]
fn long_paths_are_refused() {
    let (mut store, dom0) = common::store();
    let long = format!("/{}", "a".repeat(3072));
    assert_eq!(store.write(dom0, 0, &long, b"v"), Err(XsError::Inval));
    let ok = format!("/{}", "a".repeat(3071));
    assert_eq!(store.write(dom0, 0, &ok, b"v"), Ok(()));
    let d = common::domain(&mut store, dom0, 1);
    assert_eq!(
        store.write(d, 0, &"a".repeat(2049), b"v"),
        Err(XsError::Inval)
    );
}

#[test]
fn split_args_counts_exactly() {
    assert_eq!(split_args::<2>(b"a\0b\0").unwrap(), [&b"a"[..], &b"b"[..]]);
    assert!(split_args::<2>(b"a\0").is_err());
    assert!(split_args::<1>(b"").is_err());
}

fn arb_message() -> impl Strategy<Value = Message> {
    (
        0u32..30,
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(kind, req_id, tx_id, payload)| Message {
            kind,
            req_id,
            tx_id,
            payload,
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..10_000)) {
        let mut decoder = Decoder::new();
        let _ = decode_all(&mut decoder, &bytes);
        let (mut store, dom0) = common::store();
        let d = store.connect(5);
        let _ = store.receive(d, &bytes);
        let _ = store.receive(dom0, &bytes);
        for _ in 0..5 {
            store.serve_round(4);
        }
    }

    #[test]
    fn valid_streams_decode_exactly(
        messages in proptest::collection::vec(arb_message(), 0..20),
        cuts in proptest::collection::vec(1usize..64, 1..200),
    ) {
        let stream: Vec<u8> = messages.iter().flat_map(Message::encode).collect();
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        let (mut at, mut i) = (0, 0);
        while at < stream.len() {
            let end = (at + cuts[i % cuts.len()]).min(stream.len());
            got.extend(decode_all(&mut decoder, &stream[at..end]).unwrap());
            at = end;
            i += 1;
        }
        prop_assert_eq!(got, messages);
    }

    #[test]
    fn hostile_requests_get_replies_not_panics(kind in 0u32..25, payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (mut store, dom0) = common::store();
        let d = common::domain(&mut store, dom0, 3);
        let reply = store.process(d, &Message { kind, req_id: 1, tx_id: 0, payload: payload.clone() });
        prop_assert_eq!(reply.req_id, 1);
        let reply = store.process(dom0, &Message { kind, req_id: 2, tx_id: 0, payload });
        prop_assert_eq!(reply.req_id, 2);
    }
}
