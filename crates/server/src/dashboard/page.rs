//! The page frame (header, navigation, messages) and small pieces every
//! page uses: times, state badges, the CSRF field, error pages.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::client::Refusal;
use super::guard::Signed;
use super::session::Reach;

/// Where a page sits in the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Events,
    Buckets,
    Tokens,
    Functions,
    Tunnels,
    Agents,
    None,
}

/// A whole page: `title`, the navigation for `signed` (none before sign-in)
/// and `main`.
pub(super) fn frame(title: &str, signed: Option<&Signed>, nav: Nav, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hookrelay" }
                link rel="stylesheet" href="/ui/assets/ui.css";
                link rel="icon" href="/ui/assets/icon.svg" type="image/svg+xml";
                script src="/ui/assets/ui.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "hookrelay" }
                    @if let Some(signed) = signed { (navigation(signed, nav)) }
                }
                main #main {
                    @if let Some(flash) = signed.and_then(|s| s.session.flash.as_ref()) {
                        @let class = if flash.error { "flash error" } else { "flash ok" };
                        p class=(class) role=(if flash.error { "alert" } else { "status" }) { (flash.text) }
                    }
                    (main)
                }
            }
        }
    }
}

fn navigation(signed: &Signed, current: Nav) -> Markup {
    let admin = signed.session.reach != Reach::Read;
    let item = |nav: Nav, href: &str, label: &str| {
        html! {
            li { a href=(href) aria-current=[(nav == current).then_some("page")] { (label) } }
        }
    };
    html! {
        nav aria-label="Main" {
            ul {
                (item(Nav::Events, "/ui/", "Events"))
                @if admin {
                    (item(Nav::Buckets, "/ui/buckets", "Buckets"))
                    (item(Nav::Tokens, "/ui/tokens", "Tokens"))
                    (item(Nav::Functions, "/ui/functions", "Functions"))
                    (item(Nav::Tunnels, "/ui/tunnels", "Tunnels"))
                    (item(Nav::Agents, "/ui/agents", "Agents"))
                }
            }
        }
        div.who {
            @if signed.session.reach == Reach::Admin {
                form.inline method="post" action="/ui/tenant" {
                    (csrf(signed))
                    label for="tenant-pick" { "Tenant" }
                    input #tenant-pick name="tenant" value=(signed.session.tenant.as_str()) size="12" required;
                    button type="submit" { "Switch" }
                }
            } @else {
                span { "Tenant " code { (signed.session.tenant.as_str()) } }
            }
            form.inline method="post" action="/ui/signout" {
                (csrf(signed))
                button type="submit" { "Sign out" }
            }
        }
    }
}

/// The hidden CSRF field every state-changing form carries.
pub(super) fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.session.csrf); }
}

/// A page as an answer.
pub(super) fn respond(status: StatusCode, page: Markup) -> Response {
    (status, Html(page.into_string())).into_response()
}

/// An error page with `message`, without navigation.
pub(super) fn error_page(status: StatusCode, message: &str) -> Response {
    let main = html! {
        h1 { (status.canonical_reason().unwrap_or("Error")) }
        p role="alert" { (message) }
        p { a href="/ui/" { "Back to the events" } }
    };
    respond(status, frame("Error", None, Nav::None, main))
}

/// What a page shows when the API refused it: the same status and message.
pub(super) fn refusal(signed: &Signed, refusal: &Refusal) -> Response {
    let main = html! {
        h1 { (refusal.status.as_u16()) " " (refusal.status.canonical_reason().unwrap_or("")) }
        p role="alert" { code { (refusal.code) } ": " (refusal.message) }
        p { a href="/ui/" { "Back to the events" } }
    };
    respond(
        refusal.status,
        frame("Error", Some(signed), Nav::None, main),
    )
}

/// Any other path under `/ui`.
pub(super) async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "There is no such page.")
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm` UTC.
pub(super) fn time(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}:{s:02}.{milli:03}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DDTHH:MM` (a `datetime-local` value, UTC) to milliseconds.
pub(super) fn parse_local(text: &str) -> Option<i64> {
    let (date, clock) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (date.next()??, date.next()??, date.next()??);
    let mut clock = clock.splitn(3, ':');
    let h = clock.next()?.parse::<i64>().ok()?;
    let min = clock.next()?.parse::<i64>().ok()?;
    let s = clock.next().map_or(Some(0.0), |s| s.parse::<f64>().ok())?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    Some(((days * 24 + h) * 60 + min) * 60_000 + (s * 1000.0) as i64)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A delivery state as a badge (text, never colour alone).
pub(super) fn badge(state: &str) -> Markup {
    html! { span class={ "badge " (state) } { (state) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_and_parse_as_utc() {
        assert_eq!(time(0), "1970-01-01 00:00:00.000");
        assert_eq!(time(1_711_324_800_123), "2024-03-25 00:00:00.123");
        assert_eq!(parse_local("2024-03-25T00:00"), Some(1_711_324_800_000));
        assert_eq!(parse_local("2024-02-29T12:30:05"), Some(1_709_209_805_000));
        assert_eq!(parse_local("2024-13-01T00:00"), None);
        assert_eq!(parse_local("yesterday"), None);
    }
}
