use std::sync::Arc;
use store::conformance::World;
use store::sqlite::SqliteStore;
use store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let d: Arc<dyn Store> = store.clone();
    let w = World::create(&d, "bench").await;
    let mut ev = w.event();
    ev.body = model::EventBody::Stored(vec![b'x'; 1024]);
    for (conc, per) in [(1usize, 500usize), (64, 200), (512, 100), (2048, 25)] {
        let before = store.commit_count();
        let start = std::time::Instant::now();
        let tasks: Vec<_> = (0..conc).map(|i| { let s = store.clone(); let mut e = ev.clone(); tokio::spawn(async move {
            for j in 0..per { e.delivery_id = Some(format!("{i}-{j}-{conc}")); s.append(e.clone()).await.unwrap(); } }) }).collect();
        for t in tasks { t.await.unwrap(); }
        let n = conc * per; let secs = start.elapsed().as_secs_f64();
        eprintln!("concurrency {conc}: {n} appends in {secs:.2}s = {:.0}/s, {} commits", n as f64 / secs, store.commit_count() - before);
    }
    store.close().await;
}
