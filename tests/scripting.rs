//! Lua scripting (EVAL EVALSHA EVAL_RO EVALSHA_RO SCRIPT) checked against
//! Debian's redis-server: replies and error texts (with the script line
//! they name), conversions both ways, pcall around redis.call, the bit
//! library; then atomicity with keys on both shards, effects replication
//! to a Cascade and a Redis replica (one MULTI/EXEC per script), and a
//! Cascade replica of a Redis master running scripts.

mod common;
use common::family::{cascade, digest, keys_on, redis};
use common::repl::{start, start_redis, wait_in_sync, wait_in_sync_applying_all};
use common::{assert_same_replies, busy_answering_conn, Conn, Value};

fn eval_lines() -> Vec<String> {
    let mut lines: Vec<String> = [
        "SET str x",
        "SCRIPT FLUSH",
        "EVAL 'return x' 0",
        "EVAL 'x = 1' 0",
        "EVAL 'redis = nil' 0",
        "EVAL 'return redis.call(\"nosuch\")' 0",
        "EVAL 'return redis.call(\"set\")' 0",
        "EVAL 'return redis.call(\"incr\", \"str\")' 0",
        "EVAL 'local v = redis.call(\"incr\", \"str\") return v' 0",
        "EVAL 'return redis.pcall(\"incr\", \"str\")' 0",
        "EVAL 'return {1,2,{3,\"x\"},nil,5}' 0",
        "EVAL 'syntax error here' 0",
        "EVAL 'return 1' x",
        "EVAL 'return 1' -1",
        "EVAL 'return 1' 3 a",
        "EVALSHA 0000 0",
        "EVAL 'return redis.call(\"subscribe\",\"x\")' 0",
        "EVAL_RO 'return redis.call(\"set\",\"a\",\"b\")' 0",
        "EVAL_RO 'return redis.call(\"get\",\"str\")' 0",
        "EVAL 'error(\"boom\")' 0",
        "EVAL 'error({err=\"MY custom\"})' 0",
        "EVAL 'return redis.error_reply(\"OOPS x\")' 0",
        "EVAL 'return redis.status_reply(\"FINE\")' 0",
        "EVAL 'return 3.99' 0",
        "EVAL 'return -3.99' 0",
        "EVAL 'return true' 0",
        "EVAL 'return false' 0",
        "EVAL 'return nil' 0",
        "EVAL 'return {ok=\"x\"}' 0",
        "EVAL 'return redis.call(\"get\", KEYS[1], 1, {})' 1 k",
        "EVAL 'return redis.call()' 0",
        "EVAL 'return redis.call(nil)' 0",
        "EVAL 'redis.call(\"set\", KEYS[1], ARGV[1]); redis.call(\"set\", KEYS[2], ARGV[2]); return redis.call(\"mget\", KEYS[1], KEYS[2])' 2 a b 1 2",
        "EVAL 'return redis.call(\"incrby\", KEYS[1], 5)' 1 counter",
        "EVAL 'return redis.call(\"incrby\", KEYS[1], 5.5)' 1 counter",
        "EVAL 'return {redis.call(\"del\", \"a\", \"b\", \"c\"), redis.call(\"exists\", \"a\")}' 0",
        "EVAL 'redis.call(\"hset\", \"h\", \"f\", \"v\", \"g\", \"w\"); return redis.call(\"hgetall\", \"h\")' 0",
        "EVAL 'return redis.call(\"zadd\", \"z\", 1.5, \"a\")' 0",
        "EVAL 'return redis.call(\"zscore\", \"z\", \"a\")' 0",
        "EVAL 'return redis.call(\"zrange\", \"z\", 0, -1, \"withscores\")' 0",
        "EVAL 'return redis.sha1hex(\"abc\")' 0",
        "EVAL 'return {bit.tohex(65535), bit.band(0xff, 0x0f, 0x3), bit.bxor(5, 3), bit.lshift(1, 31), bit.tohex(-1, -4), bit.bnot(0)}' 0",
        "EVAL 'return {tostring(10/3), string.format(\"%d-%s\", 5, \"x\"), math.floor(7.9), table.concat({\"a\",\"b\"}, \",\")}' 0",
        "EVAL 'return #KEYS + #ARGV' 2 a b c",
        "EVAL 'return ARGV[1]' 2 a b c",
        "EVAL 'return redis.call(\"ping\")' 0",
        "EVAL 'redis.call(\"select\", 3); redis.call(\"set\", \"in3\", \"v\"); return redis.call(\"get\", \"in3\")' 0",
        "GET in3",
        "EVAL 'local ok, e = pcall(redis.call, \"incr\", \"str\") return {tostring(ok), e}' 0",
        "EVAL 'local ok, e = pcall(function() local x = redis.call(\"incr\", \"str\") return x end) return e' 0",
        "EVAL 'local ok, e = pcall(function() error(\"inner\") end) return e' 0",
        "EVAL 'local ok, e = xpcall(function() return redis.call(\"incr\",\"str\") end, function(m) return \"handled\" end) return {tostring(ok), e}' 0",
        "EVAL 'local t = redis.pcall(\"incr\", \"str\") return t[\"err\"]' 0",
        "EVAL 'return redis.call(\"lpush\", \"l\", 1, 2, 3)' 0",
        "EVAL 'return redis.call(\"get\", \"missing\")' 0",
        "EVAL 'return type(redis.call(\"get\", \"missing\"))' 0",
        "EVAL 'return redis.call(\"hget\", \"str\", \"x\")' 0",
        "EVAL 'return redis.call(\"blpop\", \"nolist\", 0)' 0",
        "EVAL 'return redis.call(\"eval\", \"return 1\", 0)' 0",
        "EVAL 'return unpack({1,2,3})' 0",
        "EVAL 'return loadstring(\"return 1\")()' 0",
        "EVAL 'return dofile' 0",
        "SCRIPT LOAD 'return 1 +'",
        "SCRIPT LOAD 'return \"loaded\"'",
        "EVALSHA 5D3A4BEBE0C6E7A5D6A4EA7E4D8E62D6F6FBD8E6 0",
        "SCRIPT EXISTS a 5d3a4bebe0c6e7a5d6a4ea7e4d8e62d6f6fbd8e6",
        "SCRIPT KILL",
        "SCRIPT FOO",
        "SCRIPT FLUSH x",
        "SCRIPT FLUSH ASYNC",
        "SCRIPT EXISTS 5d3a4bebe0c6e7a5d6a4ea7e4d8e62d6f6fbd8e6",
        "SCRIPT",
        "SCRIPT LOAD",
        "SCRIPT HELP",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // cjson: encoding (key order, sparse arrays, escapes, %.14g numbers),
    // decoding, and their errors on the script's line.
    for line in [
        r#"EVAL "return cjson.encode({1,2,'a/b',{x=1}})" 0"#,
        r#"EVAL "return cjson.encode({})" 0"#,
        r#"EVAL "return cjson.encode({z=1, y=2, x=3, w={q=1, r={1,2}}, v='s', u=cjson.null})" 0"#,
        r#"EVAL "return cjson.encode({0.1, 123456789012345678, 1e100, 2^53, 10/3})" 0"#,
        r#"EVAL "return cjson.encode('\\n\\t\\1W\"\\\\')" 0"#,
        r#"EVAL "return cjson.encode({[1]=1,[5]=2})" 0"#,
        r#"EVAL "return cjson.encode({[1]=1,[20]=2})" 0"#,
        r#"EVAL "return cjson.encode(1/0)" 0"#,
        r#"EVAL "return cjson.encode({[true]=1})" 0"#,
        r#"EVAL "local t = {} t.self = t return cjson.encode(t)" 0"#,
        r#"EVAL "return cjson.decode('[1,2,{\"a\":null}]')[3].a == cjson.null" 0"#,
        r#"EVAL "return cjson.encode(cjson.decode('{\"k\":\"\\u00e9\\ud83d\\ude00\",\"n\":1e3}'))" 0"#,
        r#"EVAL "return cjson.decode('[true,false,null,-1.5e2,\"x\"]')" 0"#,
        r#"EVAL "return cjson.decode('bad')" 0"#,
        r#"EVAL "return cjson.decode('{\"a\":1')" 0"#,
        r#"EVAL "return cjson.decode('[1,2')" 0"#,
        r#"EVAL "return cjson.decode('')" 0"#,
        r#"EVAL "return cjson.decode('[1,]')" 0"#,
        r#"EVAL "return cjson.decode('[1] x')" 0"#,
        r#"EVAL "return cjson.decode('{1:2}')" 0"#,
        r#"EVAL "return cjson.decode('{\"a\" 2}')" 0"#,
        r#"EVAL "return cjson.decode('\"\\q\"')" 0"#,
        r#"EVAL "local ok, e = pcall(cjson.decode, '[') return e" 0"#,
        r#"EVAL "return cmsgpack.pack(1, -1, 200, -200, 70000, 2^40, 1.5, 0.1, 'abc', true, false, nil, {1,2}, {a=1}, {})" 0"#,
        r#"EVAL "return cmsgpack.pack(-33, -129, -40000, -3000000000, 2^53, 1e300, string.rep('x', 40), string.rep('y', 300), string.rep('z', 70000))" 0"#,
        r#"EVAL "return cmsgpack.pack({z=1, y=2, x={1,{2,{3}}}, [1]=5}, {[1]=1,[3]=3})" 0"#,
        r#"EVAL "local t = {} local c = t for i=1,20 do c[1] = {} c = c[1] end return cmsgpack.pack(t)" 0"#,
        r#"EVAL "return {cmsgpack.unpack(cmsgpack.pack(1, 'x', {1,2,{3}}, -5, 2.5, true))}" 0"#,
        r#"EVAL "local a, b = cmsgpack.unpack(cmsgpack.pack({k='v', n=1})) return {a.k, a.n, b}" 0"#,
        r#"EVAL "local v = cmsgpack.unpack(string.char(0xcc)) return v" 0"#,
        r#"EVAL "local v = cmsgpack.unpack(string.char(0xc1)) return v" 0"#,
        r#"EVAL "local v = cmsgpack.pack() return v" 0"#,
        r#"EVAL "return cmsgpack.unpack(cmsgpack.pack(-3000000000, string.rep('q', 300)))" 0"#,
        // Errors name the script's line, tail calls included.
        r#"EVAL "return cmsgpack.unpack(string.char(0xc1))" 0"#,
        r#"EVAL "return cmsgpack.pack()" 0"#,
        r#"EVAL "return cmsgpack.unpack()" 0"#,
        r#"EVAL "return cmsgpack.unpack({})" 0"#,
        r#"EVAL "return cmsgpack.unpack(nil)" 0"#,
        r#"EVAL "return cmsgpack.unpack(12)" 0"#,
    ] {
        lines.push(line.to_string());
    }
    // A failing call on a later line names that line.
    lines.push(
        "EVAL \"local r = redis.call('set', 'x', 'y')\nreturn redis.call('incr', 'x')\" 0".into(),
    );
    lines
}

#[test]
fn scripts_answer_like_redis() {
    let (ours, theirs) = (cascade(&[]), redis(&[]));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    let lines = eval_lines();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_same_replies(&mut o, &mut r, &refs);
    assert_eq!(digest(&mut o), digest(&mut r));
}

#[test]
fn scripts_are_atomic_across_shards_and_replicate_their_effects() {
    let master = start(&["--shards", "2"]);
    let port = master.port.to_string();
    let ours = start(&["--replicaof", "127.0.0.1", &port]);
    let theirs = start_redis(&["--replicaof", "127.0.0.1", &port]);
    let a = keys_on(0, "acct", 1).remove(0);
    let b = keys_on(1, "acct", 1).remove(0);
    let mut c = master.conn();
    c.cmd(&["MSET", &a, "1000", &b, "1000"]);
    // Transfers between keys of both shards from several clients: every
    // total read by a script is the full amount.
    let transfer = "local n = tonumber(ARGV[1]) redis.call('decrby', KEYS[1], n) redis.call('incrby', KEYS[2], n) return redis.call('get', KEYS[1]) + redis.call('get', KEYS[2])";
    let sha = c.cmd(&["SCRIPT", "LOAD", transfer]).text();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (a, b, sha, port) = (a.clone(), b.clone(), sha.clone(), master.port);
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                for i in 0..300 {
                    let (from, to) = if (i + w) % 2 == 0 { (&a, &b) } else { (&b, &a) };
                    let total = c.cmd(&["EVALSHA", &sha, "2", from, to, "7"]);
                    assert_eq!(total, Value::Int(2000), "worker {w} step {i}");
                }
            })
        })
        .collect();
    let mut reader = master.conn();
    for _ in 0..300 {
        let total = reader.cmd(&[
            "EVAL",
            "return redis.call('get', KEYS[1]) + redis.call('get', KEYS[2])",
            "2",
            &a,
            &b,
        ]);
        assert_eq!(total, Value::Int(2000));
    }
    for w in workers {
        w.join().unwrap();
    }
    // A script inside MULTI, and a script whose call fails midway: what
    // ran before the failure stays, as in Redis.
    c.cmd(&["MULTI"]);
    c.cmd(&["EVAL", "return redis.call('incr', KEYS[1])", "1", &a]);
    c.cmd(&["SET", &b, "5"]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        Value::Array(vec![Value::Int(1001), Value::ok()])
    );
    let failed = c.cmd(&[
        "EVAL",
        "redis.call('set', KEYS[1], 'partial') return redis.call('incr', KEYS[1])",
        "1",
        &b,
    ]);
    assert!(failed.is_error(), "{failed:?}");
    assert_eq!(c.cmd(&["GET", &b]), Value::bulk("partial"));
    wait_in_sync(&master, &ours, None);
    wait_in_sync(&master, &theirs, None);
    // Writes from scripts are refused on a read-only replica.
    let on_replica = ours
        .conn()
        .cmd(&["EVAL", "return redis.call('set', 'x', 1)", "0"]);
    assert!(on_replica.text().starts_with("READONLY"), "{on_replica:?}");
    assert_eq!(
        ours.conn()
            .cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", &b]),
        Value::bulk("partial")
    );
    // A Redis master running scripts, a Cascade replica.
    let rmaster = start_redis(&[]);
    let rport = rmaster.port.to_string();
    let replica = start(&["--replicaof", "127.0.0.1", &rport]);
    let mut rc = rmaster.conn();
    for i in 0..200 {
        rc.cmd(&[
            "EVAL",
            "redis.call('hincrby', KEYS[1], 'n', 1) redis.call('zadd', KEYS[2], ARGV[1], ARGV[1]) return 1",
            "2",
            &format!("h{}", i % 7),
            &format!("z{}", i % 5),
            &i.to_string(),
        ]);
    }
    wait_in_sync_applying_all(&rmaster, &replica);
}

