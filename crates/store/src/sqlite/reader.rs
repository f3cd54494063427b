//! The read side: a few read-only connections, each behind its own lock,
//! used from tokio's blocking pool. WAL lets them all read while the writer
//! commits; a reader sees the database as of its statement's (or its read
//! transaction's) start.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};

use rusqlite::Connection;

use super::schema;
use crate::{Error, Result};

/// Read-only connections, each behind its own lock.
pub(super) struct ReadPool {
    conns: Vec<Mutex<Connection>>,
    /// Where the next read starts looking for a free connection.
    next: AtomicUsize,
}

impl ReadPool {
    /// Opens `n` read-only connections to the database at `path`, which the
    /// writer must already have created.
    pub(super) fn open(path: &Path, n: usize) -> Result<Self> {
        let conns = (0..n)
            .map(|_| schema::open_reader(path).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on the first free connection, or waits for one.
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let n = self.conns.len();
        if n == 0 {
            return Err(Error::Unavailable("no read connections".into()));
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let free = (0..n).find_map(|i| match self.conns[(start + i) % n].try_lock() {
            Ok(guard) => Some(guard),
            // A panic mid-read poisons the lock but leaves the connection
            // usable; an open transaction is rolled back below.
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        });
        let mut conn = match free {
            Some(guard) => guard,
            None => self.conns[start % n]
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        };
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        f(&mut conn)
    }
}
