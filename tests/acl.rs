//! ACLs: users, rules, checks, the ACL log and file, against redis-server
//! where the same calls give the same replies, and replication with an
//! ACL user (`masteruser`) both ways.

mod common;

use common::repl;
use common::{args_of, assert_same_replies, wait_until, Conn, Server, Value};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

fn auth_as(s: &Server, user: &str, pass: &str) -> Conn {
    let mut c = s.conn();
    assert_eq!(c.cmd(&["AUTH", user, pass]), Value::ok());
    c
}

/// The fields of ACL LOG entries that do not depend on time or client.
fn log_summary(c: &mut Conn, count: &str) -> Vec<Vec<Value>> {
    let entries = c.cmd(&["ACL", "LOG", count]);
    entries
        .array()
        .iter()
        .map(|e| {
            let fields = e.array();
            assert_eq!(fields.len(), 14, "{e:?}");
            assert_eq!(fields[10].text(), "age-seconds");
            assert!(fields[13].text().starts_with("id="), "{e:?}");
            fields[..10].to_vec()
        })
        .collect()
}

#[test]
fn acl_commands_answer_like_redis() {
    let ours = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let (mut c, mut r) = (ours.conn(), redis.conn());
    assert_same_replies(
        &mut c,
        &mut r,
        &[
            "ACL SETUSER alice on >pw ~foo* &chan* +get -@dangerous",
            "ACL GETUSER alice",
            "ACL SETUSER u1 +@all -get +get -@string +incr",
            "ACL SETUSER u2 -@all +@hash +@geo -hset",
            "ACL SETUSER u3 reset",
            "ACL SETUSER u4 on nopass %R~r* %W~w* %RW~x* allchannels (~s* +get)",
            "ACL SETUSER u4 #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4",
            "ACL GETUSER u4",
            "ACL SETUSER u4 !30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 (%R~a* +@read +@write)",
            "ACL GETUSER u4",
            "ACL SETUSER u4 clearselectors resetkeys ~z",
            "ACL SETUSER u5 on +select|0 +select|1",
            "ACL GETUSER u5",
            "ACL LIST",
            "ACL USERS",
            "ACL WHOAMI",
            "ACL SETUSER bob badrule",
            "ACL SETUSER bob +nosuch",
            "ACL SETUSER bob +@nosuch",
            "ACL SETUSER bob (",
            "ACL SETUSER bob (~x",
            "ACL SETUSER bob (badrule)",
            "ACL SETUSER bob ~* ~a",
            "ACL SETUSER bob &* &a",
            "ACL SETUSER bob #abc",
            "ACL SETUSER bob <nope",
            "ACL SETUSER bob +config|get|x",
            "ACL SETUSER bob +get|",
            "ACL SETUSER bob %X~a",
            "ACL GETUSER bob",
            "ACL GETUSER nosuch",
            "ACL DELUSER default",
            "ACL CAT nosuch",
            "ACL CAT",
            "~ACL CAT geo",
            "~ACL CAT hyperloglog",
            "ACL GENPASS 0",
            "ACL GENPASS 5000",
            "ACL GENPASS x",
            "ACL LOAD",
            "ACL SAVE",
            "ACL FOO",
            "ACL SETUSER",
            "ACL DRYRUN nosuch get x",
            "ACL DRYRUN default nosuch x",
            "ACL DRYRUN default get",
            "ACL DRYRUN alice get foo1",
            "ACL DRYRUN alice get bar",
            "ACL DRYRUN alice set foo1 v",
            "ACL DRYRUN u4 get x",
            "ACL DRYRUN u5 config get maxmemory",
            "ACL DRYRUN u5 select 0",
            "ACL DRYRUN u5 select 1",
            "ACL DRYRUN u5 select 2",
            "ACL DELUSER alice u1 u2 nosuch",
            "ACL USERS",
            "CLIENT KILL USER nosuch",
        ],
    );
    // The single commands of a description come in table order here and
    // in hash order in Redis: the same rules, maybe ordered otherwise.
    for server in [&mut c, &mut r] {
        server.cmd(&[
            "ACL",
            "SETUSER",
            "m",
            "-@all",
            "+@string",
            "-get",
            "+config|get",
            "+config",
            "-config|set",
        ]);
    }
    let rules = |conn: &mut Conn| {
        let line = conn.cmd(&["ACL", "GETUSER", "m"]).array()[5].text();
        let mut parts: Vec<String> = line.split(' ').map(String::from).collect();
        parts.sort();
        parts
    };
    assert_eq!(rules(&mut c), rules(&mut r));
    assert_eq!(c.cmd(&["ACL", "GENPASS"]).text().len(), 64);
    assert_eq!(c.cmd(&["ACL", "GENPASS", "5"]).text().len(), 2);
}

