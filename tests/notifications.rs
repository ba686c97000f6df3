//! Keyspace notifications (`notify-keyspace-events`): the events of every
//! command family, compared with Debian's redis-server 7.0 event for event
//! (same script on both, same order), plus what a script cannot show:
//! active expiry, eviction, a replica applying its master's stream, and
//! the classes switched off.

mod common;
use common::family::{cascade, redis};
use common::{Conn, Server, Value};
use std::time::{Duration, Instant};

/// Every event class, `new` and `keymiss` included (what `A` leaves
/// out), on both channels.
const ALL_WITH_NEW: &str = "KEAnm";

/// One command of the script, as arguments.
fn cmd(line: &str) -> Vec<Vec<u8>> {
    common::args_of(line)
}

/// The script: every notifying command of each family, the no-op forms
/// that must stay silent, and lazy expiry (the active cycle is off, so the
/// order is deterministic). `RESTORE` gets a payload DUMPed by Redis.
fn script(payload: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let text = "\
        set a 1|set a 2 ex 100|set a 3 keepttl|set b x nx|set b y xx|set c z xx|\
        setnx a 1|setnx d 1|setex e 100 v|psetex f 100000 v|getset a 9|getdel a|getdel a|\
        getex b ex 100|getex b persist|getex b|mset m1 1 m2 2|msetnx m1 1 m3 3|msetnx m4 1 m5 5|\
        incr n|decr n|incrby n 5|decrby n 5|incrbyfloat n 1.5|append n x|append new x|\
        setrange n 0 ab|setrange sr 0 \"\"|setrange sr2 3 x|del n new zz|unlink m1 m2|\
        expire b 100|pexpire b 100000|expire b 0|expire zz 100|set t 1|expireat t 1|set t 1|\
        expire t 100|persist t|persist t|rename t t2|set t3 x|rename t2 t3|renamenx t3 t4|\
        move t4 1|set cp 1|copy cp cp2|copy cp cp2 replace|setbit bits 3 1|setbit bits 3 1|\
        bitop and bdst bits bits|bitop and bdst2 nokey nokey2|bitfield bf set u8 0 255|\
        bitfield bf get u8 0|lpush l a b c|rpush l d|lpushx l e|rpushx nol e|\
        linsert l before a z|lset l 0 q|lpop l|rpop l|lrem l 1 z|ltrim l 0 0|lpop l|\
        rpush l1 a b|rpoplpush l1 l2|lmove l1 l2 left right|lmpop 1 l2 left count 5|\
        rpush l3 a|lmove l3 l3 left right|\
        hset h f v g w|hsetnx h f v|hsetnx h x v|hdel h f g x|hincrby h2 f 1|\
        hincrbyfloat h2 g 1.5|hdel h2 f g|sadd s a b c|sadd s a|srem s a|srem s a b c|sadd s c|\
        smove s s2 c|sadd one x|spop one|sadd two x y|spop two 5|sadd s3 a|sadd s4 b|\
        sinterstore s5 s3 s4|sunionstore s5 s3 s4|sdiffstore s6 s3 s4|sinterstore s6 s3 s4|\
        zadd z 1 a 2 b 3 c|zadd z incr 1 a|zincrby z 1 a|zrem z a|zadd z 1 a 2 d 3 e|\
        zremrangebyscore z 0 1|zremrangebyrank z 0 0|zadd z 0 aa 0 ab|zremrangebylex z [aa [ab|\
        zpopmin z|zpopmax z|zadd za 1 a|zadd zb 1 b|zunionstore zc 2 za zb|\
        zinterstore zd 2 za zb|zdiffstore ze 2 za zb|zrangestore zf za 0 -1|\
        zmpop 1 zc min count 1|bzpopmin zc 0|zadd zz 1 a|bzmpop 0 1 zz max|\
        rpush bl a|blpop bl 0|rpush bl a|blmove bl bl2 left right 0|blmpop 0 1 bl2 right|\
        xadd x 1-1 f v|xadd x maxlen 1 2-1 f v|xtrim x maxlen 0|xadd x 3-1 f v|xdel x 3-1|\
        xgroup create x g 0|xgroup createconsumer x g c1|xadd x 4-1 f v|\
        xreadgroup group g c2 count 1 streams x >|xack x g 4-1|xadd x 5-1 f v|\
        xreadgroup group g c2 count 1 streams x >|xclaim x g c3 0 5-1|xautoclaim x g c4 0 0|\
        xgroup delconsumer x g c1|xgroup setid x g 0|xsetid x 9-1|xgroup destroy x g|\
        xgroup create ns g $ mkstream|\
        pfadd hl a|pfadd hl a|pfadd hl2 b|pfmerge hl3 hl hl2|pfcount hl|\
        geoadd g 13.361389 38.115556 p 15.087269 37.502669 q|\
        geosearchstore gd g fromlonlat 15 37 byradius 200 km asc|\
        georadius g 15 37 200 km store gd2|geosearchstore gd g fromlonlat 0 0 byradius 1 km asc|\
        rpush srt 3 1 2|sort srt store srtd|sort nosuch store srtd|\
        set ttlk v|getex ttlk px 100000|set d1 x|expire d1 -1|\
        set e1 v px 1|debug sleep 0.01|get e1|set e2 v px 1|debug sleep 0.01|set e2 w|\
        set e3 v px 1|debug sleep 0.01|incr e3|\
        select 3|set a 1|del a|select 0|swapdb 0 3|flushall|flushdb";
    let mut out: Vec<Vec<Vec<u8>>> = text.split('|').map(cmd).collect();
    // A script's writes notify too.
    out.push(vec![
        b"eval".to_vec(),
        b"redis.call('set','sc','1') redis.call('lpush','sl','x') return 1".to_vec(),
        b"0".to_vec(),
    ]);
    // RESTORE: a new key, a replaced one, and a replaced one already expired.
    for extra in [
        vec![
            b"restore".to_vec(),
            b"r1".to_vec(),
            b"0".to_vec(),
            payload.to_vec(),
        ],
        vec![
            b"restore".to_vec(),
            b"r1".to_vec(),
            b"0".to_vec(),
            payload.to_vec(),
            b"replace".to_vec(),
        ],
        vec![
            b"restore".to_vec(),
            b"r1".to_vec(),
            b"1".to_vec(),
            payload.to_vec(),
            b"replace".to_vec(),
            b"absttl".to_vec(),
        ],
    ] {
        out.insert(out.len() - 6, extra);
    }
    out
}

