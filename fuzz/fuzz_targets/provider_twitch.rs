//! The `twitch` integration's header and payload parsers on
//! arbitrary input; see `common/provider.rs`.

#![no_main]

#[path = "common/provider.rs"]
mod provider;

libfuzzer_sys::fuzz_target!(|input: provider::Input<'_>| {
    provider::run(model::IntegrationKind::Twitch, input)
});
