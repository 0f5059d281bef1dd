//! The etcd backend: [`Etcd`] implements [`Store`] over a real etcd
//! cluster's v3 API (etcd 3.4 and later), for servers that run in HA.
//!
//! Revisions are etcd's own, so other etcd clients (and `etcdctl`) see the
//! same numbers. Where etcd's semantics differ from the [`Store`] contract,
//! the difference is etcd's and is written down here:
//!
//! - a fresh etcd is at revision 1 with no keys, so the first change is
//!   revision 2, not 1;
//! - when a lease expires or is revoked, etcd deletes all its keys in one
//!   transaction: they share one revision (invariant 1 holds per request,
//!   not per key);
//! - etcd enforces a minimum lease TTL (1.5 s rounded up to 2 s with default
//!   timing) and counts TTLs in whole seconds;
//! - etcd rejects requests over its `--max-request-bytes` (1.5 MiB by
//!   default, which a value of exactly [`crate::MAX_VALUE_BYTES`] plus its
//!   key exceeds): run etcd with a slightly larger limit.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions,
    Error as EtcdError, EventType, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::key_string;
use crate::{
    check_key, check_write, keys, Event, EventKind, KeyValue, LeaseId, RangeRequest, RangeResponse,
    Revision, SnapshotInfo, Store, StoreError, WatchStream,
};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long [`Etcd::connect`] waits for the cluster to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A request without an answer by then fails, so that a dead or partitioned
/// etcd surfaces as an error instead of a hang. Its outcome is then unknown,
/// as with any network store.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Physical compaction of a large database can take minutes.
const COMPACT_TIMEOUT: Duration = Duration::from_secs(600);

/// etcd may answer a range or a watch batch with hundreds of megabytes
/// (it caps its own sends at `i32::MAX`); gRPC's default 4 MiB would turn a
/// large list into an error.
const MAX_MESSAGE_BYTES: usize = i32::MAX as usize;

/// etcd's `MaxLeaseTTL`: longer TTLs are refused.
const MAX_LEASE_TTL_SECS: u64 = 9_000_000_000;

/// The messages etcd puts in its gRPC statuses; they are etcd's API (its Go
/// client matches on them too).
const ERR_COMPACTED: &str = "required revision has been compacted";
const ERR_FUTURE_REV: &str = "required revision is a future revision";
const ERR_LEASE_NOT_FOUND: &str = "requested lease not found";
const ERR_TOO_LARGE: &str = "request is too large";

/// The smallest possible key: probes and "all keys" ranges start here.
const FIRST_KEY: &[u8] = b"\0";

/// A [`Store`] over a real etcd cluster's v3 API.
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    endpoints: Vec<String>,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl Etcd {
    /// Connects to the cluster at `endpoints` (`http://host:port`) and checks
    /// that it answers, so that a wrong address fails here, within a few
    /// seconds, and not at the first request.
    pub async fn connect(endpoints: &[String]) -> Result<Etcd> {
        let shown = endpoints.join(",");
        if endpoints.is_empty() {
            return Err(StoreError::Etcd {
                context: "connecting to etcd".into(),
                source: EtcdError::InvalidArgs("no etcd endpoints given".into()),
            });
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            // etcd's server refuses pings more often than every 5 s and pings
            // without an open stream (`too_many_pings`).
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(false)
            // A member cut off from its leader fails requests and cancels
            // watches instead of serving stale data forever.
            .with_require_leader(true);
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|source| StoreError::Etcd {
                context: format!("connecting to etcd at {shown}"),
                source,
            })?;
        let etcd = Etcd {
            client,
            endpoints: endpoints.to_vec(),
        };

        // The client connects lazily: a request is what proves the cluster
        // is there (and has a leader).
        let mut kv = etcd.kv();
        let probe = kv.get(FIRST_KEY, Some(GetOptions::new().with_count_only()));
        match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
            Ok(Ok(_)) => Ok(etcd),
            Ok(Err(source)) => Err(StoreError::Etcd {
                context: format!("etcd at {shown} did not answer"),
                source,
            }),
            Err(_) => Err(StoreError::Etcd {
                context: format!("etcd at {shown} did not answer"),
                source: timed_out(CONNECT_TIMEOUT),
            }),
        }
    }

    /// The endpoints this client was connected to.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    fn kv(&self) -> etcd_client::KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Turns an etcd failure of a read or a compaction at `requested` into
    /// the store's error, looking up the numbers etcd leaves out of its
    /// messages.
    async fn revision_error(
        &self,
        context: impl Into<String>,
        source: EtcdError,
        requested: Revision,
    ) -> StoreError {
        match status_message(&source) {
            Some(msg) if msg.contains(ERR_COMPACTED) => {
                let compacted = self.compacted_revision().await.unwrap_or(0);
                StoreError::Compacted {
                    requested,
                    compacted,
                }
            }
            Some(msg) if msg.contains(ERR_FUTURE_REV) => {
                let current = self.current_revision().await.unwrap_or(0);
                StoreError::FutureRevision { requested, current }
            }
            _ => StoreError::Etcd {
                context: context.into(),
                source,
            },
        }
    }

    /// Whether the state at `revision` can still be read: `Ok(true)` unless
    /// it has been compacted away. A count-only read of one key transfers
    /// nothing.
    async fn readable_at(&self, revision: Revision) -> Result<bool> {
        let options = GetOptions::new().with_revision(revision).with_count_only();
        match timed(self.kv().get(FIRST_KEY, Some(options))).await {
            Ok(_) => Ok(true),
            Err(e) if status_message(&e).is_some_and(|m| m.contains(ERR_COMPACTED)) => Ok(false),
            Err(source) => Err(etcd_err(format!("reading at revision {revision}"), source)),
        }
    }
}

