//! `hookrelay send` end to end against a real `serve` (issue 18): for every
//! integration, the test webhook is accepted, stored and marked `verified`
//! by the relay's own check of that provider's scheme, with the provider's
//! delivery id where it has one; signed with the wrong secret it is refused
//! and nothing is stored.

use model::IntegrationKind;

use super::{cli, cli_json, Serve};

const ADMIN: &str = "admin-send";

/// The secret an input of `kind` holds and the one `send` signs with (they
/// differ for the public-key schemes), and a wrong one to sign with.
fn secrets(kind: IntegrationKind) -> (String, String, Option<&'static str>) {
    // Well-formed keys of one's own, as README's `send` section describes.
    let private = match kind {
        IntegrationKind::Discord => {
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
        }
        IntegrationKind::Sendgrid => {
            "MHcCAQEEIEQmZgBEh9DcU9zMl34czK3xov4AYvm9P3r7rNB2dNXtoAoGCCqGSM49AwEHoUQDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
        }
        IntegrationKind::Standard => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        _ => "send-test-secret",
    };
    let integration = verify::Integration::new(kind, None).expect("not generic-hmac");
    let held = verify::public_key(&integration, private).unwrap_or_else(|| private.to_owned());
    let wrong = match kind {
        IntegrationKind::Discord | IntegrationKind::Sendgrid => None,
        IntegrationKind::Standard => Some("whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"),
        _ => Some("not-the-secret"),
    };
    (held, private.to_owned(), wrong)
}

#[test]
fn r18_send_signs_every_integration_as_the_relay_verifies_it() {
    let data = tempfile::tempdir().unwrap();
    let serve = Serve::start(data.path(), &[("HOOKRELAY_ADMIN_SECRET", ADMIN)]);
    cli_json(
        &serve,
        ADMIN,
        &["admin", "--json", "bucket", "create", "send"],
    );
    let generic = ["--generic-header", "X-Signature"];
    let mut stored = 0;
    let mut failures = Vec::new();
    for &kind in IntegrationKind::ALL {
        let name = kind.name();
        let (held, signing, wrong) = if kind == IntegrationKind::GenericHmac {
            (
                "send-test-secret".to_owned(),
                "send-test-secret".to_owned(),
                Some("nope"),
            )
        } else {
            secrets(kind)
        };
        let mut create = vec![
            "admin",
            "--json",
            "input",
            "create",
            "--bucket",
            "send",
            "--name",
            name,
            "--integration",
            name,
            "--secret",
            &held,
        ];
        let extra: &[&str] = if kind == IntegrationKind::GenericHmac {
            &generic
        } else {
            &[]
        };
        create.extend_from_slice(extra);
        let input = cli_json(&serve, ADMIN, &create);
        let url = input["url"].as_str().expect("an input URL").to_owned();

        let send = |secret: &str| {
            let mut args = vec![
                "send",
                "--url",
                &url,
                "--integration",
                name,
                "--secret",
                secret,
            ];
            args.extend_from_slice(extra);
            // With the token, `send` first checks the input exists.
            cli(&serve, ADMIN, &args)
        };
        let (ok, out, err) = send(&signing);
        if !ok {
            failures.push(format!("{name}: {out} {err}"));
            continue;
        }
        stored += 1;
        if let Some(wrong) = wrong {
            let (ok, out, _) = send(wrong);
            assert!(!ok, "{name}: a wrong secret was accepted: {out}");
        }

        let page = cli_json(
            &serve,
            ADMIN,
            &["events", "--json", "list", "--limit", "500"],
        );
        let events = page["events"].as_array().expect("events");
        assert_eq!(events.len(), stored, "{name}: one event per good send only");
        let event = events
            .iter()
            .find(|e| e["input"] == input["id"])
            .unwrap_or_else(|| panic!("{name}: no event stored: {page}"));
        assert_eq!(event["integration"], name, "{event}");
        assert_eq!(event["verified"], true, "{name}: {event}");
        // The body is what `send` signed (Mailgun's and Twilio's
        // signatures ride in the body or the URL; the payload is the same).
        let body = event["body"].as_str().unwrap_or_default();
        assert!(body.contains("hookrelay test"), "{name}: {body}");
    }
    assert!(failures.is_empty(), "refused:\n{}", failures.join("\n"));
    assert!(serve.terminate().success());
}