#[test]
fn a_restricted_user_is_refused_like_redis() {
    let ours = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let setup = "ACL SETUSER alice on >pw ~foo* %R~ro* &chan* +get +set +lpush +publish +subscribe +psubscribe +multi +exec +eval +mget +config|get +acl|whoami";
    let mut both = [ours.conn(), redis.conn()];
    for conn in &mut both {
        let args = args_of(setup);
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        assert_eq!(conn.cmdb(&refs), Value::ok());
        conn.cmd(&["ACL", "LOG", "RESET"]);
    }
    let (mut c, mut r) = (
        auth_as(&ours, "alice", "pw"),
        auth_as(&redis, "alice", "pw"),
    );
    assert_same_replies(
        &mut c,
        &mut r,
        &[
            "ACL WHOAMI",
            "SET foo 1",
            "GET foo",
            "GET bar",
            "GET ro1",
            "SET ro1 x",
            "SET foo2 x GET",
            "MGET foo ro1 bar",
            "LPUSH foo2 a",
            "LPUSH bar a",
            "INCR foo",
            "CONFIG GET maxmemory",
            "CONFIG SET maxmemory 1",
            "PUBLISH chan1 m",
            "PUBLISH other m",
            "PSUBSCRIBE chan*x",
            "FLUSHALL",
            "AUTH alice wrong",
            "AUTH nosuch pw",
            "AUTH alice pw",
            "MULTI",
            "SET foo 2",
            "GET bar",
            "EXEC",
            // (Scripts without spaces: lines split on spaces.)
            "EVAL \"return redis.call('get','foo')\" 0",
            "EVAL \"return redis.call('get','bar')\" 0",
            "EVAL \"return redis.call('del','foo')\" 0",
            "EVAL \"return redis.call('publish','x','m')\" 0",
            "EVAL \"return redis.pcall('get','bar')\" 0",
            "EVAL \"return {redis.acl_check_cmd('get','foo'),redis.acl_check_cmd('get','bar')==false,redis.acl_check_cmd('del','foo')==false}\" 0",
            "EVAL \"return redis.acl_check_cmd('nosuch')\" 0",
            "EVAL \"return 1\" 1 bar",
            "EVAL \"return 1\" 1 foo",
        ],
    );
    // Subscribing to an allowed channel works; another is refused.
    assert_same_replies(&mut c, &mut r, &["SUBSCRIBE other", "SUBSCRIBE chan1"]);
    // The log has the same entries, newest first.
    let (mut ca, mut ra) = (ours.conn(), redis.conn());
    assert_eq!(log_summary(&mut ca, "100"), log_summary(&mut ra, "100"));
    assert_eq!(ca.cmd(&["ACL", "LOG", "RESET"]), Value::ok());
    assert_eq!(ca.cmd(&["ACL", "LOG"]), Value::Array(vec![]));
}

