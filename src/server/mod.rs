//! Starting and stopping the server: daemonizing, the pidfile, the log,
//! the shards with their listeners and crons, and signals.
//!
//! The top of the dependency graph: it wires `config`, `shard`, `net` and
//! `cmd` together and owns no data of its own.

mod crash;
mod cron;
mod limits;
mod thp;

use crate::config::Config;
use crate::log::{self, LogLevel};
use crate::net;
use crate::node::Node;
use crate::shard::{self, Mesh, ShardCore};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Runs the server until it shuts down. Returns the process exit code for
/// start-up failures; a normal shutdown exits from within.
pub fn run(config: Config) -> i32 {
    log::set_level(config.loglevel());
    // Like Redis, a supervised server stays in the foreground.
    let supervisor = crate::supervise::detect(&config.get("supervised").unwrap_or_default());
    let background = config.daemonize() && !supervisor.keeps_foreground();
    if background {
        if let Err(e) = daemonize() {
            eprintln!("Can't daemonize: {e}");
            return 1;
        }
    }
    let logfile = config.logfile();
    if logfile.is_empty() && background {
        log::discard();
    } else if let Err(e) = log::set_destination(&logfile) {
        eprintln!("Can't open the log file: {e}");
        return 1;
    }
    log::init();
    let dir = config.dir();
    if let Err(e) = std::env::set_current_dir(&dir) {
        log::write_line(LogLevel::Warning, &format!("Can't chdir to '{dir}': {e}"));
        return 1;
    }

    let pid = std::process::id();
    log::write_line(
        LogLevel::Warning,
        "oO0OoO0OoO0Oo Cascade is starting oO0OoO0OoO0Oo",
    );
    log::write_line(
        LogLevel::Warning,
        &format!(
            "Cascade version={} (Redis {} compatible), bits={}, pid={pid}, just started",
            env!("CARGO_PKG_VERSION"),
            crate::cmd::connection::REDIS_VERSION,
            usize::BITS
        ),
    );
    if config.config_file().is_none() {
        log::write_line(LogLevel::Warning, "Warning: no config file specified, using the default config. In order to specify a config file use cascade /path/to/redis.conf");
    } else {
        log::write_line(LogLevel::Warning, "Configuration loaded");
    }
    crate::supervise::announce(supervisor);
    // Redis marks its lines with S from the start when it is configured as
    // a replica.
    log::set_role(if config.replicaof().is_some() {
        b'S'
    } else {
        b'M'
    });

    thp::apply(config.bool_value("disable-thp"));
    let mut config = config;
    match limits::adjust(config.maxclients()) {
        limits::OpenFiles::Enough => {}
        limits::OpenFiles::ReduceMaxclients(n) => {
            let n = n.to_string();
            if let Err(e) = config.set_many(&[(b"maxclients", n.as_bytes())]) {
                log::write_line(LogLevel::Warning, &format!("maxclients {n}: {e}"));
            }
        }
        limits::OpenFiles::TooLow { .. } => return 1,
    }

    let shards = match config.shards() {
        0 => shard::runtime::usable_cores(),
        n => n,
    };
    let port = config.port();
    let binds = net::parse_bind(&config.bind());
    // Held until the process exits; see `net::claim_port`.
    let _port_claim = match port {
        0 => None,
        port => match net::claim_port(&binds, port) {
            Ok(claim) => Some(claim),
            Err(e) => {
                log::write_line(LogLevel::Warning, &e);
                log::write_line(
                    LogLevel::Warning,
                    &format!("Failed listening on port {port} (tcp), aborting."),
                );
                return 1;
            }
        },
    };
    let pidfile = config
        .pidfile()
        .or_else(|| background.then(|| "/var/run/redis.pid".to_string()));
    let databases = config.databases();
    // Loaded hashes and sets take their encodings from these.
    crate::node::set_encoding_limits(crate::node::limits_from_config(&config));
    crate::node::set_list_fill_from_config(&config);
    let mesh = Mesh::new(shards);
    if let Err(e) = crate::acl::load_at_startup(&config) {
        tracing::warn!("{e}");
        std::process::exit(1);
    }
    let node = Node::new(config, mesh.clone());
    // min-replicas-to-write from the config is in force from the first write.
    crate::repl::master::refresh_good_replicas(&node);
    node.port.store(port as usize, Ordering::Relaxed);
    node.refresh_cached_config();
    crate::cmd::pubsub::install_notification_sink(&node);
    if let Some(path) = &pidfile {
        if let Err(e) = std::fs::write(path, format!("{pid}\n")) {
            tracing::warn!("Failed to write PID file: {e}");
        } else {
            *node.pidfile.write().unwrap_or_else(|e| e.into_inner()) = Some(path.clone());
        }
    }
    crash::install_panic_hook(if background { pidfile.clone() } else { None });
    tracing::info!("Running mode=standalone, port={port}, shards={shards}.");

    // Signals are taken synchronously by the main thread: block them before
    // the executor threads start so they inherit the mask.
    block_shutdown_signals();

    let replica_of = node.config().replicaof();
    if let Some((host, port)) = &replica_of {
        node.repl.set_role(crate::repl::Role::Replica {
            host: host.clone(),
            port: *port,
        });
    }
    // The dump is loaded once every shard listens: meanwhile clients get
    // -LOADING and INFO shows the progress, as with Redis.
    // With the AOF on, Redis loads the AOF and never the dump.
    let aof_on = node.config().appendonly();
    let dump_len = std::fs::metadata(node.config().dbfilename())
        .ok()
        .filter(|m| m.is_file() && !aof_on)
        .map(|m| m.len());
    if aof_on {
        node.loading.store(true, Ordering::SeqCst);
        node.loading_start_unix
            .store(crate::node::unix_ms() / 1000, Ordering::Relaxed);
    }
    if let Some(len) = dump_len {
        node.loading.store(true, Ordering::SeqCst);
        node.loading_total_bytes.store(len, Ordering::Relaxed);
        node.loading_start_unix
            .store(crate::node::unix_ms() / 1000, Ordering::Relaxed);
    }
    let bound = Arc::new(AtomicUsize::new(0));
    let start_node = node.clone();
    let started = shard::runtime::start(shards, move |id| {
        let node = start_node.clone();
        let bound = bound.clone();
        async move {
            let mut core = ShardCore::new(id, databases);
            core.on_ready = crate::cmd::blocking::serve_ready;
            if node.repl.is_replica.load(Ordering::SeqCst) {
                core.ks.set_expire_allowed(false);
                core.link_feeds_aof = true;
            } else {
                core.backlog = node.repl.backlog();
            }
            let shard = shard::install(id, node.mesh.clone(), core);
            if port != 0 {
                match net::listen(&node, &shard, &binds, port) {
                    Ok(0) => {
                        tracing::warn!("Failed listening on port {port} (tcp), aborting.");
                        std::process::exit(1);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!("Could not create server TCP listening socket {e}");
                        tracing::warn!("Failed listening on port {port} (tcp), aborting.");
                        std::process::exit(1);
                    }
                }
            }
            if bound.fetch_add(1, Ordering::SeqCst) + 1 == node.shards() {
                crate::alloc::mark_startup();
                tracing::warn!("Server initialized");
                node.initialized.store(true, Ordering::SeqCst);
                let node = node.clone();
                glommio::spawn_local(async move {
                    if aof_on {
                        load_aof(&node).await;
                    } else if node.loading.load(Ordering::SeqCst) {
                        load_in_background(&node).await;
                    }
                    tracing::info!("Ready to accept connections tcp");
                    let replica = node.repl.is_replica.load(Ordering::SeqCst);
                    crate::supervise::notify(if replica {
                        "STATUS=Ready to accept connections in read-only mode. Waiting for MASTER <-> REPLICA sync\n"
                    } else {
                        "STATUS=Ready to accept connections\n"
                    });
                    crate::supervise::notify("READY=1\n");
                    if replica {
                        let gen = node.repl.link_generation.load(Ordering::SeqCst);
                        crate::repl::replica::start_link(&node, gen);
                    }
                })
                .detach();
            }
            cron::run(node, shard).await;
        }
    });
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            log::write_line(LogLevel::Warning, &e.to_string());
            return 1;
        }
    };
    if !started.pinned {
        tracing::warn!("shards ({shards}) exceed the usable cores: executors are not pinned");
    }
    tracing::debug!(
        "io_uring buffer memory per shard: {} bytes (RLIMIT_MEMLOCK {})",
        started.io_memory,
        started.memlock
    );
    shard::runtime::watch(started, |why| {
        tracing::warn!("{why}");
        std::process::exit(1);
    });

    loop {
        let signal = wait_for_shutdown_signal();
        crate::cmd::shutdown::on_signal(&node, signal);
    }
}

