//! GEO commands checked against Debian's redis-server: fixed cases with
//! every error, RESP3 shapes, a seeded walk of points and searches (radius
//! and box, near the poles and the antimeridian, with COUNT, ANY, ASC,
//! DESC and every WITH option, so cell choice, distances and their
//! formatting, and the order of ties must all be Redis's), stores across
//! shards, and replication both ways with a real Redis.

mod common;
use common::family::{cascade, digest, keys_on, redis};
use common::repl::{start, start_redis, wait_in_sync, wait_in_sync_applying_all};
use common::{assert_same_replies, Conn, Rng};

fn same(o: &mut Conn, r: &mut Conn, args: &[String]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    common::assert_same_reply(o, r, &args);
}

#[test]
fn geo_commands_answer_like_redis() {
    let (ours, theirs) = (cascade(&[]), redis(&[]));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    let script = [
        "GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
        "GEOADD Sicily 13.583333 37.316667 Agrigento 12.758489 38.788135 edge1",
        "GEOADD Sicily",
        "GEOADD Sicily 1 2",
        "GEOADD Sicily 1 2 a 3",
        "GEOADD Sicily NX XX 1 2 a",
        "GEOADD Sicily 200 100 a",
        "GEOADD Sicily -180.0000001 0 a",
        "GEOADD Sicily inf 1 a",
        "GEOADD Sicily x 2 a",
        "GEOADD Sicily nan 2 a",
        "GEOADD Sicily CH 13.361389 38.2 Palermo",
        "GEOADD Sicily XX 1 1 nobody",
        "GEOADD Sicily NX 1 1 Palermo",
        "ZRANGE Sicily 0 -1 WITHSCORES",
        "GEOPOS Sicily Palermo Catania nope",
        "GEOPOS Sicily",
        "GEOPOS missing a",
        "GEODIST Sicily Palermo Catania",
        "GEODIST Sicily Palermo Catania KM",
        "GEODIST Sicily Palermo Catania mi",
        "GEODIST Sicily Palermo Catania ft",
        "GEODIST Sicily Palermo Catania parsecs",
        "GEODIST Sicily Palermo Catania km x",
        "GEODIST Sicily Palermo nope",
        "GEODIST Sicily Palermo Palermo",
        "GEOHASH Sicily Palermo Catania nope",
        "GEOHASH missing a b",
        "GEORADIUS Sicily 15 37 200 km",
        "GEORADIUS Sicily 15 37 200 km WITHDIST WITHCOORD WITHHASH",
        "GEORADIUS Sicily 15 37 200 km WITHDIST DESC COUNT 2",
        "GEORADIUS Sicily 15 37 200 km COUNT 1 ANY",
        "GEORADIUS Sicily 15 37 200 km ANY",
        "GEORADIUS Sicily 15 37 -1 km",
        "GEORADIUS Sicily 15 37 x km",
        "GEORADIUS Sicily 15 37 200 parsecs",
        "GEORADIUS Sicily 15 37 200 km COUNT 0",
        "GEORADIUS Sicily 15 37 200 km COUNT x",
        "GEORADIUS Sicily 15 37 200 km BOGUS",
        "GEORADIUS Sicily 200 37 200 km",
        "GEORADIUSBYMEMBER Sicily Palermo 100 km WITHDIST",
        "GEORADIUSBYMEMBER Sicily nope 100 km",
        "GEORADIUSBYMEMBER missing nope -200 yd",
        "GEORADIUS_RO Sicily 15 37 200 km STORE dst",
        "GEORADIUSBYMEMBER_RO Sicily Palermo 200 km WITHDIST",
        "GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 200 km WITHDIST",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km WITHDIST WITHCOORD ASC",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX -1 400 km",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX x 400 km",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 y km",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 20000 km",
        "GEOSEARCH Sicily FROMLONLAT 15 37",
        "GEOSEARCH Sicily BYRADIUS 10 km",
        "GEOSEARCH Sicily FROMMEMBER Palermo FROMLONLAT 1 2 BYRADIUS 10 km",
        "GEOSEARCH Sicily FROMMEMBER nope BYRADIUS 10 km",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 10 km BYBOX 1 1 km",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km STORE x",
        "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ANY",
        "GEOSEARCH missing FROMLONLAT 15 37 BYRADIUS 200 km",
        "GEOSEARCH missing FROMMEMBER x BYRADIUS 200 km",
        "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km",
        "ZRANGE dst 0 -1 WITHSCORES",
        "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
        "ZRANGE dst 0 -1 WITHSCORES",
        "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST",
        "GEOSEARCHSTORE dst Sicily FROMLONLAT 0 0 BYRADIUS 1 km",
        "EXISTS dst",
        "GEORADIUS Sicily 15 37 200 km STORE dst2",
        "ZRANGE dst2 0 -1 WITHSCORES",
        "GEORADIUS Sicily 15 37 200 km STOREDIST dst2 COUNT 2 DESC",
        "ZRANGE dst2 0 -1 WITHSCORES",
        "GEORADIUS Sicily 15 37 200 km STORE dst2 WITHDIST",
        "GEORADIUS missing 15 37 200 km STORE dst2",
        "EXISTS dst2",
        "GEOADD corner 180 85.05112878 c 179.99 85.05 d",
        "ZRANGE corner 0 -1 WITHSCORES",
        "GEOSEARCH corner FROMLONLAT 180 85.05112878 BYRADIUS 10 km",
        "GEOSEARCH corner FROMLONLAT 179.99 85.05 BYRADIUS 10 km",
        "GEOHASH corner c d",
        "ZADD bad -1 a 1.5 b inf c -inf d 9007199254740992 e 1e19 f",
        "GEOPOS bad a b c d e f",
        "GEOHASH bad a b c d e f",
        "SET str x",
        "GEOADD str 1 1 a",
        "GEOPOS str a",
        "GEODIST str a b",
        "GEOSEARCH str FROMLONLAT 1 1 BYRADIUS 1 km",
        "GEORADIUS str 1 1 1 km",
    ];
    assert_same_replies(&mut o, &mut r, &script);
    // 200 members at one point: the first 5 of a COUNT come out as
    // Redis's partial sort leaves its ties.
    for i in 0..200 {
        let m = format!("m{i}");
        for c in [&mut o, &mut r] {
            c.cmd(&["GEOADD", "ties", "10", "10", &m]);
        }
    }
    assert_same_replies(
        &mut o,
        &mut r,
        &[
            "GEOSEARCH ties FROMLONLAT 10 10 BYRADIUS 1 km COUNT 5",
            "GEOSEARCH ties FROMLONLAT 10 10 BYRADIUS 1 km COUNT 5 DESC",
            "GEOSEARCH ties FROMLONLAT 10 10 BYRADIUS 1 km COUNT 60 WITHDIST",
            "GEOSEARCH ties FROMLONLAT 10 10 BYRADIUS 1 km COUNT 5 ANY",
            "GEOSEARCH ties FROMLONLAT 10 10 BYRADIUS 1 km DESC",
        ],
    );
    // RESP3: coordinates are doubles, distances stay strings.
    for c in [&mut o, &mut r] {
        c.cmd(&["HELLO", "3"]);
    }
    assert_same_replies(
        &mut o,
        &mut r,
        &[
            "GEOPOS Sicily Palermo nope",
            "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST WITHCOORD WITHHASH",
            "GEODIST Sicily Palermo Catania",
        ],
    );
    assert_eq!(digest(&mut o), digest(&mut r));
}

