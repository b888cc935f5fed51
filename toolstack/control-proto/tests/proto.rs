//! Host tests of the wire format: every message round-trips, the decoder
//! survives any bytes, skips garbage, and reports bad frames.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is the test failing, with its location"
)]

use control_proto::*;
use proptest::prelude::*;

fn spec() -> CreateSpec {
    CreateSpec {
        name: "guest".into(),
        memory_mib: 64,
        seclabel: Some("system_u:system_r:untrusted_t".into()),
        command_line: "console=hvc0 é".into(),
        cpu_weight: Some(512),
        on_crash: ExitAction::Restart,
        on_poweroff: ExitAction::Destroy,
        on_reboot: ExitAction::Preserve,
        kernel_bytes: 123_456,
        kernel_sha256: [0xAB; 32],
    }
}

fn every_request() -> Vec<Request> {
    let name = || DomainRef::Name("banking".into());
    vec![
        Request::List,
        Request::Info,
        Request::Destroy { domain: name() },
        Request::Shutdown {
            domain: DomainRef::Id(3),
        },
        Request::Pause { domain: name() },
        Request::Unpause {
            domain: DomainRef::Id(u32::MAX),
        },
        Request::Console { domain: name() },
        Request::Dmesg,
        Request::GetEnforce,
        Request::SetEnforce {
            mode: EnforceMode::Permissive,
        },
        Request::SetEnforce {
            mode: EnforceMode::Enforcing,
        },
        Request::LoadPolicy {
            size: 4096,
            sha256: [7; 32],
        },
        Request::BlockList { domain: name() },
        Request::StoreLs {
            path: "/local/domain/3".into(),
        },
        Request::Create(spec()),
        Request::Create(CreateSpec {
            seclabel: None,
            cpu_weight: None,
            ..spec()
        }),
        Request::Chunk {
            offset: 32768,
            bytes: (0..=255).collect(),
        },
        Request::Chunk {
            offset: 0,
            bytes: vec![0x5A; MAX_CHUNK_BYTES],
        },
        Request::Commit,
    ]
}

fn every_response() -> Vec<Response> {
    vec![
        Response::Ok,
        Response::Error {
            errno: errno::EACCES,
            message: "avc: denied { destroy } for domid=4".into(),
        },
        Response::Domains(vec![]),
        Response::Domains(vec![
            DomainEntry {
                id: 0,
                name: "control".into(),
                label: "system_u:system_r:control_t".into(),
                memory_kib: 8192,
                vcpus: 1,
                state: DomainState(DomainState::RUNNING),
                cpu_time_ns: 1_500_000_000,
            },
            DomainEntry {
                id: 7,
                name: "crashy".into(),
                label: String::new(),
                memory_kib: u64::MAX,
                vcpus: 1,
                state: DomainState(DomainState::SHUTDOWN | DomainState::CRASHED),
                cpu_time_ns: 0,
            },
        ]),
        Response::Text(b"hello\r\n\x1b[0m".to_vec()),
        Response::End,
        Response::Info(HypervisorInfo {
            version: "xen-core 0.1.0".into(),
            total_memory_kib: 512 * 1024,
            free_memory_kib: 300 * 1024,
            domains: 4,
            mode: EnforceMode::Enforcing,
        }),
        Response::Enforce(EnforceMode::Permissive),
        Response::Created { id: 5 },
        Response::Blocks(vec![BlockDevice {
            vdev: 51712,
            backend_id: 2,
            handle: 0,
            state: 4,
            event_channel: 3,
            ring_ref: 8,
            backend_path: "/local/domain/2/backend/vbd/3/51712".into(),
        }]),
    ]
}