#[test]
fn changed_rules_apply_to_connected_clients_and_queued_commands() {
    let ours = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    for s in [&ours, &redis] {
        let mut admin = s.conn();
        admin.cmd(&["ACL", "SETUSER", "bob", "on", ">pw", "~*", "+@all"]);
        let mut bob = auth_as(s, "bob", "pw");
        assert_eq!(bob.cmd(&["SET", "k", "1"]), Value::ok());
        assert_eq!(bob.cmd(&["MULTI"]), Value::ok());
        assert_eq!(bob.cmd(&["SET", "k", "2"]), Value::Simple("QUEUED".into()));
        assert_eq!(bob.cmd(&["GET", "k"]), Value::Simple("QUEUED".into()));
        admin.cmd(&["ACL", "SETUSER", "bob", "-set"]);
        let exec = bob.cmd(&["EXEC"]);
        assert_eq!(
            exec.array()[0],
            Value::Error("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand".into()),
            "{exec:?}"
        );
        assert_eq!(exec.array()[1], Value::bulk("1"));
        assert_eq!(
            bob.cmd(&["SET", "k", "3"]),
            Value::Error("NOPERM this user has no permissions to run the 'set' command".into())
        );
        // A disabled user keeps its connections but cannot log in again.
        admin.cmd(&["ACL", "SETUSER", "bob", "off"]);
        assert_eq!(bob.cmd(&["GET", "k"]), Value::bulk("1"));
        assert!(s.conn().cmd(&["AUTH", "bob", "pw"]).is_error());
        // Deleting it disconnects it.
        assert_eq!(admin.cmd(&["ACL", "DELUSER", "bob"]), Value::Int(1));
        bob.set_read_timeout(Duration::from_secs(10));
        bob.send(&[b"PING"]);
        assert!(bob.read_to_close().is_empty());
    }
}

#[test]
fn losing_channels_disconnects_subscribers() {
    let ours = Server::start(&[]);
    let mut admin = ours.conn();
    admin.cmd(&[
        "ACL",
        "SETUSER",
        "sub",
        "on",
        ">pw",
        "&news*",
        "+subscribe",
        "+ping",
    ]);
    let mut sub = auth_as(&ours, "sub", "pw");
    sub.cmd(&["SUBSCRIBE", "news1"]);
    // More channels: the subscriber stays.
    admin.cmd(&["ACL", "SETUSER", "sub", "&sports*"]);
    admin.cmd(&["PUBLISH", "news1", "hello"]);
    let msg = sub.read();
    assert_eq!(msg.array()[2], Value::bulk("hello"));
    // Fewer: it is disconnected, as in Redis.
    admin.cmd(&["ACL", "SETUSER", "sub", "resetchannels", "&sports*"]);
    sub.set_read_timeout(Duration::from_secs(10));
    assert!(sub.read_to_close().is_empty());
    wait_until(DEADLINE, "subscriber gone", || {
        admin
            .cmd(&["CLIENT", "LIST"])
            .text()
            .matches("user=sub")
            .count()
            == 0
    });
}

#[test]
fn requirepass_is_the_default_user_s_password() {
    let s = Server::start(&["--requirepass", "secret"]);
    let mut c = s.conn();
    assert_eq!(
        c.cmd(&["GET", "x"]),
        Value::Error("NOAUTH Authentication required.".into())
    );
    assert_eq!(c.cmd(&["AUTH", "default", "secret"]), Value::ok());
    let user = c.cmd(&["ACL", "GETUSER", "default"]);
    assert_eq!(
        user.array()[3].array()[0],
        Value::bulk("2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b")
    );
    assert!(c.cmd(&["CLIENT", "LIST"]).text().contains("user=default"));
    // Another user, then back to the default one with RESET.
    c.cmd(&["ACL", "SETUSER", "ro", "on", ">x", "~*", "+@read"]);
    assert_eq!(c.cmd(&["AUTH", "ro", "x"]), Value::ok());
    assert!(s.conn().cmd(&["AUTH", "secret"]) == Value::ok());
    let mut admin = s.conn();
    admin.cmd(&["AUTH", "secret"]);
    assert!(admin.cmd(&["CLIENT", "LIST"]).text().contains("user=ro"));
    assert!(c.cmd(&["SET", "a", "b"]).is_error());
    assert_eq!(c.cmd(&["RESET"]), Value::Simple("RESET".into()));
    assert_eq!(
        c.cmd(&["GET", "x"]),
        Value::Error("NOAUTH Authentication required.".into())
    );
    // HELLO AUTH logs in as well.
    let hello = c.cmd(&["HELLO", "2", "AUTH", "ro", "x"]);
    assert!(!hello.is_error(), "{hello:?}");
    assert!(c.cmd(&["ACL", "WHOAMI"]).is_error());
    assert_eq!(
        c.cmd(&["HELLO", "2", "AUTH", "ro", "bad"]),
        Value::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
    );
    // No password: new connections need no AUTH.
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "requirepass", ""]),
        Value::ok()
    );
    assert_eq!(s.conn().cmd(&["PING"]), Value::Simple("PONG".into()));
    assert_eq!(
        s.conn().cmd(&["AUTH", "x"]),
        Value::Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into())
    );
}

