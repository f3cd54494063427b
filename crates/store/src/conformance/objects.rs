//! Conformance checks of the administered objects one by one: CRUD, unique
//! names and `NotFound` for missing objects.

use std::sync::Arc;

use model::{
    BucketAuth, GenericHmac, HmacAlgorithm, IntegrationKind, ResponsePolicy, Secret,
    SignatureEncoding, TokenScope,
};

use super::{
    assert_conflict, assert_not_found, bucket_in, input_in, output_in, tenant_record, token_in,
    unique, World,
};
use crate::Store;

/// Create, read, list, update and poll-secret of tenants.
pub async fn tenants(store: &Arc<dyn Store>) {
    let id = unique("tenants");
    let mut record = tenant_record(id.clone());
    record.poll_secret_hash = Some("$2b$10$poll".into());
    store.create_tenant(&record).await.expect("create tenant");
    assert_conflict(
        store.create_tenant(&record).await,
        "id",
        "second tenant with one id",
    );

    let read = store.tenant(&id).await.expect("read tenant");
    assert_eq!(read.tenant.label, record.tenant.label);
    assert!(read.tenant.enabled);
    assert_eq!(read.tenant.created_at, record.tenant.created_at);
    assert_eq!(read.poll_secret_hash.as_deref(), Some("$2b$10$poll"));
    let listed = store.list_tenants().await.expect("list tenants");
    assert!(listed.iter().any(|t| t.id == id));

    let mut changed = record.tenant.clone();
    changed.label = "Renamed".into();
    changed.enabled = false;
    store.update_tenant(&changed).await.expect("update tenant");
    let read = store.tenant(&id).await.expect("read tenant");
    assert_eq!(read.tenant.label, "Renamed");
    assert!(!read.tenant.enabled);

    store
        .set_poll_secret(&id, None)
        .await
        .expect("clear poll secret");
    assert_eq!(
        store.tenant(&id).await.expect("read").poll_secret_hash,
        None
    );
    store
        .set_poll_secret(&id, Some("h2"))
        .await
        .expect("set poll secret");
    assert_eq!(
        store
            .tenant(&id)
            .await
            .expect("read")
            .poll_secret_hash
            .as_deref(),
        Some("h2")
    );

    let missing = unique("missing");
    assert_not_found(store.tenant(&missing).await, "unknown tenant");
    changed.id = missing.clone();
    assert_not_found(store.update_tenant(&changed).await, "update unknown tenant");
    assert_not_found(
        store.set_poll_secret(&missing, None).await,
        "poll secret of unknown tenant",
    );
    assert_not_found(store.delete_tenant(&missing).await, "delete unknown tenant");
}

/// Buckets: unique names per tenant, auth round trip, update and delete.
pub async fn buckets(store: &Arc<dyn Store>) {
    let world = World::create(store, "buckets").await;
    let other = World::create(store, "buckets-other").await;
    let t = &world.tenant;
    let mut b = bucket_in(t, "second");
    b.auth = BucketAuth::Basic {
        username: "u".into(),
        password: Secret::new("pw"),
    };
    b.ephemeral = true;
    b.retention_seconds = 60;
    store.create_bucket(&b).await.expect("create bucket");
    assert_conflict(
        store.create_bucket(&bucket_in(t, "second")).await,
        "name",
        "same name",
    );
    store
        .create_bucket(&bucket_in(&other.tenant, "second"))
        .await
        .expect("the same name in another tenant is fine");
    assert_not_found(
        store
            .create_bucket(&bucket_in(&unique("nobody"), "x"))
            .await,
        "bucket of an unknown tenant",
    );

    let read = store.bucket(t, &b.id).await.expect("read bucket");
    assert_eq!(
        (read.name.as_str(), read.ephemeral, read.retention_seconds),
        ("second", true, 60)
    );
    match read.auth {
        BucketAuth::Basic { username, password } => {
            assert_eq!((username.as_str(), password.expose()), ("u", "pw"));
        }
        other => panic!("auth came back as {other:?}"),
    }
    assert_eq!(
        store.bucket_by_name(t, "second").await.expect("by name").id,
        b.id
    );
    let names: Vec<String> = store
        .list_buckets(t)
        .await
        .expect("list")
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let mut renamed = b.clone();
    renamed.name = "main".into();
    assert_conflict(
        store.update_bucket(&renamed).await,
        "name",
        "rename onto a taken name",
    );
    renamed.name = "third".into();
    renamed.enabled = false;
    renamed.auth = BucketAuth::Token {
        token: Secret::new("tk"),
    };
    store.update_bucket(&renamed).await.expect("update bucket");
    let read = store.bucket_by_name(t, "third").await.expect("renamed");
    assert!(!read.enabled);
    assert!(matches!(read.auth, BucketAuth::Token { token } if token.expose() == "tk"));
    assert_not_found(store.bucket_by_name(t, "second").await, "old name");

    store.delete_bucket(t, &b.id).await.expect("delete bucket");
    assert_not_found(store.bucket(t, &b.id).await, "deleted bucket");
    assert_not_found(store.delete_bucket(t, &b.id).await, "delete twice");
    assert_not_found(store.update_bucket(&renamed).await, "update deleted bucket");
}

