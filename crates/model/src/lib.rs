//! Domain types of hookrelay, named as in DESIGN §1: tenants, buckets, inputs,
//! outputs, tokens, events and deliveries, with their prefixed identifiers and
//! validation rules.
//!
//! No I/O and no async here: every other crate depends on this one, and this
//! one depends on nothing of ours. Start with [`ids`] for the identifier
//! newtypes, then [`objects`] for the administered objects and [`event`] for
//! what ingest produces; [`caps`] bounds the lists a tenant can grow;
//! [`tunnel`] is for HTTP tunnels, [`function`] for functions, [`channel`]
//! for smee and gosmee clients.

pub mod caps;
pub mod channel;
pub mod event;
pub mod function;
pub mod ids;
pub mod limits;
pub mod objects;
pub mod secret;
pub mod tunnel;

pub use channel::{Channel, MAX_CHANNELS_PER_BUCKET};
pub use event::{
    headers_from_text, headers_lossy, Attempt, Delivery, DeliveryState, Event, EventBody,
    EventMarks, Forwarded, NewEvent,
};
pub use function::Function;
pub use ids::{
    BucketId, ChannelId, EventId, FunctionId, IdError, InputId, OutputId, TenantId, TokenKey,
    TunnelId,
};
pub use limits::{InputRateLimit, Provisioning, RateCount};
pub use objects::{
    validate_slug, AgentMode, Bucket, BucketAuth, GenericHmac, HmacAlgorithm, Input,
    IntegrationKind, Output, RateLimit, ResponsePolicy, RetryPolicy, SealableAuth,
    SignatureEncoding, Tenant, Token, TokenScope, ValidationError,
};
pub use secret::Secret;
pub use tunnel::{validate_dns_label, Tunnel};