/// Decodes every frame in `bytes`, returning frames and errors in order.
fn decode_all(bytes: &[u8]) -> Vec<Result<Frame, FrameError>> {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    decoder.push_all(bytes, |event| events.push(event));
    events
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn every_request_round_trips() {
    for (index, request) in every_request().into_iter().enumerate() {
        let bytes = request.encode(index as u32 + 100).unwrap();
        let events = decode_all(&bytes);
        assert_eq!(events.len(), 1, "{request:?}");
        let frame = events[0].clone().unwrap();
        assert_eq!(frame.request_id, index as u32 + 100);
        assert_eq!(frame.kind, request.kind());
        assert!(frame.kind < 0x80);
        assert_eq!(Request::from_frame(&frame).unwrap(), request);
        // A request is not a response.
        assert!(Response::from_frame(&frame).is_err());
    }
}

#[test]
fn every_response_round_trips() {
    for response in every_response() {
        let bytes = response.encode(0xDEAD_BEEF).unwrap();
        let frame = decode_all(&bytes)[0].clone().unwrap();
        assert_eq!(frame.request_id, 0xDEAD_BEEF);
        assert!(frame.kind >= 0x80);
        assert_eq!(Response::from_frame(&frame).unwrap(), response);
        assert!(Request::from_frame(&frame).is_err());
    }
}

#[test]
fn the_header_layout_is_as_documented() {
    let bytes = Request::Pause {
        domain: DomainRef::Id(3),
    }
    .encode(0x0102_0304)
    .unwrap();
    assert_eq!(&bytes[0..4], b"XLCP");
    assert_eq!(bytes[4], VERSION);
    assert_eq!(bytes[5], kind::PAUSE);
    assert_eq!(&bytes[6..8], &[0, 0]);
    assert_eq!(&bytes[8..12], &[4, 3, 2, 1]);
    assert_eq!(&bytes[12..16], &[5, 0, 0, 0]);
    let payload = &bytes[HEADER_BYTES..];
    assert_eq!(payload, &[0, 3, 0, 0, 0]);
    assert_eq!(&bytes[16..20], &crc32(payload).to_le_bytes());
    assert_eq!(&bytes[20..24], &crc32(&bytes[..20]).to_le_bytes());
}

#[test]
fn payload_encodings_are_as_documented() {
    let mut payload = Vec::new();
    Request::Console {
        domain: DomainRef::Name("ab".into()),
    }
    .encode_payload(&mut payload);
    assert_eq!(payload, [1, 2, 0, 0, 0, b'a', b'b']);
    payload.clear();
    Response::Error {
        errno: -3,
        message: "x".into(),
    }
    .encode_payload(&mut payload);
    assert_eq!(payload, [0xFD, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0, b'x']);
    payload.clear();
    Request::Chunk {
        offset: 2,
        bytes: vec![9],
    }
    .encode_payload(&mut payload);
    assert_eq!(payload, [2, 0, 0, 0, 1, 0, 0, 0, 9]);
}

#[test]
fn bad_payloads_are_refused() {
    use MessageError::*;
    assert_eq!(Request::decode(kind::PAUSE, &[0, 3, 0, 0]), Err(Truncated));
    assert_eq!(Request::decode(kind::LIST, &[0]), Err(TrailingBytes(1)));
    assert_eq!(
        Request::decode(kind::PAUSE, &[2, 3, 0, 0, 0]),
        Err(InvalidValue {
            field: "domain",
            value: 2
        })
    );
    assert_eq!(
        Request::decode(kind::CONSOLE, &[1, 1, 0, 0, 0, 0xFF]),
        Err(InvalidUtf8)
    );
    assert_eq!(
        Request::decode(kind::SET_ENFORCE, &[2]),
        Err(InvalidValue {
            field: "mode",
            value: 2
        })
    );
    assert_eq!(Request::decode(0x7F, &[]), Err(UnknownKind(0x7F)));
    assert_eq!(
        Response::decode(kind::LIST, &[]),
        Err(UnknownKind(kind::LIST))
    );
    // A string length past the payload's end.
    assert_eq!(
        Request::decode(kind::STORE_LS, &[0xFF, 0xFF, 0xFF, 0xFF]),
        Err(Truncated)
    );
    // A list count far beyond the payload: no huge allocation, just truncated.
    assert_eq!(
        Response::decode(kind::DOMAINS, &[0xFF, 0xFF, 0xFF, 0xFF]),
        Err(Truncated)
    );
    // Unknown state flags.
    let mut payload = Vec::new();
    Response::Domains(vec![DomainEntry {
        id: 1,
        name: "a".into(),
        label: "b".into(),
        memory_kib: 1,
        vcpus: 1,
        state: DomainState(0x40),
        cpu_time_ns: 1,
    }])
    .encode_payload(&mut payload);
    assert_eq!(
        Response::decode(kind::DOMAINS, &payload),
        Err(InvalidValue {
            field: "state",
            value: 0x40
        })
    );
}

#[test]
fn state_letters_follow_xen() {
    assert_eq!(&DomainState(0).letters(), b"------");
    assert_eq!(&DomainState(DomainState::RUNNING).letters(), b"r-----");
    assert_eq!(
        &DomainState(DomainState::BLOCKED | DomainState::PAUSED).letters(),
        b"-bp---"
    );
    assert_eq!(&DomainState(DomainState::ALL).letters(), b"rbpscd");
}

#[test]
fn domain_refs_parse_like_xl() {
    assert_eq!(DomainRef::parse("3"), DomainRef::Id(3));
    assert_eq!(DomainRef::parse("007"), DomainRef::Id(7));
    assert_eq!(DomainRef::parse("+3"), DomainRef::Name("+3".into()));
    assert_eq!(DomainRef::parse("d3"), DomainRef::Name("d3".into()));
    assert_eq!(
        DomainRef::parse("99999999999"),
        DomainRef::Name("99999999999".into())
    );
    assert_eq!(DomainRef::Id(4).to_string(), "4");
}

#[test]
fn oversize_payloads_are_not_encoded() {
    let request = Request::Chunk {
        offset: 0,
        bytes: vec![0; MAX_PAYLOAD_BYTES],
    };
    assert!(matches!(request.encode(1), Err(EncodeError::Oversize(_))));
    let frame = Frame {
        kind: kind::TEXT,
        request_id: 1,
        payload: vec![0; MAX_PAYLOAD_BYTES + 1],
    };
    assert_eq!(
        frame.encode(),
        Err(EncodeError::Oversize(MAX_PAYLOAD_BYTES + 1))
    );
    // Exactly the limit is fine.
    let frame = Frame {
        payload: vec![1; MAX_PAYLOAD_BYTES],
        ..frame
    };
    let bytes = frame.encode().unwrap();
    assert_eq!(decode_all(&bytes), vec![Ok(frame)]);
}

/// A header for `length` bytes with a valid header checksum.
fn header(version: u8, reserved: u16, length: u32) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&MAGIC);
    header.push(version);
    header.push(kind::TEXT);
    header.extend_from_slice(&reserved.to_le_bytes());
    header.extend_from_slice(&9u32.to_le_bytes());
    header.extend_from_slice(&length.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    let checksum = crc32(&header);
    header.extend_from_slice(&checksum.to_le_bytes());
    header
}