/// Inputs: every field round-trips (secrets included), names are unique per
/// tenant when present, and tenant-less lookup by id works.
pub async fn inputs(store: &Arc<dyn Store>) {
    let world = World::create(store, "inputs").await;
    let other = World::create(store, "inputs-other").await;
    let t = &world.tenant;
    let mut i = input_in(&world.bucket, Some("signed"));
    i.integration = Some(IntegrationKind::GenericHmac);
    i.generic_hmac = Some(GenericHmac {
        header: "X-Signature".into(),
        algorithm: HmacAlgorithm::Sha256,
        encoding: SignatureEncoding::Hex,
        prefix: Some("sha256=".into()),
    });
    i.secrets = vec![Secret::new("newest"), Secret::new("older")];
    i.response = ResponsePolicy::Static {
        status: 202,
        headers: [("x-a".to_owned(), "b".to_owned())].into(),
        body: "ok".into(),
    };
    i.body_limit = Some(1024);
    i.rate_limit = Some(model::InputRateLimit {
        requests: 5,
        window_seconds: 10,
        count: model::RateCount::Refused,
    });
    store.create_input(&i).await.expect("create input");

    for read in [
        store.input(t, &i.id).await.expect("read input"),
        store.input_by_id(&i.id).await.expect("input by id"),
        store
            .input_by_name(t, "signed")
            .await
            .expect("input by name"),
    ] {
        assert_eq!(read.id, i.id);
        assert_eq!(
            (read.tenant.clone(), read.bucket.clone()),
            (i.tenant.clone(), i.bucket.clone())
        );
        assert_eq!(read.integration, i.integration);
        assert_eq!(read.generic_hmac, i.generic_hmac);
        let secrets: Vec<&str> = read.secrets.iter().map(Secret::expose).collect();
        assert_eq!(secrets, ["newest", "older"]);
        assert_eq!(read.response, i.response);
        assert_eq!(
            (read.body_limit, read.rate_limit),
            (i.body_limit, i.rate_limit)
        );
        assert_eq!(read.created_at, i.created_at);
    }

    assert_conflict(
        store
            .create_input(&input_in(&world.bucket, Some("signed")))
            .await,
        "name",
        "same input name in a tenant",
    );
    store
        .create_input(&input_in(&world.bucket, None))
        .await
        .expect("unnamed input");
    store
        .create_input(&input_in(&world.bucket, None))
        .await
        .expect("second unnamed input");
    store
        .create_input(&input_in(&other.bucket, Some("signed")))
        .await
        .expect("the same name in another tenant is fine");
    let mut foreign = input_in(&other.bucket, None);
    foreign.tenant = t.clone();
    assert_not_found(
        store.create_input(&foreign).await,
        "input in another tenant's bucket",
    );
    assert_eq!(
        store
            .list_inputs(t, &world.bucket.id)
            .await
            .expect("list")
            .len(),
        4
    );

    let mut changed = i.clone();
    changed.secrets = vec![Secret::new("rotated")];
    changed.enabled = false;
    changed.name = Some("hook".into());
    assert_conflict(
        store.update_input(&changed).await,
        "name",
        "rename onto a taken name",
    );
    changed.name = Some("renamed".into());
    store.update_input(&changed).await.expect("update input");
    let read = store
        .input_by_name(t, "renamed")
        .await
        .expect("renamed input");
    assert!(!read.enabled);
    assert_eq!(
        read.secrets.iter().map(Secret::expose).collect::<Vec<_>>(),
        ["rotated"]
    );

    store.delete_input(t, &i.id).await.expect("delete input");
    assert_not_found(store.input_by_id(&i.id).await, "deleted input by id");
    assert_not_found(store.delete_input(t, &i.id).await, "delete input twice");
    assert_not_found(store.update_input(&changed).await, "update deleted input");
}