/// Loads the AOF (see `persist::aof::load`) while every shard answers
/// `-LOADING`, then starts appending to it. Failing either is fatal.
async fn load_aof(node: &Arc<Node>) {
    let manifest = match crate::persist::aof::load::load(node).await {
        Ok(m) => m,
        Err(()) => std::process::exit(1),
    };
    if let Err(e) = crate::persist::aof::start_after_load(node, manifest).await {
        tracing::warn!("{e}");
        std::process::exit(1);
    }
    node.loading.store(false, Ordering::SeqCst);
}

/// Loads `dir/dbfilename` while every shard already answers (`-LOADING`),
/// logging like Redis; hands each shard its keys, restores the replication
/// position the file records, then ends the loading state. A file that
/// cannot be loaded is fatal, as in Redis.
async fn load_in_background(node: &Arc<Node>) {
    let path = std::path::PathBuf::from(node.config().dbfilename());
    let (shards, databases) = (node.shards(), node.config().databases());
    let key_delay_us = node
        .config()
        .get("key-load-delay")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
        .max(0) as u64;
    let started = std::time::Instant::now();
    let (tx, rx) = shard::oneshot::channel();
    let reader = node.clone();
    let file = path.clone();
    let stager = crate::persist::dump::Stager::new();
    let spawned = std::thread::Builder::new()
        .name("cascade-load".into())
        .spawn(move || {
            let progress = &reader.loading_loaded_bytes;
            tx.send(crate::persist::dump::load_counting(
                &file,
                stager,
                databases,
                false,
                Some(progress),
                key_delay_us,
            ))
        });
    let result = match spawned {
        Ok(_) => rx.await.unwrap_or_else(|_| {
            Err(crate::persist::dump::LoadError::Open(
                std::io::Error::other("the load thread died"),
            ))
        }),
        Err(e) => Err(crate::persist::dump::LoadError::Open(e)),
    };
    let loaded = match result {
        Ok(Some(l)) => l,
        Ok(None) => {
            node.loading.store(false, Ordering::SeqCst);
            return;
        }
        Err(e) => {
            tracing::warn!(
                "Fatal error loading the DB ({}): {e}. Exiting.",
                path.display()
            );
            std::process::exit(1);
        }
    };
    let crate::persist::dump::Loaded {
        staged,
        facts: loaded,
    } = loaded;
    if let Some(v) = &loaded.redis_ver {
        tracing::info!("Loading RDB produced by version {v}");
    }
    if let Some(ctime) = loaded.ctime {
        let age = (crate::node::unix_ms() / 1000).saturating_sub(ctime);
        tracing::info!("RDB age {age} seconds");
    }
    if let Some(mem) = loaded.used_mem {
        tracing::info!(
            "RDB memory usage when created {:.2} Mb",
            mem as f64 / (1024.0 * 1024.0)
        );
    }
    if crate::scripting::functions::install_loaded(
        &loaded.functions,
        crate::scripting::functions::RestorePolicy::Flush,
    )
    .is_err()
    {
        tracing::warn!("Short read or OOM loading DB. Unrecoverable error, aborting now.");
        std::process::exit(1);
    }
    if let Err(e) = staged.install_everywhere().await {
        tracing::warn!(
            "Fatal error loading the DB ({}): {e}. Exiting.",
            path.display()
        );
        std::process::exit(1);
    }
    tracing::info!(
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        loaded.keys_loaded,
        loaded.keys_expired
    );
    tracing::info!(
        "DB loaded from disk: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    node.loaded_keys
        .store(loaded.keys_loaded, Ordering::Relaxed);
    node.loaded_expired
        .store(loaded.keys_expired, Ordering::Relaxed);
    if let (Some(id), Some(offset)) = (&loaded.repl_id, loaded.repl_offset) {
        crate::repl::restore_info(node, id, offset, loaded.repl_stream_db.unwrap_or(0));
        // A master that may be asked to continue this history needs its
        // ring from the first write on (Redis creates the backlog at load
        // time too): writes made before a replica comes back must be in it.
        if !node.repl.is_replica.load(Ordering::SeqCst) {
            let size = node.config().repl_ring_size();
            let ring = Arc::new(crate::repl::backlog::Backlog::new(size, offset, shards + 1));
            node.repl.set_backlog(Some(ring.clone()));
            shard::gather(move |core| core.backlog = Some(ring.clone())).await;
        }
    }
    node.loading.store(false, Ordering::SeqCst);
}

fn daemonize() -> std::io::Result<()> {
    // SAFETY: called before any thread is started, so fork() duplicates a
    // single-threaded process; the parent exits at once.
    match unsafe { libc::fork() } {
        -1 => return Err(std::io::Error::last_os_error()),
        0 => {}
        _ => std::process::exit(0),
    }
    // SAFETY: plain syscalls on our own process; the fds we dup2 onto are
    // the standard ones.
    unsafe {
        libc::setsid();
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
    Ok(())
}

fn shutdown_signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

fn block_shutdown_signals() {
    let set = shutdown_signal_set();
    // SAFETY: changes only this thread's signal mask, with a valid set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

fn wait_for_shutdown_signal() -> &'static str {
    let set = shutdown_signal_set();
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait reads a valid set and writes the signal number.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            return if sig == libc::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
        }
    }
}
