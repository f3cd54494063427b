//! Signed-in browsers: an opaque random cookie maps to the credential it
//! was exchanged for, held in this process's memory only.
//!
//! Memory, not the store: a restart signs everyone out (they paste the
//! token again), and on several nodes a browser must stick to one node
//! (or sign in on each). The credential is never written anywhere, and a
//! cookie is useless without this map. Bounded by [`MAX_SESSIONS`]: at the
//! cap, expired sessions are swept and then the least recently used one
//! is dropped, so sign-ins cannot grow memory without bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use model::{Secret, TenantId};
use rand::RngCore;

/// Sessions held at once: ~10k browsers is far beyond one relay's
/// operators, and 10k × ~300 B is 3 MB.
pub(super) const MAX_SESSIONS: usize = 10_000;
/// A session unused this long is gone (DESIGN §11: 12 h idle).
pub(super) const IDLE: Duration = Duration::from_secs(12 * 3600);
/// The cookie's name.
pub(super) const COOKIE: &str = "hookrelay_session";

/// What a signed-in browser may do, fixed at sign-in (a token's scope
/// never changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    /// The admin: every tenant, picked in the page header.
    Admin,
    /// A tenant token: administers its tenant.
    Tenant,
    /// A poll token: reads events only.
    Read,
}

/// One signed-in browser.
#[derive(Clone)]
pub(super) struct Session {
    /// The bearer credential the API is called with.
    pub(super) credential: Secret,
    pub(super) reach: Reach,
    /// The tenant the admin acts on (`X-Hookrelay-Tenant`); ignored for
    /// tokens, which carry their own.
    pub(super) tenant: TenantId,
    /// The CSRF token every form of this session carries.
    pub(super) csrf: String,
    /// One message for the next page (a save, a refusal).
    pub(super) flash: Option<Flash>,
    last_used: Instant,
}

/// A one-time message shown at the top of the next page.
#[derive(Clone, Debug)]
pub(super) struct Flash {
    pub(super) error: bool,
    pub(super) text: String,
}

/// The map of session id digests to sessions.
pub(super) struct Sessions {
    cap: usize,
    idle: Duration,
    /// Keyed by the SHA-256 of the cookie value, so a lookup never compares
    /// a secret byte by byte.
    map: Mutex<HashMap<[u8; 32], Session>>,
}

fn key(cookie: &str) -> [u8; 32] {
    crate::secrets::digest(cookie)
}

/// 32 random bytes, URL-safe base64.
pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Session {
    /// A session that is not stored: what sign-in checks a credential with
    /// before any memory is spent on it.
    pub(super) fn unsaved(credential: Secret, reach: Reach) -> Self {
        Self {
            credential,
            reach,
            tenant: TenantId::default_tenant(),
            csrf: String::new(),
            flash: None,
            last_used: Instant::now(),
        }
    }
}

impl Sessions {
    pub(super) fn new(cap: usize, idle: Duration) -> Self {
        Self {
            cap,
            idle,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session and returns its cookie value.
    pub(super) fn open(&self, credential: Secret, reach: Reach) -> String {
        let cookie = random_token();
        let now = Instant::now();
        let session = Session {
            csrf: random_token(),
            ..Session::unsaved(credential, reach)
        };
        let mut map = self.lock();
        if map.len() >= self.cap {
            map.retain(|_, s| now.duration_since(s.last_used) < self.idle);
        }
        if map.len() >= self.cap {
            let oldest = map.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(key(&cookie), session);
        cookie
    }

    /// The live session of `cookie`, marked as used now (and its flash
    /// message taken).
    pub(super) fn touch(&self, cookie: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.lock();
        let k = key(cookie);
        let session = map.get_mut(&k)?;
        if now.duration_since(session.last_used) >= self.idle {
            map.remove(&k);
            return None;
        }
        session.last_used = now;
        let out = session.clone();
        session.flash = None;
        Some(out)
    }

    /// Applies `f` to the session of `cookie`, if it is still there.
    pub(super) fn update(&self, cookie: &str, f: impl FnOnce(&mut Session)) {
        if let Some(session) = self.lock().get_mut(&key(cookie)) {
            f(session);
        }
    }

    /// Signs out: the cookie no longer opens anything.
    pub(super) fn revoke(&self, cookie: &str) {
        self.lock().remove(&key(cookie));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_capped_and_the_least_recently_used_goes_first() {
        let sessions = Sessions::new(2, IDLE);
        let a = sessions.open(Secret::new("a"), Reach::Read);
        let b = sessions.open(Secret::new("b"), Reach::Read);
        assert!(sessions.touch(&a).is_some());
        let c = sessions.open(Secret::new("c"), Reach::Read);
        assert_eq!(sessions.len(), 2);
        assert!(sessions.touch(&b).is_none(), "b was used least recently");
        assert!(sessions.touch(&a).is_some());
        assert!(sessions.touch(&c).is_some());
    }

    #[test]
    fn an_idle_session_expires_and_a_revoked_one_is_gone() {
        let sessions = Sessions::new(10, Duration::ZERO);
        let a = sessions.open(Secret::new("a"), Reach::Admin);
        assert!(sessions.touch(&a).is_none(), "idle longer than zero");

        let sessions = Sessions::new(10, IDLE);
        let a = sessions.open(Secret::new("a"), Reach::Admin);
        assert!(sessions.touch(&a).is_some());
        sessions.revoke(&a);
        assert!(sessions.touch(&a).is_none());
    }

    #[test]
    fn a_flash_message_is_shown_once() {
        let sessions = Sessions::new(10, IDLE);
        let a = sessions.open(Secret::new("a"), Reach::Tenant);
        sessions.update(&a, |s| {
            s.flash = Some(Flash {
                error: false,
                text: "saved".into(),
            })
        });
        assert!(sessions.touch(&a).and_then(|s| s.flash).is_some());
        assert!(sessions.touch(&a).and_then(|s| s.flash).is_none());
    }
}
