//! The crash harness: a child process writes with several concurrent
//! writers and prints every acknowledged write; the parent kills it with
//! SIGKILL at a random moment, reopens the store and checks that every
//! acknowledged write is there with its value at its revision, and that the
//! revisions are gap-free from 1 to the current one.
//!
//! Used by the store's crash test (20 kills) and by `krate bench crash`
//! (any number of kills).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use rand::Rng;

use crate::embedded::{Embedded, Options};
use crate::{Revision, Store, StoreError};

/// One write the child saw acknowledged.
#[derive(Clone, Debug)]
pub struct Ack {
    pub revision: Revision,
    pub key: String,
    pub value: String,
}

/// Options for the writer child: no automatic compaction, so the whole
/// history stays checkable.
pub fn writer_options() -> Options {
    Options {
        auto_compaction: false,
        ..Options::default()
    }
}

/// The child side: opens the store in `dir` and writes with `writers`
/// concurrent tasks until killed, printing `ack <revision> <key> <value>`
/// for every acknowledged write. Never returns normally.
pub fn run_writer(dir: &Path, round: u32, writers: usize) -> ! {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("crash writer: starting runtime: {e}");
            std::process::exit(2);
        }
    };
    let result: Result<(), StoreError> = rt.block_on(async move {
        let store = Arc::new(Embedded::open_with(dir, writer_options())?);
        let out = Arc::new(Mutex::new(std::io::stdout()));
        {
            let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(o, "ready");
            let _ = o.flush();
        }
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (store, out) = (store.clone(), out.clone());
            tasks.push(tokio::spawn(async move {
                write_forever(store, out, round, w).await
            }));
        }
        for t in tasks {
            t.await.map_err(|_| StoreError::Closed)??;
        }
        Ok(())
    });
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("crash writer: {e}");
            std::process::exit(1);
        }
    }
}

async fn write_forever(
    store: Arc<Embedded>,
    out: Arc<Mutex<std::io::Stdout>>,
    round: u32,
    writer: usize,
) -> Result<(), StoreError> {
    let shared_key = format!("/crash/shared/{writer}");
    for seq in 0u64.. {
        let (key, value, kv) = if seq % 4 == 3 {
            // Every fourth write updates this writer's shared key with
            // compare-and-swap, so updates are checked as well as creates.
            let value = format!("r{round}w{writer}s{seq}");
            let kv = match store.get(shared_key.as_bytes(), 0).await?.0 {
                None => {
                    store
                        .create(shared_key.as_bytes(), Bytes::from(value.clone()), 0)
                        .await?
                }
                Some(cur) => {
                    store
                        .update(
                            shared_key.as_bytes(),
                            Bytes::from(value.clone()),
                            cur.mod_revision,
                            0,
                        )
                        .await?
                }
            };
            (shared_key.clone(), value, kv)
        } else {
            let key = format!("/crash/{round}/{writer}/{seq}");
            let value = format!("{key}={}", "x".repeat((seq % 7) as usize * 100));
            let kv = store
                .create(key.as_bytes(), Bytes::from(value.clone()), 0)
                .await?;
            (key, value, kv)
        };
        let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(o, "ack {} {} {}", kv.mod_revision, key, value);
        let _ = o.flush();
    }
    Ok(())
}

/// What a crash run saw.
#[derive(Debug, Default)]
pub struct CrashReport {
    pub kills: usize,
    pub acknowledged: usize,
    pub final_revision: Revision,
}