#[test]
fn script_commands_are_described_like_redis() {
    common::family::assert_command_info_matches_redis(&[
        "eval",
        "evalsha",
        "eval_ro",
        "evalsha_ro",
        "script",
        "fcall",
        "fcall_ro",
        "function",
    ]);
}

#[test]
fn a_busy_script_answers_busy_and_is_killed_unless_it_wrote() {
    let mut s = cascade(&["--lua-time-limit", "100"]);
    let mut runner = common::family::send_blocking(s.port, &["EVAL", "while true do end", "0"]);
    let mut other = busy_answering_conn(s.port);
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]), Value::ok());
    let killed = runner.read();
    assert!(
        killed
            .text()
            .starts_with("ERR Script killed by user with SCRIPT KILL... script: "),
        "{killed:?}"
    );
    assert_eq!(
        other.cmd(&["SCRIPT", "KILL"]),
        Value::Error("NOTBUSY No scripts in execution right now.".into())
    );
    assert!(s
        .log_text()
        .contains("Slow script detected: still in execution after"));
    // A script that wrote cannot be killed.
    let _writer = common::family::send_blocking(
        s.port,
        &["EVAL", "redis.call('set', 'w', 1) while true do end", "0"],
    );
    let mut other = busy_answering_conn(s.port);
    let refused = other.cmd(&["SCRIPT", "KILL"]);
    assert!(
        refused
            .text()
            .starts_with("UNKILLABLE Sorry the script already executed write commands"),
        "{refused:?}"
    );
    // SHUTDOWN NOSAVE still ends the server.
    other.send(&[b"SHUTDOWN", b"NOSAVE"]);
    common::wait_until(
        std::time::Duration::from_secs(10),
        "the server to exit",
        || Conn::try_connect(s.port).is_none(),
    );
    s.kill();
}