#[async_trait]
impl Store for Etcd {
    async fn current_revision(&self) -> Result<Revision> {
        let resp = timed(
            self.kv()
                .get(FIRST_KEY, Some(GetOptions::new().with_count_only())),
        )
        .await
        .map_err(|e| etcd_err("reading the current revision", e))?;
        Ok(header_revision(resp.header()))
    }

    async fn get(&self, key: &[u8], revision: Revision) -> Result<(Option<KeyValue>, Revision)> {
        check_key(key)?;
        let options = GetOptions::new().with_revision(revision);
        let mut resp = match timed(self.kv().get(key, Some(options))).await {
            Ok(resp) => resp,
            Err(e) => {
                return Err(self
                    .revision_error(format!("getting {}", key_string(key)), e, revision)
                    .await)
            }
        };
        let served_at = if revision > 0 {
            revision
        } else {
            header_revision(resp.header())
        };
        Ok((resp.take_kvs().into_iter().next().map(from_etcd), served_at))
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse> {
        let (start, end) = range_bounds(&request.prefix, request.start.as_deref());
        let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
        let options = GetOptions::new()
            .with_range(end)
            .with_revision(request.revision)
            .with_limit(limit);
        let mut resp = match timed(self.kv().get(start, Some(options))).await {
            Ok(resp) => resp,
            Err(e) => {
                let context = format!("listing {}", key_string(&request.prefix));
                return Err(self.revision_error(context, e, request.revision).await);
            }
        };
        let revision = if request.revision > 0 {
            request.revision
        } else {
            header_revision(resp.header())
        };
        let more = resp.more();
        Ok(RangeResponse {
            kvs: resp.take_kvs().into_iter().map(from_etcd).collect(),
            revision,
            more,
        })
    }

    async fn count_range(&self, request: RangeRequest) -> Result<i64> {
        let (start, end) = range_bounds(&request.prefix, request.start.as_deref());
        let options = GetOptions::new()
            .with_range(end)
            .with_revision(request.revision)
            .with_count_only();
        match timed(self.kv().get(start, Some(options))).await {
            Ok(resp) => Ok(resp.count()),
            Err(e) => {
                let context = format!("counting {}", key_string(&request.prefix));
                Err(self.revision_error(context, e, request.revision).await)
            }
        }
    }

    async fn count(&self, prefix: &[u8]) -> Result<i64> {
        let (start, end) = range_bounds(prefix, None);
        let options = GetOptions::new().with_range(end).with_count_only();
        let resp = timed(self.kv().get(start, Some(options)))
            .await
            .map_err(|e| etcd_err(format!("counting {}", key_string(prefix)), e))?;
        Ok(resp.count())
    }

    async fn create(&self, key: &[u8], value: Bytes, lease: LeaseId) -> Result<KeyValue> {
        check_write(key, &value)?;
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key, Some(GetOptions::new().with_count_only()))]);
        let resp = timed(self.kv().txn(txn))
            .await
            .map_err(|e| write_error("creating", key, &value, lease, e))?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists {
                key: key_string(key),
            });
        }
        let revision = header_revision(resp.header());
        Ok(KeyValue {
            key: Bytes::copy_from_slice(key),
            value,
            create_revision: revision,
            mod_revision: revision,
            version: 1,
            lease,
        })
    }

    async fn update(
        &self,
        key: &[u8],
        value: Bytes,
        expected_revision: Revision,
        lease: LeaseId,
    ) -> Result<KeyValue> {
        check_write(key, &value)?;
        // The version compare keeps an `expected_revision` of 0 from
        // matching a missing key (whose mod_revision etcd compares as 0)
        // and creating it.
        let txn = Txn::new()
            .when([
                Compare::mod_revision(key, CompareOp::Equal, expected_revision),
                Compare::version(key, CompareOp::Greater, 0),
            ])
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(PutOptions::new().with_lease(lease).with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = timed(self.kv().txn(txn))
            .await
            .map_err(|e| write_error("updating", key, &value, lease, e))?;
        let revision = header_revision(resp.header());
        let succeeded = resp.succeeded();
        match resp.op_responses().into_iter().next() {
            Some(TxnOpResponse::Put(mut put)) if succeeded => {
                let prev = put.take_prev_key().ok_or_else(|| {
                    unexpected(
                        format!("updating {}", key_string(key)),
                        "put without prev_kv",
                    )
                })?;
                Ok(KeyValue {
                    key: Bytes::copy_from_slice(key),
                    value,
                    create_revision: prev.create_revision(),
                    mod_revision: revision,
                    version: prev.version() + 1,
                    lease,
                })
            }
            Some(TxnOpResponse::Get(mut get)) if !succeeded => {
                match get.take_kvs().into_iter().next() {
                    None => Err(StoreError::NotFound {
                        key: key_string(key),
                    }),
                    Some(kv) => Err(StoreError::Conflict {
                        key: key_string(key),
                        expected: expected_revision,
                        current: Some(Box::new(from_etcd(kv))),
                    }),
                }
            }
            _ => Err(unexpected(
                format!("updating {}", key_string(key)),
                "txn answered with the wrong operation",
            )),
        }
    }

    async fn delete(
        &self,
        key: &[u8],
        expected_revision: Option<Revision>,
    ) -> Result<(Revision, KeyValue)> {
        check_key(key)?;
        let context = || format!("deleting {}", key_string(key));
        let mut compares = vec![Compare::version(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected_revision {
            compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = timed(self.kv().txn(txn))
            .await
            .map_err(|e| etcd_err(context(), e))?;
        let revision = header_revision(resp.header());
        let succeeded = resp.succeeded();
        match resp.op_responses().into_iter().next() {
            Some(TxnOpResponse::Delete(mut deleted)) if succeeded => {
                match deleted.take_prev_kvs().into_iter().next() {
                    Some(kv) => Ok((revision, from_etcd(kv))),
                    None => Err(StoreError::NotFound {
                        key: key_string(key),
                    }),
                }
            }
            Some(TxnOpResponse::Get(mut get)) if !succeeded => {
                match get.take_kvs().into_iter().next() {
                    None => Err(StoreError::NotFound {
                        key: key_string(key),
                    }),
                    Some(kv) => Err(StoreError::Conflict {
                        key: key_string(key),
                        expected: expected_revision.unwrap_or(0),
                        current: Some(Box::new(from_etcd(kv))),
                    }),
                }
            }
            _ => Err(unexpected(
                context(),
                "txn answered with the wrong operation",
            )),
        }
    }

    async fn watch(&self, prefix: &[u8], from_revision: Revision) -> Result<WatchStream> {
        // etcd's start_revision is inclusive and 0 means "from now"; the
        // store's from_revision is exclusive and 0 means "from the oldest
        // change still held", which is the compaction revision (etcd's own
        // docs: history "can be watched starting from the last compaction
        // revision").
        let context = || {
            format!(
                "watching {} from revision {from_revision}",
                key_string(prefix)
            )
        };
        let start_revision = if from_revision > 0 {
            // etcd would accept a compacted or future start and report the
            // first asynchronously (or wait for the second); one count-only
            // read answers both now, as the embedded backend does. A
            // compaction racing past this still ends the stream with
            // `Compacted`.
            let options = GetOptions::new()
                .with_revision(from_revision)
                .with_count_only();
            if let Err(e) = timed(self.kv().get(FIRST_KEY, Some(options))).await {
                match self.revision_error(context(), e, from_revision).await {
                    // Reading at the revision just below the compaction is
                    // gone, watching the changes after it is not.
                    StoreError::Compacted { compacted, .. } if from_revision + 1 >= compacted => {}
                    error => return Err(error),
                }
            }
            from_revision + 1
        } else {
            self.compacted_revision().await?.max(1)
        };
        let (key, end) = range_bounds(prefix, None);
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(start_revision)
            .with_prev_key();
        let mut client = self
            .client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let (watcher, responses) = timed(client.watch(key, Some(options)))
            .await
            .map_err(|e| etcd_err(context(), e))?;
        // etcd refuses a watch by answering "created" with id -1; the client
        // swallows that answer, so the id is all that tells.
        if watcher.watch_id() < 0 {
            return Err(unexpected(context(), "etcd refused to create the watch"));
        }
        let state = WatchState {
            _watcher: watcher,
            responses,
            pending: std::collections::VecDeque::new(),
            from_revision,
            done: false,
        };
        Ok(futures::stream::unfold(state, next_event).boxed())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut kv = self.kv();
        let compaction = kv.compact(revision, Some(CompactionOptions::new().with_physical()));
        match tokio::time::timeout(COMPACT_TIMEOUT, compaction).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self
                .revision_error(format!("compacting at revision {revision}"), e, revision)
                .await),
            Err(_) => Err(etcd_err(
                format!("compacting at revision {revision}"),
                timed_out(COMPACT_TIMEOUT),
            )),
        }
    }

    /// etcd does not report its compaction revision through any API (3.4's
    /// `HashKV` does, but hashes the whole database to do it; its status
    /// call does not). What it does tell is whether a read at a revision
    /// has been compacted (`rev < compacted`), which is monotonic in the
    /// revision: a binary search over count-only reads of one key finds the
    /// compaction revision in about log2(current revision) cheap requests,
    /// and works whoever compacted (our API server, another one, etcdctl).
    ///
    /// A read at revision 1 succeeds whether etcd never compacted or
    /// compacted at 1 (which discards nothing, since revision 1 is the empty
    /// initial state); both report 0.
    async fn compacted_revision(&self) -> Result<Revision> {
        if self.readable_at(1).await? {
            return Ok(0);
        }
        // Invariant: `low` is compacted, `high` is readable (a compaction
        // never goes past the current revision).
        let (mut low, mut high) = (1, self.current_revision().await?);
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if self.readable_at(mid).await? {
                high = mid;
            } else {
                low = mid;
            }
        }
        Ok(high)
    }

    async fn lease_grant(&self, ttl: Duration) -> Result<LeaseId> {
        // etcd counts whole seconds; rounding up never expires a lease early.
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        if secs == 0 {
            return Err(StoreError::InvalidTtl {
                reason: "TTL must be positive".into(),
            });
        }
        if secs > MAX_LEASE_TTL_SECS {
            return Err(StoreError::InvalidTtl {
                reason: format!("TTL of {secs}s is over etcd's limit of {MAX_LEASE_TTL_SECS}s"),
            });
        }
        let ttl_secs = i64::try_from(secs).unwrap_or(i64::MAX);
        let resp = timed(self.client.lease_client().grant(ttl_secs, None))
            .await
            .map_err(|e| etcd_err(format!("granting a lease of {secs}s"), e))?;
        Ok(resp.id())
    }

    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        let context = || format!("keeping lease {lease} alive");
        let mut client = self.client.lease_client();
        // The client's keep-alive renews the lease with its first request
        // but keeps that answer's TTL to itself, so a second round trip on
        // the same stream reads it (and renews once more, harmlessly).
        let (mut keeper, mut answers) = match timed(client.keep_alive(lease)).await {
            Ok(stream) => stream,
            // How the client reports an answer with TTL <= 0, etcd's "no
            // such lease".
            Err(EtcdError::LeaseKeepAliveError(_)) => {
                return Err(StoreError::LeaseNotFound { lease })
            }
            Err(e) if is_lease_not_found(&e) => return Err(StoreError::LeaseNotFound { lease }),
            Err(e) => return Err(etcd_err(context(), e)),
        };
        timed(keeper.keep_alive())
            .await
            .map_err(|e| etcd_err(context(), e))?;
        match timed(answers.message()).await {
            Ok(Some(answer)) if answer.ttl() > 0 => {
                Ok(Duration::from_secs(answer.ttl().unsigned_abs()))
            }
            Ok(_) => Err(StoreError::LeaseNotFound { lease }),
            Err(e) => Err(etcd_err(context(), e)),
        }
    }

    async fn lease_revoke(&self, lease: LeaseId) -> Result<()> {
        match timed(self.client.lease_client().revoke(lease)).await {
            Ok(_) => Ok(()),
            Err(e) if is_lease_not_found(&e) => Err(StoreError::LeaseNotFound { lease }),
            Err(e) => Err(etcd_err(format!("revoking lease {lease}"), e)),
        }
    }

    /// The snapshot is etcd's own (a bbolt database with etcd's trailing
    /// checksum, what `etcdctl snapshot save` writes, restorable with
    /// `etcdctl snapshot restore`). Its revision is the one read just before
    /// it started: etcd does not say which revision its snapshot holds, and
    /// this lower bound is the claim that is always true ("everything up to
    /// here is in it").
    async fn snapshot(&self, path: &Path) -> Result<SnapshotInfo> {
        let revision = self.current_revision().await?;
        let partial = partial_path(path);
        let result = write_snapshot(self, &partial).await;
        let size_bytes = match result {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(e);
            }
        };
        tokio::fs::rename(&partial, path).await.map_err(|e| {
            StoreError::io(
                format!("renaming {} to {}", partial.display(), path.display()),
                e,
            )
        })?;
        sync_parent(path).await?;
        Ok(SnapshotInfo {
            revision,
            size_bytes,
        })
    }
}

