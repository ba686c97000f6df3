//! Redis 7.0 functions (FUNCTION, FCALL, FCALL_RO): every reply compared
//! with Debian's redis-server 7.0 (errors of loading, registering and
//! calling included), a busy function and FUNCTION KILL, libraries in RDB
//! files, DUMP payloads and AOF files read by both servers, and libraries
//! replicated both ways between Cascade and redis-server.

mod common;
use common::family::{cascade, redis};
use common::{sorted_reply, wait_until, Conn, Server, Value};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

/// A library `lib1`: `set1` writes, `get1` reads (no-writes, described).
const LIB1: &str = "#!lua name=lib1
local function set(keys, args)
  return redis.call('set', keys[1], args[1])
end
redis.register_function('set1', set)
redis.register_function{function_name='get1', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads a key'}
";

/// Sends `args` to both and requires the same reply (aggregates sorted
/// when `sorted`, for replies whose order Redis leaves unspecified).
fn same(c: &mut Conn, r: &mut Conn, args: &[&str], sorted: bool) -> Value {
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    if !sorted {
        return common::assert_same_reply(c, r, &refs);
    }
    let (ours, theirs) = (sorted_reply(c.cmdb(&refs)), sorted_reply(r.cmdb(&refs)));
    assert_eq!(
        ours, theirs,
        "reply to {args:?} (Cascade left, Redis right)"
    );
    ours
}

fn load(code: &str) -> Vec<&str> {
    vec!["FUNCTION", "LOAD", code]
}

#[test]
fn replies_match_redis() {
    let s = cascade(&[]);
    let rs = redis(&[]);
    let (mut c, mut r) = (s.conn(), rs.conn());
    let (c, r) = (&mut c, &mut r);
    // Loading: metadata, registration and load-time environment errors.
    let bad_loads = [
        "return 1",
        "#!lua name=x",
        "#! name=x\nredis.register_function('f', function() end)",
        "#!js name=x\nredis.register_function('f', function() end)",
        "#!lua\nredis.register_function('f', function() end)",
        "#!lua name=a name=b\n",
        "#!lua name=a foo=bar\n",
        "#!lua name=a-b\n",
        "#!lua name=x\nbad code",
        "#!lua name=x\nreturn 1",
        "#!lua name=x\nredis.register_function()",
        "#!lua name=x\nredis.register_function('f', function() end, 3)",
        "#!lua name=x\nredis.register_function('f1')",
        "#!lua name=x\nredis.register_function(nil, function() end)",
        "#!lua name=x\nredis.register_function('f2', 'nope')",
        "#!lua name=x\nredis.register_function('', function() end)",
        "#!lua name=x\nredis.register_function('a-b', function() end)",
        "#!lua name=x\nredis.register_function('f', function() end)\nredis.register_function('f', function() end)",
        "#!lua name=x\nredis.register_function{function_name=1, callback=function() end}",
        "#!lua name=x\nredis.register_function{function_name='f', callback=1}",
        "#!lua name=x\nredis.register_function{function_name='f', callback=function() end, description=1}",
        "#!lua name=x\nredis.register_function{function_name='f', callback=function() end, flags='no-writes'}",
        "#!lua name=x\nredis.register_function{function_name='f', callback=function() end, flags={'nope'}}",
        "#!lua name=x\nredis.register_function{function_name='f', callback=function() end, other=1}",
        "#!lua name=x\nredis.register_function{callback=function() end}",
        "#!lua name=x\nredis.register_function{function_name='f'}",
        "#!lua name=x\nredis.call('ping')",
        "#!lua name=x\nlocal r = math.random()",
        "#!lua name=x\nlocal t = type(1)",
        "#!lua name=x\na = 1",
        "#!lua name=x\nwhile true do end",
    ];
    for (i, code) in bad_loads.iter().enumerate() {
        // Each its own library: one that loads must not hide the next.
        let code = code.replace("name=x\n", &format!("name=x{i}\n"));
        let reply = same(c, r, &load(&code), false);
        if code.contains("function_name=1") || code.contains("description=1") {
            // A number is a string to Lua: Redis takes it.
            continue;
        }
        assert!(reply.is_error(), "{code:?}: {reply:?}");
    }
    same(c, r, &load(LIB1), false);
    same(c, r, &load(LIB1), false);
    same(c, r, &["FUNCTION", "LOAD", "nope", LIB1], false);
    same(c, r, &["FUNCTION", "LOAD", "REPLACE"], false);
    // REPLACE with a body that fails keeps the old library.
    same(
        c,
        r,
        &["FUNCTION", "LOAD", "REPLACE", "#!lua name=lib1\nerror('x')"],
        false,
    );
    same(c, r, &["FUNCTION", "LOAD", "REPLACE", LIB1], false);
    // A function name taken by another library, in any case.
    same(
        c,
        r,
        &load("#!lua name=lib2\nredis.register_function('SET1', function() end)"),
        false,
    );
    let lib2 = "#!lua name=lib2
redis.register_function('echo2', function(keys, args) return {#keys, #args, keys[1], args[1], redis.REDIS_VERSION} end)
redis.register_function('fail2', function() local x = nil\n return x.y end)
redis.register_function('pcall2', function() return redis.pcall('incr', 'str') end)
redis.register_function('types2', function() return {1.5, true, false, {ok='fine'}, redis.sha1hex('')} end)
redis.register_function('err2', function() return redis.error_reply('MY custom') end)
redis.register_function('nokeys2', function() return KEYS end)
redis.register_function('global2', function() x = 1 end)
redis.register_function('multi2', function(keys) redis.call('incr', keys[1]) return redis.call('incr', keys[1]) end)
redis.register_function{function_name='stale2', callback=function() return redis.call('ping') end, flags={'allow-stale', 'no-writes', 'ALLOW-OOM'}}
";
    same(c, r, &load(lib2), false);
    for call in [
        vec!["FCALL", "set1", "1", "k", "v"],
        vec!["FCALL", "SET1", "1", "k", "v2"],
        vec!["FCALL", "get1", "1", "k"],
        vec!["FCALL_RO", "get1", "1", "k"],
        vec!["FCALL_RO", "set1", "1", "k", "v"],
        vec!["FCALL", "set1", "0"],
        vec!["FCALL", "nope", "abc"],
        vec!["FCALL", "set1", "abc"],
        vec!["FCALL", "set1", "3", "k"],
        vec!["FCALL", "set1", "-1", "k"],
        vec!["FCALL", "set1"],
        vec!["FCALL", "echo2", "2", "a", "b", "c"],
        vec!["FCALL", "fail2", "0"],
        vec!["SET", "str", "x"],
        vec!["FCALL", "pcall2", "0"],
        vec!["FCALL", "types2", "0"],
        vec!["FCALL", "err2", "0"],
        vec!["FCALL", "nokeys2", "0"],
        vec!["FCALL", "global2", "0"],
        vec!["FCALL", "multi2", "1", "n"],
        vec!["FCALL", "stale2", "0"],
        vec!["COMMAND", "GETKEYS", "FCALL", "set1", "1", "x", "y"],
        vec!["COMMAND", "GETKEYS", "FCALL_RO", "get1", "1", "x", "y"],
        vec!["FUNCTION", "STATS"],
        vec!["FUNCTION", "KILL"],
        vec!["SCRIPT", "KILL"],
        vec!["FUNCTION", "HELP"],
        vec!["FUNCTION"],
        vec!["FUNCTION", "nope"],
        vec!["FUNCTION", "DELETE"],
        vec!["FUNCTION", "DELETE", "LIB1"],
        vec!["FUNCTION", "STATS", "x"],
        vec!["FUNCTION", "FLUSH", "nope"],
        vec!["FUNCTION", "FLUSH", "sync", "x"],
        vec!["FUNCTION", "LIST", "nope"],
        vec!["FUNCTION", "LIST", "libraryname"],
        vec!["FUNCTION", "LIST", "withcode", "withcode"],
        vec!["FUNCTION", "RESTORE", "x", "nope"],
        vec!["FUNCTION", "RESTORE", "x", "flush", "y"],
        vec!["FUNCTION", "RESTORE", "bad payload"],
        // Scripts may not change libraries or call functions.
        vec!["EVAL", "return redis.pcall('function', 'list')", "0"],
        vec!["EVAL", "return redis.pcall('function', 'load', 'x')", "0"],
        vec!["EVAL", "return redis.pcall('fcall', 'get1', '1', 'k')", "0"],
        vec!["EVAL", "return redis.acl_check_cmd('get', 'x')", "0"],
        vec!["EVAL", "return redis.acl_check_cmd('nope')", "0"],
        vec!["EVAL", "return redis.acl_check_cmd()", "0"],
        // In a transaction.
        vec!["MULTI"],
        vec!["FCALL", "set1", "1", "tx", "1"],
        vec!["FCALL", "get1", "1", "tx"],
        vec!["FUNCTION", "LOAD", "#!lua name=txlib\nredis.register_function('txf', function() return redis.call('incr', 'tx') end)"],
        vec!["FCALL", "txf", "0"],
        vec!["EXEC"],
    ] {
        same(c, r, &call, false);
    }
    // Listings: libraries, functions and flag sets in any order.
    for list in [
        vec!["FUNCTION", "LIST"],
        vec!["FUNCTION", "LIST", "WITHCODE"],
        vec!["FUNCTION", "LIST", "LIBRARYNAME", "*1"],
        vec!["FUNCTION", "LIST", "libraryname", "LIB*", "withcode"],
    ] {
        same(c, r, &list, true);
    }
    for conn in [&mut *c, &mut *r] {
        assert!(!conn.cmd(&["HELLO", "3"]).is_error());
    }
    same(c, r, &["FUNCTION", "LIST", "LIBRARYNAME", "lib1"], true);
    same(c, r, &["FUNCTION", "STATS"], false);
    for conn in [&mut *c, &mut *r] {
        assert!(!conn.cmd(&["HELLO", "2"]).is_error());
    }
    // FLUSHALL keeps the libraries; DUMP and RESTORE with each policy.
    same(c, r, &["FLUSHALL"], false);
    same(c, r, &["FCALL", "get1", "1", "k"], false);
    let (ours, theirs) = (c.cmd(&["FUNCTION", "DUMP"]), r.cmd(&["FUNCTION", "DUMP"]));
    for (conn, payload) in [(&mut *c, &ours), (&mut *r, &theirs)] {
        let payload = match payload {
            Value::Bulk(b) => b.clone(),
            other => panic!("{other:?}"),
        };
        let restore = |conn: &mut Conn, policy: &[&str]| {
            let mut args: Vec<&[u8]> = vec![b"FUNCTION", b"RESTORE", &payload];
            args.extend(policy.iter().map(|p| p.as_bytes()));
            conn.cmdb(&args)
        };
        assert!(restore(conn, &[]).text().contains("already exists"));
        assert_eq!(restore(conn, &["REPLACE"]), Value::ok());
        assert_eq!(conn.cmd(&["FUNCTION", "DELETE", "lib2"]), Value::ok());
        assert!(restore(conn, &["APPEND"]).text().contains("already exists"));
        assert_eq!(restore(conn, &["FLUSH"]), Value::ok());
    }
    same(c, r, &["FUNCTION", "LIST"], true);
    // Each server restores the other's payload.
    same(c, r, &["FUNCTION", "FLUSH"], false);
    same(c, r, &["FUNCTION", "LIST"], false);
    for (conn, payload) in [(&mut *c, &theirs), (&mut *r, &ours)] {
        let Value::Bulk(payload) = payload else {
            panic!("{payload:?}")
        };
        let args: Vec<&[u8]> = vec![b"FUNCTION", b"RESTORE", payload];
        assert_eq!(conn.cmdb(&args), Value::ok());
    }
    same(c, r, &["FUNCTION", "LIST", "WITHCODE"], true);
    same(c, r, &["FCALL", "set1", "1", "k", "v3"], false);
    same(c, r, &["FUNCTION", "FLUSH", "async"], false);
    same(c, r, &["FCALL", "set1", "1", "k", "v3"], false);
    same(c, r, &["FUNCTION", "DUMP"], false);
}

#[test]
fn a_busy_function_is_killed_with_function_kill() {
    for server in [
        cascade(&["--busy-reply-threshold", "100"]),
        redis(&["--busy-reply-threshold", "100"]),
    ] {
        let mut c = server.conn();
        let spin =
            "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
        assert_eq!(c.cmd(&load(spin)), Value::bulk("spin"));
        c.send(&[b"FCALL", b"spin", b"0"]);
        // A connection of a thread the function does not occupy.
        let mut other = common::busy_answering_conn(server.port);
        assert_eq!(
            other.cmd(&["PING"]),
            Value::Error(
                "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
                    .into()
            )
        );
        let stats = other.cmd(&["FUNCTION", "STATS"]);
        let running = &stats.array()[1].array();
        assert_eq!(running[0], Value::bulk("name"));
        assert_eq!(running[1], Value::bulk("spin"));
        assert_eq!(
            running[3],
            Value::Array(vec![
                Value::bulk("FCALL"),
                Value::bulk("spin"),
                Value::bulk("0")
            ])
        );
        assert!(other.cmd(&["SCRIPT", "KILL"]).text().starts_with("BUSY"));
        assert_eq!(other.cmd(&["FUNCTION", "KILL"]), Value::ok());
        let killed = c.read();
        assert!(
            killed
                .text()
                .contains("Script killed by user with SCRIPT KILL..."),
            "{killed:?}"
        );
        assert_eq!(other.cmd(&["PING"]), Value::Simple("PONG".into()));
    }
}

/// Loads LIB1 and sets `k` through it.
fn load_lib1(c: &mut Conn) {
    assert_eq!(c.cmd(&load(LIB1)), Value::bulk("lib1"));
    assert_eq!(c.cmd(&["FCALL", "set1", "1", "k", "v"]), Value::ok());
}

fn libraries(c: &mut Conn) -> Value {
    sorted_reply(c.cmd(&["FUNCTION", "LIST", "WITHCODE"]))
}

#[test]
fn libraries_survive_reloads_restarts_and_rewrites() {
    // `always`: a reply means the AOF has the change (the restarts below
    // kill the process).
    let mut s = cascade(&[
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
        "--appendfsync",
        "always",
    ]);
    let mut c = s.conn();
    load_lib1(&mut c);
    let before = libraries(&mut c);
    assert_eq!(s.info_field("memory", "number_of_libraries"), "1");
    assert_eq!(s.info_field("memory", "number_of_functions"), "2");
    let held: i64 = s
        .info_field("memory", "used_memory_functions")
        .parse()
        .unwrap();
    assert!(held > LIB1.len() as i64, "{held}");
    let stats = c.cmd(&["MEMORY", "STATS"]);
    let items = stats.array();
    let at = items
        .iter()
        .position(|v| *v == Value::bulk("functions.caches"))
        .expect("functions.caches");
    assert_eq!(items[at + 1], Value::Int(held));
    // DEBUG RELOAD saves and loads the RDB; NOFLUSH refuses a library
    // that exists, MERGE replaces it.
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), Value::ok());
    assert_eq!(libraries(&mut c), before);
    assert!(c.cmd(&["DEBUG", "RELOAD", "NOFLUSH"]).is_error());
    assert_eq!(c.cmd(&["DEBUG", "RELOAD", "NOFLUSH", "MERGE"]), Value::ok());
    assert_eq!(libraries(&mut c), before);
    // The AOF (commands base after a rewrite, then the incr file).
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]),
        Value::Simple("Background append only file rewriting started".into())
    );
    wait_until(DEADLINE, "the rewrite ends", || {
        s.info_field("persistence", "aof_rewrite_in_progress") == "0"
            && s.info_field("persistence", "aof_rewrite_scheduled") == "0"
    });
    let lib3 = "#!lua name=lib3\nredis.register_function('f3', function() return 3 end)";
    assert_eq!(c.cmd(&load(lib3)), Value::bulk("lib3"));
    assert_eq!(c.cmd(&["FUNCTION", "DELETE", "lib3"]), Value::ok());
    s.restart();
    let mut c = s.conn();
    assert_eq!(libraries(&mut c), before);
    assert_eq!(c.cmd(&["FCALL", "get1", "1", "k"]), Value::bulk("v"));
    // An RDB file: Cascade's dump is what redis-server loads.
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), Value::ok());
    assert_eq!(c.cmd(&["SAVE"]), Value::ok());
    s.restart();
    let mut c = s.conn();
    assert_eq!(libraries(&mut c), before);
    let dump = s.dir.path().join("dump.rdb");
    let rs = redis(&["--appendonly", "no"]);
    std::fs::copy(&dump, rs.dir.path().join("dump.rdb")).unwrap();
    let mut r = rs.conn();
    assert_eq!(r.cmd(&["DEBUG", "RELOAD", "NOSAVE"]), Value::ok());
    assert_eq!(libraries(&mut r), before);
    assert_eq!(r.cmd(&["FCALL", "get1", "1", "k"]), Value::bulk("v"));
}