/// A random point: anywhere, or near a pole or the antimeridian.
fn point(rng: &mut Rng) -> (String, String) {
    let frac = |rng: &mut Rng| rng.below(1_000_000) as f64 / 1_000_000.0;
    let (long, lat) = match rng.below(4) {
        0 => (frac(rng) * 360.0 - 180.0, frac(rng) * 170.0 - 85.0),
        1 => (frac(rng) * 360.0 - 180.0, 80.0 + frac(rng) * 5.05),
        2 => (179.0 + frac(rng), frac(rng) * 20.0 - 10.0),
        _ => (10.0 + frac(rng) * 2.0, 45.0 + frac(rng) * 2.0),
    };
    (format!("{long:.6}"), format!("{lat:.6}"))
}

fn random_geo_work(o: &mut Conn, r: &mut Conn, steps: usize, seed: u64) {
    let mut rng = Rng(seed);
    let units = ["m", "km", "mi", "ft"];
    for i in 0..400 {
        let (long, lat) = point(&mut rng);
        same(
            o,
            r,
            &["GEOADD".into(), "pts".into(), long, lat, format!("p{i}")],
        );
    }
    for _ in 0..steps {
        let (long, lat) = point(&mut rng);
        let unit = units[rng.below(4) as usize].to_string();
        let size = |rng: &mut Rng| {
            let scale = [10.0, 1_000.0, 100_000.0, 3_000_000.0][rng.below(4) as usize];
            format!("{:.3}", scale * (0.05 + rng.below(1000) as f64 / 1000.0))
        };
        let mut cmd: Vec<String> = match rng.below(4) {
            0 => vec![
                "GEORADIUS_RO".into(),
                "pts".into(),
                long,
                lat,
                size(&mut rng),
                unit,
            ],
            1 => vec![
                "GEORADIUSBYMEMBER_RO".into(),
                "pts".into(),
                format!("p{}", rng.below(400)),
                size(&mut rng),
                unit,
            ],
            2 => vec![
                "GEOSEARCH".into(),
                "pts".into(),
                "FROMLONLAT".into(),
                long,
                lat,
                "BYBOX".into(),
                size(&mut rng),
                size(&mut rng),
                unit,
            ],
            _ => vec![
                "GEOSEARCH".into(),
                "pts".into(),
                "FROMMEMBER".into(),
                format!("p{}", rng.below(400)),
                "BYRADIUS".into(),
                size(&mut rng),
                unit,
            ],
        };
        for opt in ["WITHDIST", "WITHCOORD", "WITHHASH"] {
            if rng.below(2) == 0 {
                cmd.push(opt.into());
            }
        }
        match rng.below(6) {
            0 => cmd.push("ASC".into()),
            1 => cmd.push("DESC".into()),
            _ => {}
        }
        match rng.below(4) {
            0 => cmd.extend(["COUNT".into(), (1 + rng.below(10)).to_string()]),
            1 => cmd.extend([
                "COUNT".into(),
                (1 + rng.below(10)).to_string(),
                "ANY".into(),
            ]),
            _ => {}
        }
        same(o, r, &cmd);
        if rng.below(10) == 0 {
            let (a, b) = (rng.below(400), rng.below(400));
            same(
                o,
                r,
                &[
                    "GEODIST".into(),
                    "pts".into(),
                    format!("p{a}"),
                    format!("p{b}"),
                    units[rng.below(4) as usize].into(),
                ],
            );
            same(o, r, &["GEOPOS".into(), "pts".into(), format!("p{a}")]);
            same(o, r, &["GEOHASH".into(), "pts".into(), format!("p{b}")]);
        }
    }
}