/// Streams etcd's snapshot into `partial` and makes it durable; returns its
/// size.
async fn write_snapshot(etcd: &Etcd, partial: &Path) -> Result<u64> {
    let context = || format!("streaming a snapshot to {}", partial.display());
    let mut stream = timed(etcd.client.maintenance_client().snapshot())
        .await
        .map_err(|e| etcd_err(context(), e))?;
    let mut file = tokio::fs::File::create(partial)
        .await
        .map_err(|e| StoreError::io(format!("creating {}", partial.display()), e))?;
    let mut size = 0u64;
    // Each chunk gets the request timeout: a stalled stream fails, a long
    // one does not.
    while let Some(chunk) = timed(stream.message())
        .await
        .map_err(|e| etcd_err(context(), e))?
    {
        file.write_all(chunk.blob())
            .await
            .map_err(|e| StoreError::io(context(), e))?;
        size += chunk.blob().len() as u64;
    }
    file.sync_all()
        .await
        .map_err(|e| StoreError::io(format!("syncing {}", partial.display()), e))?;
    Ok(size)
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}

/// Makes a rename into the directory durable.
async fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = tokio::fs::File::open(&parent)
        .await
        .map_err(|e| StoreError::io(format!("opening {}", parent.display()), e))?;
    dir.sync_all()
        .await
        .map_err(|e| StoreError::io(format!("syncing {}", parent.display()), e))
}