/// Waits until `c` lists the same libraries as `want`.
fn wait_libraries(c: &mut Conn, want: &Value) {
    wait_until(DEADLINE, "the replica has the master's libraries", || {
        libraries(c) == *want
    });
}

fn replicate(master: &Server, replica: &Server) {
    let mut m = master.conn();
    load_lib1(&mut m);
    let want = libraries(&mut m);
    let mut r = replica.conn();
    // Full sync: the library comes in the RDB.
    let port = master.port.to_string();
    assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &port]), Value::ok());
    wait_libraries(&mut r, &want);
    wait_until(DEADLINE, "the replica has k", || {
        r.cmd(&["GET", "k"]) == Value::bulk("v")
    });
    assert_eq!(r.cmd(&["FCALL", "get1", "1", "k"]), Value::bulk("v"));
    assert_eq!(
        r.cmd(&["FCALL", "set1", "1", "k", "x"]),
        Value::Error("READONLY You can't write against a read only replica.".into())
    );
    assert!(r.cmd(&load(LIB1)).text().starts_with("READONLY"));
    // The stream: a function's effects, then library changes.
    assert_eq!(m.cmd(&["FCALL", "set1", "1", "k2", "w"]), Value::ok());
    let lib4 = "#!lua name=lib4\nredis.register_function{function_name='f4', callback=function() return 4 end, flags={'no-writes'}}";
    assert_eq!(m.cmd(&load(lib4)), Value::bulk("lib4"));
    assert_eq!(m.cmd(&["FUNCTION", "DELETE", "lib1"]), Value::ok());
    let want = libraries(&mut m);
    wait_libraries(&mut r, &want);
    assert_eq!(r.cmd(&["GET", "k2"]), Value::bulk("w"));
    assert_eq!(r.cmd(&["FCALL", "f4", "0"]), Value::Int(4));
    assert_eq!(m.cmd(&["FUNCTION", "FLUSH"]), Value::ok());
    wait_libraries(&mut r, &Value::Array(vec![]));
}