/// Outputs: round trip, update, delete.
pub async fn outputs(store: &Arc<dyn Store>) {
    let world = World::create(store, "outputs").await;
    let t = &world.tenant;
    let mut o = output_in(&world.bucket);
    o.internal = false;
    o.headers = [("x-extra".to_owned(), "1".to_owned())].into();
    o.retry.max_attempts = 3;
    store.create_output(&o).await.expect("create output");
    let read = store.output(t, &o.id).await.expect("read output");
    assert_eq!(
        (read.url.as_str(), read.internal, read.timeout_ms),
        (o.url.as_str(), false, o.timeout_ms)
    );
    assert_eq!((read.headers, read.retry), (o.headers.clone(), o.retry));
    assert_eq!(
        store
            .list_outputs(t, &world.bucket.id)
            .await
            .expect("list")
            .len(),
        3
    );
    let mut foreign = output_in(&world.bucket);
    foreign.tenant = unique("nobody");
    assert_not_found(
        store.create_output(&foreign).await,
        "output in another tenant's bucket",
    );

    o.url = "https://example.com/in".into();
    o.timeout_ms = 500;
    store.update_output(&o).await.expect("update output");
    let read = store.output(t, &o.id).await.expect("read output");
    assert_eq!(
        (read.url.as_str(), read.timeout_ms),
        ("https://example.com/in", 500)
    );
    store.delete_output(t, &o.id).await.expect("delete output");
    assert_not_found(store.output(t, &o.id).await, "deleted output");
    assert_not_found(store.delete_output(t, &o.id).await, "delete output twice");
    assert_not_found(store.update_output(&o).await, "update deleted output");
}

/// Tokens: the secret hash is kept, keys are unique, updates never touch
/// the hash, scope or mode.
pub async fn tokens(store: &Arc<dyn Store>) {
    let world = World::create(store, "tokens").await;
    let t = &world.tenant;
    let mut agent = token_in(t, TokenScope::Agent);
    agent.mode = Some(model::AgentMode::Tunnel);
    agent.buckets = vec![world.bucket.id.clone()];
    store.create_token(&agent).await.expect("create token");
    assert_conflict(
        store.create_token(&agent).await,
        "key",
        "second token with one key",
    );
    assert_not_found(
        store
            .create_token(&token_in(&unique("nobody"), TokenScope::Poll))
            .await,
        "token of an unknown tenant",
    );
    let read = store.token_by_key(&agent.key).await.expect("token by key");
    assert_eq!(read.secret_hash.expose(), agent.secret_hash.expose());
    assert_eq!(
        (read.scope, read.mode),
        (TokenScope::Agent, Some(model::AgentMode::Tunnel))
    );
    assert_eq!(read.buckets, agent.buckets);

    let mut changed = agent.clone();
    changed.description = "renamed".into();
    changed.buckets.clear();
    changed.secret_hash = Secret::new("");
    store.update_token(&changed).await.expect("update token");
    let read = store.token_by_key(&agent.key).await.expect("token by key");
    assert_eq!(
        (read.description.as_str(), read.buckets.len()),
        ("renamed", 0)
    );
    assert_eq!(
        read.secret_hash.expose(),
        agent.secret_hash.expose(),
        "the hash survives updates"
    );
    store
        .rotate_token_secret(t, &agent.key, "$2b$10$rotated")
        .await
        .expect("rotate the secret");
    let read = store.token_by_key(&agent.key).await.expect("token by key");
    assert_eq!(read.secret_hash.expose(), "$2b$10$rotated");
    assert_eq!(
        read.description, "renamed",
        "rotation changes the hash only"
    );
    assert_not_found(
        store
            .rotate_token_secret(&unique("other"), &agent.key, "$2b$10$stolen")
            .await,
        "rotate another tenant's token",
    );
    assert_eq!(
        store
            .token_by_key(&agent.key)
            .await
            .expect("token by key")
            .secret_hash
            .expose(),
        "$2b$10$rotated"
    );

    let admin = token_in(t, TokenScope::Admin);
    store
        .create_token(&admin)
        .await
        .expect("create admin token");
    assert!(store.has_admin_token().await.expect("has admin token"));
    assert_eq!(store.list_tokens(t).await.expect("list").len(), 2);
    store
        .delete_token(t, &agent.key)
        .await
        .expect("delete token");
    assert_not_found(store.token_by_key(&agent.key).await, "deleted token");
    assert_not_found(
        store.delete_token(t, &agent.key).await,
        "delete token twice",
    );
    assert_not_found(store.update_token(&agent).await, "update deleted token");
}