#[test]
fn users_come_from_the_config_and_the_acl_file() {
    // `user` directives, then CONFIG REWRITE writes the ACL state back.
    let dir = common::tempdir::TempDir::new("acl-conf");
    let conf = dir.path().join("cascade.conf");
    std::fs::write(
        &conf,
        "user alice on >pw ~* +@all\nuser default on nopass ~* &* +@all -flushall\n",
    )
    .unwrap();
    let conf_path = conf.to_str().unwrap().to_string();
    let s = Server::start(&["--include", &conf_path]);
    let mut c = auth_as(&s, "alice", "pw");
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Value::bulk("alice"));
    assert!(s.conn().cmd(&["FLUSHALL"]).is_error());
    drop(c);

    // An ACL file: loaded at start, saved, edited, loaded again.
    let aclfile = dir.path().join("users.acl");
    std::fs::write(
        &aclfile,
        "user carol on >pw ~c* +get\n\nuser default on nopass ~* &* +@all\n",
    )
    .unwrap();
    let acl_path = aclfile.to_str().unwrap().to_string();
    let s = Server::start(&["--aclfile", &acl_path]);
    let mut admin = s.conn();
    assert_eq!(
        admin.cmd(&["ACL", "USERS"]),
        Value::Array(vec![Value::bulk("carol"), Value::bulk("default")])
    );
    let mut carol = auth_as(&s, "carol", "pw");
    assert!(carol.cmd(&["GET", "d"]).is_error());
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "dave", "on", ">pw2", "+ping"]),
        Value::ok()
    );
    assert_eq!(admin.cmd(&["ACL", "SAVE"]), Value::ok());
    let saved = std::fs::read_to_string(&aclfile).unwrap();
    assert_eq!(
        saved,
        "user carol on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~c* resetchannels -@all +get\n\
         user dave on #93915a0a4bf8f634cb1856494dd4304472ad46b9827f541f76b6761c49cc55b0 resetchannels -@all +ping\n\
         user default on nopass ~* &* +@all\n"
    );
    // A bad file changes nothing and says why.
    std::fs::write(&aclfile, "user erin on +nosuch\nbogus\n").unwrap();
    let err = admin.cmd(&["ACL", "LOAD"]).text();
    assert!(
        err.contains("Error in applying operation '+nosuch'"),
        "{err}"
    );
    assert!(err.contains(":2 should start with user keyword"), "{err}");
    assert!(
        err.ends_with("no change to the previously active ACL rules was performed"),
        "{err}"
    );
    assert!(admin.cmd(&["ACL", "GETUSER", "dave"]) != Value::Nil);
    // A good one replaces every user and disconnects their clients.
    std::fs::write(&aclfile, "user erin on >pw +@all ~*\n").unwrap();
    assert_eq!(admin.cmd(&["ACL", "LOAD"]), Value::ok());
    assert_eq!(
        admin.cmd(&["ACL", "USERS"]),
        Value::Array(vec![Value::bulk("default"), Value::bulk("erin")])
    );
    carol.set_read_timeout(Duration::from_secs(10));
    carol.send(&[b"PING"]);
    assert!(carol.read_to_close().is_empty());
    auth_as(&s, "erin", "pw");

    // Users in both places stop the start, as in Redis.
    let log = dir.path().join("both.log");
    let mut child = std::process::Command::new(common::cascade_bin())
        .args(["--port", &common::free_port().to_string(), "--save", ""])
        .args(["--aclfile", &acl_path, "--user", "x", "on", "--logfile"])
        .arg(&log)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = None;
    wait_until(DEADLINE, "start refused", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.unwrap().code(), Some(1), "{text}");
    assert!(
        text.contains("please define either an ACL file or declare users directly in your redis.conf, but not both"),
        "{text}"
    );
}