/// A subscriber to every keyspace and keyevent channel, and to a marker
/// channel that tells it when a command's events are all in.
struct Listener {
    conn: Conn,
}

const MARKER: &str = "zz:marker";

impl Listener {
    fn new(server: &Server) -> Listener {
        let mut conn = server.conn();
        conn.set_read_timeout(Duration::from_secs(10));
        conn.send(&[b"PSUBSCRIBE", b"__key*__:*"]);
        conn.read();
        conn.send(&[b"SUBSCRIBE", MARKER.as_bytes()]);
        conn.read();
        Listener { conn }
    }

    /// The events received before marker `n`, as `channel=payload`.
    fn until_marker(&mut self, n: usize) -> Vec<String> {
        let mut events = Vec::new();
        loop {
            let m = self.conn.read();
            let parts = m.array();
            match parts[0].text().as_str() {
                "message" if parts[1].text() == MARKER => {
                    assert_eq!(parts[2].text(), n.to_string(), "markers out of order");
                    return events;
                }
                "pmessage" => events.push(format!("{}={}", parts[2].text(), parts[3].text())),
                other => panic!("unexpected push {other}: {m:?}"),
            }
        }
    }
}

/// Runs `script` on `server` with `flags`; per command: its reply and the
/// events it caused.
fn run(server: &Server, flags: &str, script: &[Vec<Vec<u8>>]) -> Vec<(String, Vec<String>)> {
    let mut c = server.conn();
    assert_eq!(c.cmd(&["FLUSHALL"]), Value::ok());
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), Value::ok());
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", flags]),
        Value::ok()
    );
    let mut listener = Listener::new(server);
    let mut out = Vec::new();
    for (i, args) in script.iter().enumerate() {
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let reply = c.cmdb(&refs);
        c.cmd(&["PUBLISH", MARKER, &i.to_string()]);
        let line = String::from_utf8_lossy(&args.join(&b' ')).into_owned();
        // Replies of random commands (SPOP) are not compared; their events are.
        out.push((format!("{line} -> {reply:?}"), listener.until_marker(i)));
    }
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]),
        Value::ok()
    );
    out
}

