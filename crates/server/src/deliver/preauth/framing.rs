//! Where messages start and end in an agent's byte stream, read from the
//! framing alone (no payload is parsed or kept): gRPC's 5-byte length
//! prefix (a flag byte and a big-endian u32), and WebSocket frame headers
//! (RFC 6455 §5.2), a message being data frames up to one with FIN.

/// What the bytes fed so far said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A message (or, on a WebSocket, one more fragment of one) of this
    /// many payload bytes begins.
    Start(usize),
    /// The message ended: everything announced since the last `End` has
    /// been received.
    End,
}

/// A transport's framing, fed the stream's bytes in order.
pub(crate) trait Framing {
    fn feed(&mut self, bytes: &[u8], on: &mut dyn FnMut(Event));
}

/// gRPC over HTTP/2: `[compressed flag][u32 length][payload]`, repeated.
#[derive(Debug, Default)]
pub(crate) struct Grpc {
    header: [u8; 5],
    have: usize,
    /// Payload bytes still to come; `None` while reading a header.
    remaining: Option<usize>,
}

impl Framing for Grpc {
    fn feed(&mut self, mut bytes: &[u8], on: &mut dyn FnMut(Event)) {
        while !bytes.is_empty() {
            if let Some(remaining) = self.remaining {
                let take = remaining.min(bytes.len());
                bytes = &bytes[take..];
                self.remaining = Some(remaining - take);
                if remaining == take {
                    self.remaining = None;
                    on(Event::End);
                }
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have == self.header.len() {
                self.have = 0;
                let [_, a, b, c, d] = self.header;
                let len = u32::from_be_bytes([a, b, c, d]) as usize;
                on(Event::Start(len));
                if len == 0 {
                    on(Event::End);
                } else {
                    self.remaining = Some(len);
                }
            }
        }
    }
}

/// WebSocket frames from a client (masked, but the mask is not checked
/// here: tungstenite refuses unmasked ones).
#[derive(Debug, Default)]
pub(crate) struct WebSocket {
    /// The longest header: 2 bytes, an 8-byte length, a 4-byte mask.
    header: [u8; 14],
    have: usize,
    /// Payload bytes still to come of the current frame, and whether it
    /// ends a data message; `None` while reading a header.
    payload: Option<(u64, bool)>,
}

impl WebSocket {
    /// The header's full length, once its first two bytes are in.
    fn header_len(&self) -> usize {
        let extended = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        2 + extended + mask
    }

    fn payload_len(&self) -> u64 {
        match self.header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => {
                let mut eight = [0u8; 8];
                eight.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(eight)
            }
            n => u64::from(n),
        }
    }
}

impl Framing for WebSocket {
    fn feed(&mut self, mut bytes: &[u8], on: &mut dyn FnMut(Event)) {
        while !bytes.is_empty() {
            if let Some((remaining, ends_message)) = self.payload {
                let take = remaining.min(bytes.len() as u64);
                bytes = &bytes[take as usize..];
                self.payload = Some((remaining - take, ends_message));
                if remaining == take {
                    self.payload = None;
                    if ends_message {
                        on(Event::End);
                    }
                }
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have < 2 || self.have < self.header_len() {
                continue;
            }
            self.have = 0;
            let len = self.payload_len();
            let fin = self.header[0] & 0x80 != 0;
            // Control frames (close, ping, pong: opcode 8 and up) carry at
            // most 125 bytes and may come between a message's fragments.
            let control = self.header[0] & 0x08 != 0;
            let ends_message = fin && !control;
            if !control {
                on(Event::Start(usize::try_from(len).unwrap_or(usize::MAX)));
            }
            if len == 0 {
                if ends_message {
                    on(Event::End);
                }
            } else {
                self.payload = Some((len, ends_message));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` one byte at a time and all at once; both must agree.
    fn events(framing: impl Fn() -> Box<dyn Framing>, bytes: &[u8]) -> Vec<Event> {
        let mut whole = Vec::new();
        framing().feed(bytes, &mut |e| whole.push(e));
        let mut dribbled = Vec::new();
        let mut f = framing();
        for b in bytes {
            f.feed(std::slice::from_ref(b), &mut |e| dribbled.push(e));
        }
        assert_eq!(whole, dribbled);
        whole
    }

    #[test]
    fn grpc_messages_are_found_by_their_length_prefix() {
        let mut bytes = vec![0, 0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0, 0];
        bytes.extend([0, 0x02, 0, 0, 0]); // 32 MiB announced, none sent
        let seen = events(|| Box::<Grpc>::default(), &bytes);
        use Event::{End, Start};
        assert_eq!(seen, [Start(3), End, Start(0), End, Start(32 << 20)]);
    }

    #[test]
    fn websocket_messages_end_at_fin_and_skip_control_frames() {
        let mut bytes = vec![0x82, 0x80 | 2, 1, 2, 3, 4, b'h', b'i']; // binary, fin
        bytes.extend([0x02, 0x80 | 126, 0x01, 0x00, 9, 9, 9, 9]); // 256, no fin
        bytes.extend(vec![0u8; 256]);
        bytes.extend([0x89, 0x80 | 1, 0, 0, 0, 0, b'p']); // ping between fragments
        bytes.extend([0x80, 0x80, 1, 2, 3, 4]); // empty continuation, fin
        bytes.extend([0x82, 0x80 | 127, 0, 0, 0, 0, 0x02, 0, 0, 0, 1, 2, 3, 4]);
        let seen = events(|| Box::<WebSocket>::default(), &bytes);
        use Event::{End, Start};
        assert_eq!(
            seen,
            [Start(2), End, Start(256), Start(0), End, Start(32 << 20)]
        );
    }
}