#[test]
fn secrets_are_redacted_from_the_slow_log_like_redis() {
    let ours = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    for s in [&ours, &redis] {
        let mut c = s.conn();
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        c.cmd(&["ACL", "SETUSER", "zz", ">pw", "on"]);
        c.cmd(&[
            "CONFIG",
            "SET",
            "masterauth",
            "abc",
            "maxmemory-samples",
            "5",
        ]);
        let log = c.cmd(&["SLOWLOG", "GET", "2"]);
        let args = |entry: &Value| entry.array()[3].clone();
        assert_eq!(
            args(&log.array()[0]),
            Value::Array(
                [
                    "CONFIG",
                    "SET",
                    "masterauth",
                    "(redacted)",
                    "maxmemory-samples",
                    "5"
                ]
                .iter()
                .map(|a| Value::bulk(a))
                .collect()
            ),
            "{log:?}"
        );
        assert_eq!(
            args(&log.array()[1]),
            Value::Array(
                ["ACL", "SETUSER", "(redacted)", "(redacted)", "(redacted)"]
                    .iter()
                    .map(|a| Value::bulk(a))
                    .collect()
            )
        );
    }
}

#[test]
fn config_rewrite_writes_the_users() {
    let dir = common::tempdir::TempDir::new("acl-rewrite");
    let conf = dir.path().join("cascade.conf");
    std::fs::write(&conf, "user alice on >pw ~* +@all\n").unwrap();
    let conf_path = conf.to_str().unwrap().to_string();
    let s = Server::start(&[&conf_path]);
    let mut c = s.conn();
    c.cmd(&["ACL", "SETUSER", "bob", "on", "nopass", "+get", "~k*"]);
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), Value::ok());
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("user alice on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~* resetchannels +@all\n"), "{text}");
    assert!(
        text.contains("user bob on nopass ~k* resetchannels -@all +get\n"),
        "{text}"
    );
    assert!(
        text.contains("user default on nopass ~* &* +@all\n"),
        "{text}"
    );
}

/// A master whose replicas must log in as `repl`, a user that may only
/// run what replication needs.
const REPL_USER: &[&str] = &[
    "--user",
    "repl",
    "on",
    ">rpw",
    "+psync",
    "+replconf",
    "+ping",
    "--user",
    "default",
    "on",
    ">adminpw",
    "~*",
    "&*",
    "+@all",
];

#[test]
fn replicas_log_in_with_masteruser_both_ways() {
    for (master_is_redis, replica_is_redis) in [(false, false), (false, true), (true, false)] {
        let master = if master_is_redis {
            repl::start_redis(REPL_USER)
        } else {
            repl::start(REPL_USER)
        };
        let port = master.port.to_string();
        let replica_args = [
            "--replicaof",
            "127.0.0.1",
            &port,
            "--masteruser",
            "repl",
            "--masterauth",
            "rpw",
            "--requirepass",
            "adminpw",
        ];
        let replica = if replica_is_redis {
            repl::start_redis(&replica_args)
        } else {
            repl::start(&replica_args)
        };
        repl::write_keys(&master, Some("adminpw"), "k", 50);
        repl::wait_in_sync(&master, &replica, Some("adminpw"));
        // The replication user cannot do anything else.
        let mut r = master.conn();
        assert_eq!(r.cmd(&["AUTH", "repl", "rpw"]), Value::ok());
        assert_eq!(
            r.cmd(&["GET", "k:1"]),
            Value::Error("NOPERM this user has no permissions to run the 'get' command".into())
        );
    }
}
