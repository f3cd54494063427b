//! Sign-in (a token of any scope but `agent`, or the admin secret, pasted
//! once and exchanged for a session cookie), sign-out, and the admin's
//! choice of tenant.

use axum::extract::{ConnectInfo, Form, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;
use maud::html;
use model::Secret;

use super::client::{Caller, Refusal};
use super::guard::{self, Checked, Signed};
use super::page::{self, Nav};
use super::session::{Reach, Session, COOKIE};
use super::Ui;

pub(super) fn router() -> Router<Ui> {
    Router::new()
        .route("/ui/signin", get(form).post(sign_in))
        .route("/ui/signout", post(sign_out))
        .route("/ui/tenant", post(pick_tenant))
}

async fn form(signed: Result<Signed, guard::SignIn>) -> Response {
    if signed.is_ok() {
        return Redirect::to("/ui/").into_response();
    }
    show(StatusCode::OK, None)
}

fn show(status: StatusCode, error: Option<&str>) -> Response {
    let main = html! {
        h1 { "Sign in" }
        @if let Some(error) = error { p.flash.error role="alert" { (error) } }
        form.stack method="post" action="/ui/signin" {
            label for="credential" { "Token or admin secret" }
            input #credential type="password" name="credential" autocomplete="current-password"
                required autofocus aria-describedby="credential-hint";
            p.hint #credential-hint {
                "Paste a token (" code { "tok_….secret" } ") of scope admin, tenant or poll, "
                "or the admin secret. The first start of " code { "hookrelay serve" }
                " prints an admin token. Agent tokens cannot sign in."
            }
            button type="submit" { "Sign in" }
        }
    };
    page::respond(status, page::frame("Sign in", None, Nav::None, main))
}

#[derive(serde::Deserialize)]
struct SignInForm {
    credential: String,
}

async fn sign_in(
    State(ui): State<Ui>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if !guard::sign_in_allowed(&ui, &headers) {
        return page::error_page(
            StatusCode::FORBIDDEN,
            "the form did not come from this site",
        );
    }
    let credential = Secret::new(form.credential.trim());
    let probe = Session::unsaved(credential.clone(), Reach::Read);
    let caller = Caller {
        session: &probe,
        peer: peer.map(|Extension(p)| p),
        forwarded_for: headers.get("x-forwarded-for").cloned(),
    };
    let reach = match reach_of(&ui, &caller).await {
        Ok(reach) => reach,
        Err(refusal) => return show(refusal.status, Some(&why(&refusal))),
    };
    let cookie = ui.sessions.open(credential, reach);
    let secure = if ui.app.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    let set = format!("{COOKIE}={cookie}; Path=/ui; HttpOnly; SameSite=Strict{secure}");
    let mut response = Redirect::to("/ui/").into_response();
    if let Ok(value) = HeaderValue::from_str(&set) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// What the credential may do, asked of the API itself: reading events
/// (an agent token gets 404 there), administering (`/v1/buckets`), and
/// the whole server (`/api/tenants`).
async fn reach_of(ui: &Ui, caller: &Caller<'_>) -> Result<Reach, Refusal> {
    ui.api.get(caller, "/v1/events?limit=1").await?;
    if ui.api.get(caller, "/v1/buckets").await.is_err() {
        return Ok(Reach::Read);
    }
    match ui.api.call(caller, Method::GET, "/api/tenants", None).await {
        Ok(_) => Ok(Reach::Admin),
        Err(_) => Ok(Reach::Tenant),
    }
}

fn why(refusal: &Refusal) -> String {
    match refusal.status {
        StatusCode::UNAUTHORIZED => "That token or secret is not valid.".into(),
        StatusCode::NOT_FOUND => "Agent tokens cannot sign in to the dashboard.".into(),
        _ => refusal.message.clone(),
    }
}

async fn sign_out(State(ui): State<Ui>, checked: Checked) -> Response {
    ui.sessions.revoke(&checked.signed.cookie);
    let expire = format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0");
    let mut response = Redirect::to("/ui/signin").into_response();
    if let Ok(value) = HeaderValue::from_str(&expire) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn pick_tenant(State(ui): State<Ui>, checked: Checked) -> Response {
    let signed = &checked.signed;
    let Some(wanted) = checked.fields.get("tenant") else {
        return Redirect::to("/ui/").into_response();
    };
    if signed.session.reach != Reach::Admin {
        return page::error_page(StatusCode::NOT_FOUND, "There is no such page.");
    }
    let path = format!("/api/tenants/{}", urlencoding(wanted));
    match ui.api.get(&signed.caller(), &path).await {
        Ok(found) => {
            let id = found["id"].as_str().unwrap_or(wanted);
            if let Ok(tenant) = id.parse() {
                ui.sessions.update(&signed.cookie, |s| s.tenant = tenant);
            }
            signed.flash(&ui, false, format!("Now acting on tenant {id}."));
        }
        Err(refusal) => signed.flash(&ui, true, refusal.message),
    }
    Redirect::to("/ui/").into_response()
}

/// Percent-encodes a path segment or query value.
pub(super) fn urlencoding(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