#[test]
fn resp3_scripts_match_redis() {
    // redis.setresp(3): calls answered in RESP3 types, RESP3 tables and
    // booleans returned, for RESP2 and RESP3 callers alike.
    let script = [
        "redis.setresp(3) return redis.call('hgetall', 'h')",
        "redis.setresp(3) local r = redis.call('hgetall', 'h') return {type(r.map), r.map.f}",
        "redis.setresp(3) local r = redis.call('smembers', 's') return {type(r.set), tostring(r.set.m)}",
        "redis.setresp(3) return redis.call('smembers', 's')",
        "redis.setresp(3) local r = redis.call('zscore', 'z', 'a') return {r.double, type(r.double)}",
        "redis.setresp(3) return redis.call('zscore', 'z', 'a')",
        "redis.setresp(3) return {type(redis.call('get', 'nokey'))}",
        "redis.setresp(3) return redis.call('get', 'nokey')",
        "return {type(redis.call('get', 'nokey'))}",
        "redis.setresp(3) return false",
        "redis.setresp(3) return true",
        "return false",
        "redis.setresp(2) return false",
        "return {double=3.5}",
        "return {double=0.1}",
        "return {big_number='123456789012345678901234567890'}",
        "return {map={a=1}}",
        "return {set={a=true}}",
        "return {verbatim_string={format='txt', string='hello'}}",
        "redis.setresp(3) return redis.call('ping')",
        "redis.setresp(3) return redis.pcall('incr', 'h')",
        "return redis.setresp()",
        "return redis.setresp(4)",
        "return redis.setresp('3')",
        "return redis.acl_check_cmd('nope')",
    ];
    let s = cascade(&[]);
    let r = redis(&[]);
    for proto in ["2", "3"] {
        let (mut c, mut rc) = (s.conn(), r.conn());
        for conn in [&mut c, &mut rc] {
            assert!(!conn.cmd(&["HELLO", proto]).is_error());
            conn.cmd(&["HSET", "h", "f", "v"]);
            conn.cmd(&["SADD", "s", "m"]);
            conn.cmd(&["ZADD", "z", "1.5", "a"]);
        }
        for body in script {
            let args: [&[u8]; 3] = [b"EVAL", body.as_bytes(), b"0"];
            let (ours, theirs) = (c.cmdb(&args), rc.cmdb(&args));
            // Error texts name the script by SHA-1: the same on both.
            assert_eq!(ours, theirs, "HELLO {proto}: {body}");
        }
    }
}

