//! The dashboard in a real browser: headless Chromium over chromedriver
//! (see `driver`). These tests fail, never skip, when either is missing.
//! Screenshots of every page visited land in `<target>/tmp/ui-screenshots`.

mod driver;
mod flows;
mod manage;
mod security;

use driver::Browser;
use testkit::Relay;

/// The session cookie the browser holds, for requests made beside it.
pub(crate) async fn session_cookie(browser: &Browser) -> String {
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    let cookie = cookies
        .iter()
        .find(|c| c.name() == "hookrelay_session")
        .expect("a session cookie after sign-in");
    assert_eq!(
        cookie.http_only(),
        Some(true),
        "the session cookie is HttpOnly"
    );
    assert_eq!(
        cookie.path(),
        Some("/ui"),
        "the session cookie is scoped to /ui"
    );
    format!("hookrelay_session={}", cookie.value())
}

/// Signs in with `credential` and waits for the events page.
pub(crate) async fn sign_in(browser: &Browser, relay: &Relay, credential: &str) {
    browser.goto(&format!("{}/ui/", relay.url)).await;
    browser.fill("#credential", credential).await;
    browser
        .click("form[action='/ui/signin'] button[type=submit]")
        .await;
    browser.wait_for("#event-rows").await;
}

/// Rows of the table `css` as lists of cell texts.
pub(crate) async fn rows(browser: &Browser, css: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let rows = browser
        .client
        .find_all(fantoccini::Locator::Css(&format!("{css} tbody tr")))
        .await
        .expect("table rows");
    for row in rows {
        let mut cells = Vec::new();
        for cell in row
            .find_all(fantoccini::Locator::Css("td"))
            .await
            .expect("cells")
        {
            let text = cell.prop("textContent").await.expect("text");
            cells.push(text.unwrap_or_default());
        }
        out.push(cells);
    }
    out
}