#[test]
fn libraries_replicate_from_redis_to_cascade() {
    replicate(&redis(&[]), &cascade(&[]));
}

#[test]
fn libraries_replicate_from_cascade_to_redis() {
    replicate(&cascade(&[]), &redis(&[]));
}

#[test]
fn libraries_replicate_between_cascades_and_stale_replicas_follow_flags() {
    let master = cascade(&[]);
    let replica = cascade(&["--replica-serve-stale-data", "no"]);
    replicate(&master, &replica);
    let mut m = master.conn();
    let lib = "#!lua name=stale
redis.register_function{function_name='plain', callback=function() return 1 end, flags={'no-writes'}}
redis.register_function{function_name='stale_ok', callback=function() return 2 end, flags={'no-writes', 'allow-stale'}}
redis.register_function{function_name='stale_get', callback=function() return redis.call('get', 'k') end, flags={'no-writes', 'allow-stale'}}
";
    assert_eq!(m.cmd(&load(lib)), Value::bulk("stale"));
    let mut r = replica.conn();
    wait_until(DEADLINE, "the replica has the library", || {
        r.cmd(&["FCALL", "plain", "0"]) == Value::Int(1)
    });
    // The master goes away: the link is down.
    drop(m);
    drop(master);
    wait_until(DEADLINE, "the link is down", || {
        replica.info_field("replication", "master_link_status") == "down"
    });
    assert!(r
        .cmd(&["FCALL", "plain", "0"])
        .text()
        .starts_with("MASTERDOWN"));
    assert_eq!(r.cmd(&["FCALL", "stale_ok", "0"]), Value::Int(2));
    let refused = r.cmd(&["FCALL", "stale_get", "0"]);
    assert!(
        refused
            .text()
            .starts_with("ERR Can not execute the command on a stale replica"),
        "{refused:?}"
    );
}