/// Runs `kills` rounds: `child(round)` must start a process that calls
/// [`run_writer`] on `dir`. After each kill the store is reopened and
/// checked. Returns an error describing the first violation found.
pub fn run(
    dir: &Path,
    kills: usize,
    child: impl Fn(u32) -> Command,
) -> Result<CrashReport, String> {
    let mut rng = rand::thread_rng();
    let mut all: Vec<Ack> = Vec::new();
    for round in 0..kills as u32 {
        let mut cmd = child(round);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null());
        let mut proc = cmd
            .spawn()
            .map_err(|e| format!("starting crash writer: {e}"))?;
        let stdout = proc.stdout.take().ok_or("no stdout from crash writer")?;
        let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
        let ready = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let reader = {
            let (acks, ready) = (acks.clone(), ready.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line == "ready" {
                        *ready.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
                        ready.1.notify_all();
                        continue;
                    }
                    let mut parts = line.splitn(4, ' ');
                    if let (Some("ack"), Some(rev), Some(key), Some(value)) =
                        (parts.next(), parts.next(), parts.next(), parts.next())
                    {
                        if let Ok(revision) = rev.parse() {
                            acks.lock().unwrap_or_else(|p| p.into_inner()).push(Ack {
                                revision,
                                key: key.to_string(),
                                value: value.to_string(),
                            });
                        }
                    }
                }
            })
        };
        // Wait for the store to be open, then let it write for a random
        // while so that kills land at every stage of a commit.
        {
            let (lock, cv) = &*ready;
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut is_ready = lock.lock().unwrap_or_else(|p| p.into_inner());
            while !*is_ready && Instant::now() < deadline {
                is_ready = cv
                    .wait_timeout(is_ready, Duration::from_millis(50))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            if !*is_ready {
                let _ = proc.kill();
                let _ = proc.wait();
                return Err(format!(
                    "round {round}: crash writer did not open the store"
                ));
            }
        }
        // Under load the first commit can take a while: wait for it, so
        // every round kills a writer that is really writing.
        let deadline = Instant::now() + Duration::from_secs(30);
        while acks.lock().unwrap_or_else(|p| p.into_inner()).is_empty() && Instant::now() < deadline
        {
            if let Ok(Some(status)) = proc.try_wait() {
                return Err(format!(
                    "round {round}: crash writer exited on its own ({status})"
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..400)));
        if let Ok(Some(status)) = proc.try_wait() {
            return Err(format!(
                "round {round}: crash writer exited on its own ({status})"
            ));
        }
        proc.kill()
            .map_err(|e| format!("killing crash writer: {e}"))?;
        let _ = proc.wait();
        let _ = reader.join();
        let round_acks = std::mem::take(&mut *acks.lock().unwrap_or_else(|p| p.into_inner()));
        if round_acks.is_empty() {
            return Err(format!(
                "round {round}: no write was acknowledged before the kill"
            ));
        }
        all.extend(round_acks);
        verify(dir, &all).map_err(|e| format!("after kill {}: {e}", round + 1))?;
    }
    let final_revision = all.iter().map(|a| a.revision).max().unwrap_or(0);
    Ok(CrashReport {
        kills,
        acknowledged: all.len(),
        final_revision,
    })
}

/// Reopens the store and checks every acknowledged write and the
/// continuity of revisions.
pub fn verify(dir: &Path, acks: &[Ack]) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let store = Embedded::open_with(dir, writer_options())
            .map_err(|e| format!("reopening store: {e}"))?;
        let current = store.current_revision().await.map_err(|e| e.to_string())?;
        let mut seen_revs: HashMap<Revision, &str> = HashMap::new();
        for ack in acks {
            if let Some(other) = seen_revs.insert(ack.revision, &ack.key) {
                return Err(format!(
                    "revision {} acknowledged twice ({other} and {})",
                    ack.revision, ack.key
                ));
            }
            if ack.revision > current {
                return Err(format!(
                    "acknowledged revision {} is beyond the recovered revision {current}",
                    ack.revision
                ));
            }
            let (kv, _) = store
                .get(ack.key.as_bytes(), ack.revision)
                .await
                .map_err(|e| e.to_string())?;
            match kv {
                Some(kv) if kv.mod_revision == ack.revision && kv.value == ack.value.as_bytes() => {
                }
                Some(kv) => {
                    return Err(format!(
                        "{} at revision {}: found revision {} value {:?}, acknowledged {:?}",
                        ack.key,
                        ack.revision,
                        kv.mod_revision,
                        String::from_utf8_lossy(&kv.value),
                        ack.value
                    ))
                }
                None => {
                    return Err(format!(
                        "acknowledged write of {} at revision {} is lost",
                        ack.key, ack.revision
                    ))
                }
            }
        }
        // Revisions 1..=current, each exactly once.
        let mut watch = store.watch(b"", 0).await.map_err(|e| e.to_string())?;
        let mut expected = 1;
        while expected <= current {
            let ev = tokio::time::timeout(Duration::from_secs(30), watch.next())
                .await
                .map_err(|_| format!("history replay stalled at revision {expected}"))?
                .ok_or("history replay ended early")?
                .map_err(|e| e.to_string())?;
            if ev.revision() != expected {
                return Err(format!(
                    "history has revision {} where {expected} was expected",
                    ev.revision()
                ));
            }
            expected += 1;
        }
        store.close();
        Ok(())
    })
}