fn redis_payload(redis: &Server) -> Vec<u8> {
    let mut c = redis.conn();
    c.cmd(&["SET", "dumped", "x"]);
    let Value::Bulk(p) = c.cmd(&["DUMP", "dumped"]) else {
        panic!("DUMP gave no payload");
    };
    c.cmd(&["DEL", "dumped"]);
    p
}

fn assert_same_events(
    ours: &[(String, Vec<String>)],
    theirs: &[(String, Vec<String>)],
    same_order: bool,
) {
    assert_eq!(ours.len(), theirs.len());
    let mut mismatches = Vec::new();
    for ((line, mut a), (_, mut b)) in ours.iter().cloned().zip(theirs.iter().cloned()) {
        if !same_order {
            a.sort();
            b.sort();
        }
        if a != b {
            mismatches.push(format!("{line}\n  cascade: {a:?}\n  redis:   {b:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} command(s) notify differently:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_family_notifies_like_redis_event_for_event() {
    let r = redis(&[]);
    let payload = redis_payload(&r);
    let script = script(&payload);
    let theirs = run(&r, ALL_WITH_NEW, &script);
    // Sanity: the script does make Redis talk.
    assert!(theirs.iter().filter(|(_, e)| !e.is_empty()).count() > 100);

    // One shard: every event in Redis's order.
    let one = cascade(&["--shards", "1"]);
    let ours = run(&one, ALL_WITH_NEW, &script);
    assert_same_events(&ours, &theirs, true);

    // Two shards: the same events; a command spanning shards announces
    // them shard by shard, so only their set is compared.
    let two = cascade(&[]);
    let ours = run(&two, ALL_WITH_NEW, &script);
    assert_same_events(&ours, &theirs, false);

    // Only some classes, and only the keyevent channel.
    let theirs = run(&r, "El$", &script);
    let ours = run(&one, "El$", &script);
    assert_same_events(&ours, &theirs, true);
    assert!(ours
        .iter()
        .flat_map(|(_, e)| e)
        .all(|e| e.starts_with("__keyevent@")));
}

/// Reads of missing keys by every kind of lookup: those Redis announces
/// as `keymiss` (and counts as misses) and those it does not.
const MISSES: &str = "\
    get nokey|set a 1|get a|mget a nokey nokey2|exists nokey a|type nokey|ttl nokey|\
    pttl nokey|expiretime nokey|strlen nokey|getrange nokey 0 1|hget nokey f|hgetall nokey|\
    hexists nokey f|hlen nokey|hmget nokey f|hstrlen nokey f|hrandfield nokey|\
    lrange nokey 0 -1|lindex nokey 0|llen nokey|lpos nokey a|lpop nokey|lmpop 1 nokey left|\
    smembers nokey|sismember nokey a|scard nokey|srandmember nokey|sunion nokey nokey2|\
    sinter nokey a|sintercard 2 nokey a|sunionstore dst nokey nokey2|sdiffstore dd nokey a|\
    sinterstore dd nokey a|smove nokey x a|srem nokey a|\
    zrange nokey 0 -1|zscore nokey a|zcard nokey|zrank nokey a|zrandmember nokey|\
    zunion 2 nokey nokey2|zunionstore dz 2 nokey nokey2|zinterstore dz 2 nokey nokey2|\
    zrangestore dz nokey 0 -1|zintercard 2 nokey nokey2|zrem nokey a|\
    xrange nokey - +|xrevrange nokey + -|xlen nokey|dump nokey|pfcount nokey|pfmerge dp nokey|\
    object encoding nokey|touch nokey|getdel nokey|getex nokey|incr cnt|append nokey2 x|\
    del nokey2|sort nokey|sort nokey store ds|bitcount nokey|getbit nokey 1|bitpos nokey 1|\
    bitop and db nokey|lcs nokey a|geopos nokey p|geodist nokey a b|\
    georadius nokey 0 0 1 km store dg|memory usage nokey|lmove nokey x left left|\
    rpoplpush nokey x|hincrby nokey f 1|copy nokey x|rename nokey x|\
    set e1 v px 1|debug sleep 0.01|get e1|set e2 v px 1|debug sleep 0.01|exists e2";

#[test]
fn reads_of_missing_keys_announce_keymiss_like_redis() {
    let script: Vec<Vec<Vec<u8>>> = MISSES.split('|').map(cmd).collect();
    let r = redis(&[]);
    let theirs = run(&r, "Km", &script);
    assert!(theirs.iter().filter(|(_, e)| !e.is_empty()).count() > 40);
    let one = cascade(&["--shards", "1"]);
    assert_same_events(&run(&one, "Km", &script), &theirs, true);
    // Each announced miss is a counted miss, as in Redis.
    let misses = |s: &Server| -> i64 { s.info_field("stats", "keyspace_misses").parse().unwrap() };
    assert_eq!(misses(&one), misses(&r));
}

#[test]
fn nothing_is_published_while_notifications_are_off() {
    let s = cascade(&[]);
    let script: Vec<Vec<Vec<u8>>> = ["set a 1", "lpush l x", "del a l", "set e v px 1"]
        .iter()
        .map(|l| cmd(l))
        .collect();
    for flags in ["", "A", "Kn"] {
        let events = run(&s, flags, &script);
        let all: Vec<&String> = events.iter().flat_map(|(_, e)| e).collect();
        if flags == "Kn" {
            // `n` alone: only new keys.
            assert_eq!(
                all,
                [
                    "__keyspace@0__:a=new",
                    "__keyspace@0__:l=new",
                    "__keyspace@0__:e=new"
                ]
            );
        } else {
            assert!(all.is_empty(), "{flags:?} published {all:?}");
        }
    }
}

/// Waits for a keyevent message on `listener` (pmessage on `channel`).
fn wait_event(listener: &mut Listener, channel: &str, deadline: Duration) -> String {
    let end = Instant::now() + deadline;
    loop {
        assert!(Instant::now() < end, "no event on {channel}");
        let m = listener.conn.read();
        let parts = m.array();
        if parts[0].text() == "pmessage" && parts[2].text() == channel {
            return parts[3].text();
        }
    }
}

#[test]
fn the_active_expiry_cycle_announces_expired_keys() {
    let s = cascade(&["--notify-keyspace-events", "Ex"]);
    let mut listener = Listener::new(&s);
    let mut c = s.conn();
    // Never read again: only the active cycle can expire it.
    c.cmd(&["SET", "soon", "v", "PX", "50"]);
    assert_eq!(
        wait_event(
            &mut listener,
            "__keyevent@0__:expired",
            Duration::from_secs(10)
        ),
        "soon"
    );
    assert_eq!(c.cmd(&["DBSIZE"]).int(), 0);
}

#[test]
fn eviction_announces_evicted_keys() {
    let s = cascade(&["--notify-keyspace-events", "Ee"]);
    let mut listener = Listener::new(&s);
    let mut c = s.conn();
    let used: u64 = common::info_field(&mut c, "memory", "used_memory")
        .parse()
        .unwrap();
    let limit = (used + 2 * 1024 * 1024).to_string();
    c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    c.cmd(&["CONFIG", "SET", "maxmemory", &limit]);
    let value = "v".repeat(1024);
    for i in 0..6000 {
        let r = c.cmd(&["SET", &format!("k{i}"), &value]);
        assert!(!r.is_error(), "{r:?}");
    }
    let key = wait_event(
        &mut listener,
        "__keyevent@0__:evicted",
        Duration::from_secs(10),
    );
    assert!(key.starts_with('k'), "{key}");
    c.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
}

#[test]
fn a_replica_announces_what_its_master_streams() {
    let master = cascade(&[]);
    let port = master.port.to_string();
    let replica = cascade(&[
        "--replicaof",
        "127.0.0.1",
        &port,
        "--notify-keyspace-events",
        "KEA",
    ]);
    common::wait_until(Duration::from_secs(20), "replica linked", || {
        replica.info_field("replication", "master_link_status") == "up"
    });
    let mut listener = Listener::new(&replica);
    let mut m = master.conn();
    m.cmd(&["RPUSH", "queue", "job"]);
    assert_eq!(
        wait_event(
            &mut listener,
            "__keyspace@0__:queue",
            Duration::from_secs(10)
        ),
        "rpush"
    );
    m.cmd(&["SET", "ttl", "v", "EX", "100"]);
    assert_eq!(
        wait_event(
            &mut listener,
            "__keyevent@0__:expire",
            Duration::from_secs(10)
        ),
        "ttl"
    );
}