#[test]
fn struct_library_matches_redis() {
    // Every option, both byte orders, alignment, edge values and each
    // error, returned as Redis converts the values (numbers truncated).
    let script = [
        "return struct.pack('>i', 258)",
        "return struct.pack('<iI2d', -5, 65535, 1.5)",
        "return {struct.unpack('<iI2d', struct.pack('<iI2d', -5, 65535, 1.5))}",
        "return {struct.unpack('>hHbBlLT', struct.pack('>hHbBlLT', -2, 2, -3, 3, -4, 4, 5))}",
        "return struct.pack('<i10', -1)",
        "return {struct.unpack('<i10', struct.pack('<i10', -1))}",
        "return {struct.unpack('<I9', string.rep(string.char(255), 9))}",
        "return {struct.unpack('<i9', string.rep(string.char(255), 8) .. string.char(1))}",
        "return {struct.unpack('>i3', struct.pack('>i3', -70000))}",
        "return struct.pack('<b', 300)",
        "return struct.pack('<B', -1)",
        "return struct.pack('<I', 2^40)",
        "return struct.pack('<i', 3.7)",
        "return struct.pack('<i', -3.7)",
        "return struct.pack('<i', '12')",
        "return {struct.unpack('<f', struct.pack('<f', 0.1))}",
        "return {struct.unpack('>d', struct.pack('>d', -2.5e10))}",
        "return struct.pack('!4bi', 1, 2)",
        "return {struct.unpack('!4bi', struct.pack('!4bi', 1, 2))}",
        "return struct.pack('!bd', 1, 2)",
        "return struct.pack('!2bi3', 1, 2)",
        "return struct.pack('x b x', 7)",
        "return struct.pack('c0', 'abc')",
        "return struct.pack('c2', 'abc')",
        "return struct.pack('c', 'abc')",
        "return struct.pack('s', 'ab')",
        "return {struct.unpack('bc0', struct.pack('bc0', 2, 'hi'))}",
        "return {struct.unpack('s', 'ab\\0cd')}",
        "return {struct.unpack('c2', 'abcd', 2)}",
        "return {struct.unpack('<b', 'abc', 3)}",
        "return {struct.unpack('i0', 'ab')}",
        "return {struct.unpack('', 'ab', 5)}",
        "return struct.unpack('b', 1)",
        "return {struct.size('>iI2d'), struct.size('!'), struct.size('!d'), struct.size('!4bd'), struct.size('bd'), struct.size('c'), struct.size('i0'), struct.size('T')}",
        "return 2^63",
        "return -2^63 - 5000",
        "return 0/0",
        "return struct.pack('i33', 1)",
        "return struct.pack('i99999999999', 1)",
        "return struct.pack('q', 1)",
        "return struct.pack('=i', 1)",
        "return struct.pack('!3i', 1)",
        "return struct.pack()",
        "return struct.pack(1, 2)",
        "return struct.pack('b')",
        "return struct.pack('s')",
        "return struct.pack('c5', 'ab')",
        "return struct.pack('i', 'x')",
        "return struct.pack('i', {})",
        "return struct.unpack('b')",
        "return struct.unpack('I4', 'ab')",
        "return struct.unpack('<b', 'abc', 0)",
        "return struct.unpack('<b', 'abc', -1)",
        "return struct.unpack('<b', 'abc', 4)",
        "return struct.unpack('c0', 'abc')",
        "return struct.unpack('s', 'abc')",
        "return struct.size()",
        "return struct.size('s')",
        "return struct.size('c0')",
        "return struct.size('>y<')",
        "return struct.size('!3')",
        "local ok, e = pcall(function() local x = struct.pack('q') end) return e",
        "local ok, e = pcall(function() local a, b = struct.unpack('bb', struct.pack('bb', 1, 2)) return {a, b} end) return e",
    ];
    let s = cascade(&[]);
    let r = redis(&[]);
    let (mut c, mut rc) = (s.conn(), r.conn());
    for body in script {
        let args: [&[u8]; 3] = [b"EVAL", body.as_bytes(), b"0"];
        assert_eq!(c.cmdb(&args), rc.cmdb(&args), "{body}");
    }
}

