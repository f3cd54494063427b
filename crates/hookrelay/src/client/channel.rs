//! `hookrelay admin channel ...`: a bucket's channels for smee and gosmee
//! clients (`/v1/buckets/{id}/channels`, DESIGN §12). The URLs appear once,
//! in what `create` prints: they are the capability.

use reqwest::Method;

use super::collection::Collection;
use super::http::ApiClient;
use super::table::{cell, Column, View};

/// Verbs on channels.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum ChannelCommand {
    /// Make a channel; prints its smee and gosmee URLs (shown only now).
    Create {
        /// Bucket id or name.
        #[arg(long)]
        bucket: String,
    },
    /// List a bucket's channels (without their URLs).
    List {
        /// Bucket id or name.
        #[arg(long)]
        bucket: String,
    },
    /// Revoke a channel: its URLs stop working and open streams end.
    Delete {
        /// Bucket id or name.
        #[arg(long)]
        bucket: String,
        /// Channel id (`chn_...`).
        id: String,
    },
}

const COLUMNS: &[Column] = &[
    ("ID", |v| cell(v, "/id")),
    ("BUCKET", |v| cell(v, "/bucket")),
    ("CLIENTS", |v| cell(v, "/clients")),
    ("CURSOR", |v| cell(v, "/cursor")),
    ("CREATED", |v| cell(v, "/createdAt")),
];

const CHANNELS: Collection = Collection {
    api: "v1",
    name: "channels",
    noun: "channel",
    columns: COLUMNS,
};

/// Runs one channel verb.
pub(crate) async fn run(api: &ApiClient, view: View, cmd: ChannelCommand) -> anyhow::Result<()> {
    match cmd {
        ChannelCommand::Create { bucket } => CHANNELS.create_in(api, view, &bucket, None).await,
        ChannelCommand::List { bucket } => CHANNELS.list_in(api, view, &bucket).await,
        ChannelCommand::Delete { bucket, id } => {
            api.send(
                Method::DELETE,
                &["v1", "buckets", &bucket, "channels", &id],
                None,
            )
            .await?;
            view.deleted("channel", &id);
            Ok(())
        }
    }
}