/// What a watch stream carries between polls. Dropping it drops the
/// request sender and the response stream, which resets the gRPC stream:
/// etcd then cancels the watch. Nothing else runs on its behalf.
struct WatchState {
    _watcher: etcd_client::Watcher,
    responses: etcd_client::WatchStream,
    pending: std::collections::VecDeque<Event>,
    from_revision: Revision,
    done: bool,
}

async fn next_event(mut state: WatchState) -> Option<(Result<Event>, WatchState)> {
    loop {
        if let Some(event) = state.pending.pop_front() {
            return Some((Ok(event), state));
        }
        if state.done {
            return None;
        }
        let message = state.responses.message().await;
        let error = match message {
            Ok(Some(resp)) if resp.compact_revision() != 0 => StoreError::Compacted {
                requested: state.from_revision,
                compacted: resp.compact_revision(),
            },
            Ok(Some(resp)) if resp.canceled() => {
                let reason = resp.cancel_reason().to_string();
                etcd_err("watch canceled by etcd", EtcdError::WatchError(reason))
            }
            Ok(Some(resp)) => {
                // Progress notifications carry no events and are skipped.
                state
                    .pending
                    .extend(resp.events().iter().map(from_etcd_event));
                continue;
            }
            Ok(None) => etcd_err(
                "watch",
                EtcdError::WatchError("etcd closed the watch stream".into()),
            ),
            Err(e) => etcd_err("watch", e),
        };
        // A watch never skips silently: it ends with the reason.
        state.done = true;
        return Some((Err(error), state));
    }
}

