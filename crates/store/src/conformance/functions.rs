//! Functions: round trip with the config sealed and read back, isolation
//! by tenant, updates, deletes, a deleted tenant's functions gone, and
//! inputs and outputs that name a function keep it.

use std::sync::Arc;

use model::{Function, FunctionId, Secret, TenantId};

use super::{bucket_in, input_in, now, output_in, tenant_record, unique};
use crate::{Error, Store};

fn function_in(tenant: &TenantId, name: &str) -> Function {
    Function {
        id: FunctionId::generate(),
        tenant: tenant.clone(),
        name: name.to_owned(),
        language: "lua".into(),
        source: "r:SetRequestHeader('x-a', cfg.get('KEY'))".into(),
        config: [("KEY".to_owned(), Secret::new("sealed-value"))].into(),
        version: 1,
        created_at: now(),
        updated_at: now(),
    }
}

pub async fn functions(store: &Arc<dyn Store>) {
    let (a, b) = (unique("fn-a"), unique("fn-b"));
    for t in [&a, &b] {
        store
            .create_tenant(&tenant_record(t.clone()))
            .await
            .unwrap();
    }
    let f = function_in(&a, "first");
    store.create_function(&f).await.unwrap();
    let read = store.function(&a, &f.id).await.unwrap();
    assert_eq!(
        (read.name.as_str(), read.source.as_str(), read.version),
        ("first", f.source.as_str(), 1)
    );
    assert_eq!(read.config["KEY"].expose(), "sealed-value");

    // Another tenant sees nothing of it, even by id.
    assert!(matches!(
        store.function(&b, &f.id).await,
        Err(Error::NotFound)
    ));
    assert!(store.list_functions(&b).await.unwrap().is_empty());
    let mut foreign = f.clone();
    foreign.tenant = b.clone();
    assert!(matches!(
        store.update_function(&foreign).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.delete_function(&b, &f.id).await,
        Err(Error::NotFound)
    ));
    // A tenant that does not exist cannot hold one.
    assert!(matches!(
        store
            .create_function(&function_in(&unique("fn-none"), "x"))
            .await,
        Err(Error::NotFound)
    ));

    let mut second = function_in(&a, "second");
    second.created_at = f.created_at + 1;
    store.create_function(&second).await.unwrap();
    let names: Vec<String> = store
        .list_functions(&a)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["first", "second"]);

    let mut changed = read.clone();
    changed.source = "r:StopForwarding()".into();
    changed.config = [("OTHER".to_owned(), Secret::new("v2"))].into();
    changed.version = 2;
    changed.updated_at += 5;
    store.update_function(&changed).await.unwrap();
    let read = store.function(&a, &f.id).await.unwrap();
    assert_eq!(
        (read.source.as_str(), read.version),
        ("r:StopForwarding()", 2)
    );
    assert_eq!(read.config.keys().collect::<Vec<_>>(), ["OTHER"]);
    assert_eq!(read.config["OTHER"].expose(), "v2");

    // Inputs and outputs keep the function they name.
    let bucket = bucket_in(&a, "fn-bucket");
    store.create_bucket(&bucket).await.unwrap();
    let mut input = input_in(&bucket, None);
    input.function_id = Some(f.id.clone());
    store.create_input(&input).await.unwrap();
    assert_eq!(
        store.input(&a, &input.id).await.unwrap().function_id,
        Some(f.id.clone())
    );
    input.function_id = Some(second.id.clone());
    store.update_input(&input).await.unwrap();
    assert_eq!(
        store.input_by_id(&input.id).await.unwrap().function_id,
        Some(second.id.clone())
    );
    let mut output = output_in(&bucket);
    output.function_id = Some(f.id.clone());
    store.create_output(&output).await.unwrap();
    assert_eq!(
        store.output(&a, &output.id).await.unwrap().function_id,
        Some(f.id.clone())
    );
    output.function_id = None;
    store.update_output(&output).await.unwrap();
    assert_eq!(
        store.output(&a, &output.id).await.unwrap().function_id,
        None
    );

    store.delete_function(&a, &f.id).await.unwrap();
    assert!(matches!(
        store.function(&a, &f.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.delete_function(&a, &f.id).await,
        Err(Error::NotFound)
    ));

    store.delete_tenant(&a).await.unwrap();
    assert!(matches!(
        store.function(&a, &second.id).await,
        Err(Error::NotFound)
    ));
}
