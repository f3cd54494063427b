//! The agent protocol's frame decoders (`proto`) on arbitrary bytes, as a
//! WebSocket peer can send them: never panic, and a frame that decodes
//! re-encodes to a frame that decodes to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    if let Ok(kind) = proto::decode_agent(frame) {
        let again = proto::encode(&proto::AgentMessage::from(kind.clone()));
        assert_eq!(proto::decode_agent(&again).expect("re-decodes"), kind);
    }
    if let Ok(kind) = proto::decode_server(frame) {
        let again = proto::encode(&proto::ServerMessage::from(kind.clone()));
        assert_eq!(proto::decode_server(&again).expect("re-decodes"), kind);
    }
});