fn from_etcd_event(event: &etcd_client::Event) -> Event {
    let kind = match event.event_type() {
        EventType::Put => EventKind::Put,
        EventType::Delete => EventKind::Delete,
    };
    // etcd sends a delete's kv as the key with the deletion's revision as
    // mod_revision and everything else zero, which is the store's shape.
    let kv = event.kv().map(copy_from_etcd).unwrap_or_else(|| KeyValue {
        key: Bytes::new(),
        value: Bytes::new(),
        create_revision: 0,
        mod_revision: 0,
        version: 0,
        lease: 0,
    });
    Event {
        kind,
        kv,
        prev: event.prev_kv().map(copy_from_etcd),
    }
}

fn from_etcd(kv: etcd_client::KeyValue) -> KeyValue {
    let (create_revision, mod_revision, version, lease) = (
        kv.create_revision(),
        kv.mod_revision(),
        kv.version(),
        kv.lease(),
    );
    let (key, value) = kv.into_key_value();
    KeyValue {
        key: Bytes::from(key),
        value: Bytes::from(value),
        create_revision,
        mod_revision,
        version,
        lease,
    }
}

fn copy_from_etcd(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: Bytes::copy_from_slice(kv.key()),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: kv.lease(),
    }
}

/// etcd's `[key, range_end)` for the keys under `prefix`, starting at
/// `start` when a paged read continues. An empty prefix, or one with no
/// upper bound, reads to the end of the keyspace (etcd's "from key",
/// `range_end = "\0"`).
fn range_bounds(prefix: &[u8], start: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
    let start = match start {
        Some(s) if !s.is_empty() => s.to_vec(),
        _ if prefix.is_empty() => FIRST_KEY.to_vec(),
        _ => prefix.to_vec(),
    };
    let end = keys::prefix_end(prefix).unwrap_or_else(|| FIRST_KEY.to_vec());
    (start, end)
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map(|h| h.revision()).unwrap_or(0)
}