/// Runs each script body with `EVAL body 0` on both servers (after the
/// same setup), requiring the same reply. Bodies are sent whole: the
/// line-splitting comparison cuts a script at its spaces.
fn same_eval_replies(setup: &[&[&str]], bodies: &[&str]) {
    let (ours, theirs) = (cascade(&[]), redis(&[]));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    for conn in [&mut o, &mut r] {
        for cmd in setup {
            assert!(!conn.cmd(cmd).is_error(), "{cmd:?}");
        }
    }
    for body in bodies {
        let args: [&[u8]; 3] = [b"EVAL", body.as_bytes(), b"0"];
        assert_eq!(o.cmdb(&args), r.cmdb(&args), "{body}");
    }
}

#[test]
fn script_refuses_what_redis_refuses_from_scripts() {
    // SCRIPT's subcommands but HELP are `noscript`; an unknown subcommand
    // is an unknown command; XREAD and XREADGROUP refuse BLOCK where they
    // meet it (before a bad timeout or WRONGTYPE), naming the command as
    // the script spelled it.
    same_eval_replies(
        &[&["SET", "str", "x"]],
        &[
            "return redis.call('SCRIPT','FLUSH')",
            "return redis.call('script','load','return 1')",
            "return redis.pcall('SCRIPT','EXISTS','abc')",
            "return redis.pcall('SCRIPT','KILL')",
            "return redis.pcall('SCRIPT','nosuch')",
            "return redis.pcall('CONFIG','nosuch')",
            "return redis.pcall('SCRIPT')",
            "return #redis.pcall('SCRIPT','HELP')",
            "return redis.call('XREAD','BLOCK','0','STREAMS','s','$')",
            "return redis.call('xread','COUNT','1','BLOCK','x','STREAMS','s','$')",
            "return redis.call('xread','STREAMS','BLOCK','1')",
            "return redis.call('xreadgroup','GROUP','g','c','BLOCK','0','STREAMS','str','>')",
            "return redis.call('XREADGROUP','GROUP','g','c','STREAMS','str','>')",
        ],
    );
}