#[test]
fn bad_frames_are_reported_and_skipped() {
    let good = Response::End.encode(42).unwrap();
    let expect_one = |prefix: Vec<u8>, error: FrameError| {
        let mut bytes = prefix;
        bytes.extend_from_slice(&good);
        let events = decode_all(&bytes);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0], Err(error));
        assert_eq!(events[1].clone().unwrap().request_id, 42);
    };
    expect_one(header(2, 0, 0), FrameError::UnsupportedVersion(2));
    expect_one(header(VERSION, 1, 0), FrameError::ReservedNotZero(1));
    expect_one(
        header(VERSION, 0, MAX_PAYLOAD_BYTES as u32 + 1),
        FrameError::Oversize(MAX_PAYLOAD_BYTES as u32 + 1),
    );
    let mut corrupt_header = Response::Ok.encode(1).unwrap();
    corrupt_header[9] ^= 1;
    expect_one(corrupt_header, FrameError::HeaderChecksum);
    let mut corrupt_payload = Response::Created { id: 3 }.encode(1).unwrap();
    corrupt_payload[HEADER_BYTES] ^= 0x80;
    expect_one(
        corrupt_payload,
        FrameError::PayloadChecksum {
            kind: kind::CREATED,
            request_id: 1,
        },
    );
}

#[test]
fn a_truncated_frame_does_not_hide_the_next_one() {
    // A connection dropped halfway through a frame; the next frame's bytes
    // first fill the dead frame's payload, fail its checksum, and are then
    // found again.
    let dead = Response::Text(vec![b'x'; 100]).encode(1).unwrap();
    let mut bytes = dead[..60].to_vec();
    for id in 2..6 {
        bytes.extend(Response::Created { id }.encode(id).unwrap());
    }
    let events = decode_all(&bytes);
    let frames: Vec<u32> = events
        .iter()
        .filter_map(|event| event.as_ref().ok())
        .map(|frame| frame.request_id)
        .collect();
    assert!(matches!(
        events[0],
        Err(FrameError::PayloadChecksum { request_id: 1, .. })
    ));
    assert_eq!(frames, [2, 3, 4, 5]);
}

