//! The HTTP/1 framing guard in front of hyper (`server::fuzzing::
//! http1_framing`): a stranger's bytes before any request is read.
//!
//! Input: the first byte chooses the read size (1 to 256 bytes), the rest
//! is the connection's byte stream. Asserts: no panic; what reaches hyper
//! and the verdict do not depend on how the stream is split into reads
//! (the same as one whole read); never more passes than was sent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use server::fuzzing::http1_framing;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, stream)) = data.split_first() else {
        return;
    };
    let whole = http1_framing(stream, stream.len().max(1));
    let split = http1_framing(stream, usize::from(piece) + 1);
    assert!(whole.0 <= stream.len());
    assert_eq!(whole, split, "the verdict depends on the reads");
});