#[test]
fn lua_environment_matches_redis() {
    same_eval_replies(
        &[],
        &[
            // Globals Redis 7.0 removes, and the real global table.
            "return type(getfenv)",
            "return type(setfenv)",
            "return type(newproxy)",
            "return type(debug)",
            "return type(rawget(_G, 'KEYS'))",
            "return type(rawget(_G, 'redis'))",
            "return rawget(_G, 'debug')",
            "return rawget(_G, '_G') == _G",
            "rawset(_G, 'x', 1) return 1",
            "return type(getmetatable(_G))",
            "local n = 0 for k in pairs(_G) do if k == 'redis' or k == 'debug' then n = n + 1 end end return n",
            // cmsgpack's partial unpacking and cjson's buffer switch.
            "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2))}",
            "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), 1)}",
            "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), 2)}",
            "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), 5)}",
            "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), -1)}",
            "return {cmsgpack.unpack_one()}",
            "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)}",
            "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), '2', 1)}",
            "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2), 0)}",
            "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2))}",
            "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2), 'x')}",
            "return {cmsgpack._NAME, cmsgpack._VERSION, cjson._NAME, cjson._VERSION}",
            "return {cjson.encode_keep_buffer(), cjson.encode_keep_buffer('off'), cjson.encode_keep_buffer(true)}",
            "return cjson.encode_keep_buffer('x')",
            "return cjson.encode_keep_buffer(1, 2)",
            "return cjson.encode_keep_buffer({})",
        ],
    );
}