#[test]
fn byte_by_byte_feeding_finds_the_same_frames() {
    let mut bytes = b"noise XLC XLCPgarbage".to_vec();
    let mut expected = Vec::new();
    for (index, response) in every_response().into_iter().enumerate() {
        bytes.extend(response.encode(index as u32).unwrap());
        bytes.extend_from_slice(b"\r\n");
        expected.push(response);
    }
    let mut decoder = Decoder::new();
    let mut found = Vec::new();
    for byte in &bytes {
        assert_eq!(decoder.push(core::slice::from_ref(byte)), 1);
        while let Some(event) = decoder.next_event() {
            if let Ok(frame) = event {
                found.push(Response::from_frame(&frame).unwrap());
            }
        }
    }
    assert_eq!(found, expected);
    assert_eq!(decoder.buffered_bytes(), 0);
    assert!(decoder.discarded_bytes() >= 21);
}

#[test]
fn the_buffer_is_bounded() {
    let mut decoder = Decoder::new();
    // A header announcing the largest payload, then more than fits.
    let mut bytes = header(VERSION, 0, MAX_PAYLOAD_BYTES as u32);
    bytes.extend(vec![0u8; MAX_FRAME_BYTES * 2]);
    let taken = decoder.push(&bytes);
    assert_eq!(taken, MAX_FRAME_BYTES);
    assert_eq!(decoder.push(&bytes[taken..]), 0);
    assert!(matches!(
        decoder.next_event(),
        Some(Err(FrameError::PayloadChecksum { .. }))
    ));
    assert!(decoder.next_event().is_none());
    assert!(decoder.buffered_bytes() <= MAGIC.len());
    decoder.reset();
    assert_eq!(decoder.buffered_bytes(), 0);
}

#[test]
fn errno_names() {
    assert_eq!(errno::name(errno::ESRCH), Some("ESRCH"));
    assert_eq!(errno::name(13), Some("EACCES"));
    assert_eq!(errno::name(i32::MIN), None);
    assert_eq!(errno::name(-999), None);
}

fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    (0usize..every_response().len(), any::<u32>()).prop_map(|(index, id)| {
        let mut all: Vec<Vec<u8>> = every_response()
            .iter()
            .map(|response| response.encode(id).unwrap())
            .collect();
        all.extend(
            every_request()
                .iter()
                .map(|request| request.encode(id).unwrap()),
        );
        all.swap_remove(index)
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)
    ) {
        let mut decoder = Decoder::new();
        for chunk in &chunks {
            decoder.push_all(chunk, |event| {
                if let Ok(frame) = event {
                    let _ = Request::from_frame(&frame);
                    let _ = Response::from_frame(&frame);
                }
            });
            prop_assert!(decoder.buffered_bytes() <= MAX_FRAME_BYTES);
        }
    }

    #[test]
    fn arbitrary_payloads_never_panic_message_decoding(kind in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Request::decode(kind, &payload);
        let _ = Response::decode(kind, &payload);
    }

    #[test]
    fn garbage_before_a_frame_is_skipped(
        garbage in proptest::collection::vec(any::<u8>(), 0..500),
        frame in any_frame(),
        split in any::<usize>(),
    ) {
        // Garbage may itself hold a stray magic and valid-looking header
        // fragments; the frame after it must still come out intact, and
        // nothing but errors may come before it.
        let mut bytes = garbage.clone();
        bytes.extend_from_slice(&frame);
        // Pad so a stray header in the garbage announcing a payload is
        // completed and rejected by its checksum.
        let mut after = frame.clone();
        after.extend(vec![0u8; MAX_FRAME_BYTES]);
        after.extend_from_slice(&frame);
        bytes.extend_from_slice(&after[frame.len()..]);
        let split = split % (bytes.len() + 1);
        let mut decoder = Decoder::new();
        let mut frames = Vec::new();
        decoder.push_all(&bytes[..split], |event| if let Ok(found) = event { frames.push(found) });
        decoder.push_all(&bytes[split..], |event| if let Ok(found) = event { frames.push(found) });
        let expected = decode_all(&frame)[0].clone().unwrap();
        prop_assert!(!frames.is_empty());
        prop_assert_eq!(frames.last(), Some(&expected));
    }

    #[test]
    fn garbage_without_magic_is_skipped_at_once(
        garbage in proptest::collection::vec(any::<u8>().prop_filter("no X", |byte| *byte != b'X'), 0..500),
        frame in any_frame(),
    ) {
        let mut bytes = garbage.clone();
        bytes.extend_from_slice(&frame);
        let events = decode_all(&bytes);
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(events[0].clone().map(|found| found.encode().unwrap()), Ok(frame));
    }
}
