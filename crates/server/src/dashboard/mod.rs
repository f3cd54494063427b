//! The web dashboard at `/ui/` (DESIGN §11): server-rendered HTML (maud),
//! one embedded stylesheet and one small hand-written script (the live tail
//! and copy buttons), under a strict Content-Security-Policy.
//!
//! The dashboard is a client of the JSON API, in-process: every page calls
//! the API's own router (`client`) with the session's bearer credential, so
//! authentication, tenant narrowing, 404s and validation messages are the
//! API's, never a second copy. A browser holds only an opaque session
//! cookie; the credential stays in server memory (`session`). Depends on
//! `api` (its router) and `auth` (nothing else of it).
//!
//! Start at [`router`]; then `guard` (the session, CSRF and same-origin
//! checks every page goes through), `client`, and the pages: `signin`,
//! `events`, `event`, `tail`, `manage/`.

mod assets;
mod client;
mod event;
mod events;
mod guard;
mod hints;
mod manage;
mod newest;
mod page;
mod session;
mod signin;
mod tail;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// The largest form the dashboard reads (a form carries at most an input's
/// ten secrets or an output's 64 headers: a few KiB), so an unauthenticated
/// sign-in POST cannot make the server hold more.
const FORM_LIMIT: usize = 64 * 1024;

/// What every dashboard handler shares.
#[derive(Clone)]
pub(crate) struct Ui(Arc<Shared>);

pub(crate) struct Shared {
    /// The relay's state: configuration, shutdown.
    app: AppState,
    /// The JSON API, called in-process.
    api: client::Api,
    /// Signed-in browsers.
    sessions: session::Sessions,
}

impl std::ops::Deref for Ui {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The dashboard's routes; `api` is the JSON API's router with its state.
pub(crate) fn router(app: AppState, api: Router) -> Router<AppState> {
    let ui = Ui(Arc::new(Shared {
        api: client::Api::new(api),
        sessions: session::Sessions::new(session::MAX_SESSIONS, session::IDLE),
        app,
    }));
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .merge(assets::router())
        .merge(signin::router())
        .merge(events::router())
        .merge(event::router())
        .merge(tail::router())
        .merge(manage::router())
        .route("/ui/{*rest}", axum::routing::any(page::not_found))
        .layer(axum::middleware::map_response(guard::security_headers))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .with_state(ui)
}