fn status_message(e: &EtcdError) -> Option<&str> {
    match e {
        EtcdError::GRpcStatus(status) => Some(status.message()),
        _ => None,
    }
}

fn is_lease_not_found(e: &EtcdError) -> bool {
    status_message(e).is_some_and(|m| m.contains(ERR_LEASE_NOT_FOUND))
}

fn etcd_err(context: impl Into<String>, source: EtcdError) -> StoreError {
    StoreError::Etcd {
        context: context.into(),
        source,
    }
}

/// An answer from etcd that its protocol does not allow.
fn unexpected(context: String, what: &str) -> StoreError {
    etcd_err(
        context,
        EtcdError::IoError(io::Error::new(io::ErrorKind::InvalidData, what.to_string())),
    )
}

fn timed_out(after: Duration) -> EtcdError {
    EtcdError::IoError(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no answer from etcd within {after:?}"),
    ))
}

/// Bounds a request by [`REQUEST_TIMEOUT`].
async fn timed<T>(request: impl Future<Output = Result<T, EtcdError>>) -> Result<T, EtcdError> {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| Err(timed_out(REQUEST_TIMEOUT)))
}

fn write_error(
    verb: &str,
    key: &[u8],
    value: &[u8],
    lease: LeaseId,
    source: EtcdError,
) -> StoreError {
    if is_lease_not_found(&source) {
        return StoreError::LeaseNotFound { lease };
    }
    let mut context = format!("{verb} {}", key_string(key));
    if status_message(&source).is_some_and(|m| m.contains(ERR_TOO_LARGE)) {
        context.push_str(&format!(
            " ({} bytes of value): etcd's --max-request-bytes is below what krate allows ({} bytes); raise it",
            value.len(),
            crate::MAX_VALUE_BYTES
        ));
    }
    etcd_err(context, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_prefix_reads_every_key() {
        assert_eq!(range_bounds(b"", None), (b"\0".to_vec(), b"\0".to_vec()));
    }

    #[test]
    fn prefix_read_stops_at_prefix_end_and_continues_from_start() {
        assert_eq!(
            range_bounds(b"/a/", None),
            (b"/a/".to_vec(), b"/a0".to_vec())
        );
        assert_eq!(
            range_bounds(b"/a/", Some(b"/a/x\0")),
            (b"/a/x\0".to_vec(), b"/a0".to_vec())
        );
    }

    #[test]
    fn all_ff_prefix_reads_to_the_end() {
        assert_eq!(range_bounds(&[0xff], None), (vec![0xff], b"\0".to_vec()));
    }

    #[test]
    fn snapshot_is_written_beside_its_final_path() {
        assert_eq!(
            partial_path(Path::new("/x/snap.db")),
            PathBuf::from("/x/snap.db.part")
        );
    }
}