#[test]
fn lua_errors_and_helpers_match_redis() {
    same_eval_replies(
        &[&["SET", "kk", "x"]],
        &[
            // pcall gives redis.call's error as its text (7.0); xpcall's
            // handler gets the table; C functions' errors carry no position.
            "local ok, e = pcall(redis.call, 'nosuch') return e",
            "local ok, e = pcall(function() return redis.call('incr', 'kk') end) return {type(e), e}",
            "local ok, e = xpcall(function() return redis.call('incr', 'kk') end, function(m) return type(m) end) return e",
            "local ok, e = pcall(redis.call, 'nosuch') error(e)",
            "local ok, e = pcall(error, 'x') return e",
            "local ok, e = pcall(error, {err = 5}) return {type(e), e}",
            "local ok, e = pcall(error, {err = '-A b'}) return e",
            "local ok, e = pcall(string.rep) return e",
            // Error replies: Redis's code parsing, verbatim `err` fields.
            "return redis.error_reply('boom')",
            "return redis.error_reply('boom').err",
            "return redis.error_reply('-X y')",
            "return redis.error_reply('-X y').err",
            "return redis.error_reply('x\\n').err",
            "return redis.error_reply('')",
            "return redis.error_reply('a', 'b')",
            "return redis.error_reply()",
            "return redis.status_reply('a', 'b')",
            "return {err = '-MYERR x'}",
            "return {err = ''}",
            "return {1, {err = '-Y z'}}",
            "error(redis.error_reply('boom'))",
            "error({err = '-MYERR x'})",
            "error({err = 5})",
            // Argument checks of the redis.* helpers.
            "return redis.sha1hex()",
            "return redis.sha1hex('a', 'b')",
            "return redis.sha1hex({})",
            "return redis.sha1hex(5)",
            "return redis.log(99, 'x')",
            "return redis.log()",
            "return redis.log(1)",
            "return redis.log('1', 'x')",
            "return redis.log('x', 'x')",
            "return redis.log(-1, 'x')",
            "return redis.set_repl()",
            "return redis.set_repl(1, 2)",
            "return redis.set_repl(99)",
            "return redis.set_repl('x')",
        ],
    );
}

#[test]
fn script_flush_and_debug_options_match_redis() {
    let (ours, theirs) = (cascade(&[]), redis(&[]));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    // YES and SYNC would start Redis's debugger: not compared.
    assert_same_replies(
        &mut o,
        &mut r,
        &[
            "SCRIPT FLUSH SYNC ASYNC",
            "SCRIPT FLUSH x",
            "SCRIPT FLUSH ASYNC",
            "SCRIPT DEBUG NO",
            "SCRIPT DEBUG no",
            "SCRIPT DEBUG x",
            "SCRIPT DEBUG",
            "SCRIPT DEBUG NO x",
        ],
    );
    assert!(o.cmd(&["SCRIPT", "DEBUG", "YES"]).is_error());
}

#[test]
fn resp3_nan_double_keeps_its_sign() {
    let (ours, theirs) = (cascade(&[]), redis(&[]));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    for conn in [&mut o, &mut r] {
        assert!(!conn.cmd(&["HELLO", "3"]).is_error());
    }
    for body in ["return {double = 0/0}", "return {double = -(0/0)}"] {
        let args: [&[u8]; 3] = [b"EVAL", body.as_bytes(), b"0"];
        assert_eq!(o.cmdb(&args), r.cmdb(&args), "{body}");
    }
}