#[test]
fn random_geo_searches_match_redis() {
    let (ours, theirs) = (cascade(&[]), redis(&[]));
    let (mut o, mut r) = (ours.conn(), theirs.conn());
    random_geo_work(&mut o, &mut r, 2500, 0x6e0_5ea7c);
}

#[test]
fn geo_stores_reach_other_shards_and_replicas() {
    // A Cascade master (two shards) with a Cascade and a Redis replica.
    let master = start(&["--shards", "2"]);
    let port = master.port.to_string();
    let ours = start(&["--replicaof", "127.0.0.1", &port]);
    let theirs = start_redis(&["--replicaof", "127.0.0.1", &port]);
    let src = &keys_on(0, "src", 1)[0];
    let here = &keys_on(0, "dst", 1)[0];
    let there = &keys_on(1, "dst", 1)[0];
    let twin = redis(&[]);
    let (mut m, mut t) = (master.conn(), twin.conn());
    let s = |x: &str| x.to_string();
    for (long, lat, name) in [
        ("13.361389", "38.115556", "Palermo"),
        ("15.087269", "37.502669", "Catania"),
        ("13.583333", "37.316667", "Agrigento"),
    ] {
        same(
            &mut m,
            &mut t,
            &[s("GEOADD"), src.clone(), s(long), s(lat), s(name)],
        );
    }
    for dest in [here, there] {
        for line in [
            format!("GEOSEARCHSTORE {dest} {src} FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST"),
            format!("ZRANGE {dest} 0 -1 WITHSCORES"),
            format!("GEORADIUS {src} 15 37 200 km STORE {dest} COUNT 2"),
            format!("ZRANGE {dest} 0 -1 WITHSCORES"),
            format!("GEORADIUSBYMEMBER {src} Palermo 100 km STOREDIST {dest}"),
            format!("ZRANGE {dest} 0 -1 WITHSCORES"),
        ] {
            let args: Vec<String> = line.split(' ').map(String::from).collect();
            same(&mut m, &mut t, &args);
        }
    }
    // An empty result deletes the destination, on either shard.
    same(
        &mut m,
        &mut t,
        &[
            s("GEOSEARCHSTORE"),
            there.clone(),
            src.clone(),
            s("FROMLONLAT"),
            s("0"),
            s("0"),
            s("BYRADIUS"),
            s("1"),
            s("m"),
        ],
    );
    // A MULTI with a store across shards.
    m.cmd(&["MULTI"]);
    m.cmd(&["GEORADIUS", src, "15", "37", "300", "km", "STORE", there]);
    assert_eq!(
        m.cmd(&["EXEC"]),
        common::Value::Array(vec![common::Value::Int(3)])
    );
    wait_in_sync(&master, &ours, None);
    wait_in_sync(&master, &theirs, None);
    // And a Redis master with a Cascade replica.
    let rmaster = start_redis(&[]);
    let rport = rmaster.port.to_string();
    let replica = start(&["--replicaof", "127.0.0.1", &rport]);
    let mut rc = rmaster.conn();
    let twin = cascade(&[]);
    let mut tc = twin.conn();
    random_geo_work(&mut rc, &mut tc, 50, 9);
    rc.cmd(&[
        "GEOSEARCHSTORE",
        here,
        "pts",
        "FROMLONLAT",
        "10",
        "45",
        "BYRADIUS",
        "3000",
        "km",
    ]);
    rc.cmd(&[
        "GEORADIUS",
        "pts",
        "179.5",
        "0",
        "2000",
        "km",
        "STOREDIST",
        there,
    ]);
    wait_in_sync_applying_all(&rmaster, &replica);
}

#[test]
fn geo_commands_are_described_like_redis() {
    common::family::assert_command_info_matches_redis(&[
        "geoadd",
        "geopos",
        "geodist",
        "geohash",
        "georadius",
        "georadius_ro",
        "georadiusbymember",
        "georadiusbymember_ro",
        "geosearch",
        "geosearchstore",
    ]);
}