#[test]
fn eval_shebang_flags_match_redis() {
    let s = cascade(&[]);
    let rs = redis(&[]);
    let (mut c, mut r) = (s.conn(), rs.conn());
    let (c, r) = (&mut c, &mut r);
    for script in [
        "#!lua\nreturn x",
        "#!lua\nbad code",
        "#!lua flags=no-writes\nreturn redis.call('set', 'a', '1')",
        "#!lua flags=no-writes,allow-stale\nreturn redis.call('get', 'a')",
        "#!lua flags=\nreturn redis.call('set', 'a', '2')",
        "#!lua  flags=no-writes\t \nreturn 2",
        "#!lua \"flags=allow-oom\"\nreturn 3",
        "#!lua flags=nope\nreturn 1",
        "#!lua flags=NO-WRITES\nreturn 1",
        "#!lua flags=no-writes,,allow-stale\nreturn 1",
        "#!js\nreturn 1",
        "#! lua\nreturn 1",
        "#!LUA\nreturn 1",
        "#!lua x=1\nreturn 1",
        "#!lua name=x\nreturn 1",
        "#!lua",
        "#!lua flags=no-writes",
    ] {
        for cmd in ["EVAL", "EVAL_RO"] {
            same(c, r, &[cmd, script, "0"], false);
        }
        same(c, r, &["SCRIPT", "LOAD", script], false);
    }
    let sha = same(c, r, &["SCRIPT", "LOAD", "#!lua\nreturn 1"], false).text();
    same(c, r, &["EVALSHA_RO", &sha, "0"], false);
    same(c, r, &["EVALSHA", &sha, "0"], false);
    same(
        c,
        r,
        &["COMMAND", "GETKEYS", "EVAL", "#!lua\nreturn 1", "1", "x"],
        false,
    );
}

#[test]
fn flagged_scripts_are_checked_like_writes_on_replicas() {
    let master = cascade(&[]);
    let replica = cascade(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut r = replica.conn();
    wait_until(DEADLINE, "the link is up", || {
        replica.info_field("replication", "master_link_status") == "up"
    });
    let readonly = Value::Error("READONLY You can't write against a read only replica.".into());
    assert_eq!(r.cmd(&["EVAL", "#!lua\nreturn 1", "0"]), readonly);
    assert_eq!(
        r.cmd(&["EVAL", "#!lua flags=no-writes\nreturn 1", "0"]),
        Value::Int(1)
    );
    // Without the line the script runs, and its write is refused.
    let refused = r.cmd(&["EVAL", "return redis.call('set', 'a', '1')", "0"]);
    assert!(refused.text().starts_with("READONLY"), "{refused:?}");
}
