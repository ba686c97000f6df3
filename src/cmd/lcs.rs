//! LCS: the longest common subsequence of two strings, with Redis 7.0's
//! options (LEN, IDX, MINMATCHLEN, WITHMATCHLEN), replies and the exact
//! walk Redis takes back through the table, so IDX reports the same
//! ranges. Both keys on one shard run there; keys on two shards
//! (`Split::Coordinate`) are read under a hold of both and compared on the
//! coordinator.

use super::args::{is, parse_i64_strict};
use super::error::{CmdError, CmdResult};
use super::lookup::read;
use super::table::{flag::*, spec, ClientCmd, CommandSpec, Group, Run, Split};
use super::{Client, Ctx};
use crate::keyspace::Value;
use crate::resp::Reply;
use bytes::Bytes;

pub fn commands() -> Vec<CommandSpec> {
    vec![spec(
        "lcs",
        -3,
        READONLY,
        (1, 2, 1),
        Group::String,
        "7.0.0",
        "Find longest common substring",
        Run::Keyed(lcs, Split::Coordinate(ClientCmd::Lcs)),
    )]
}

/// The most table memory one LCS may take (Redis refuses what it cannot
/// allocate; we refuse before trying).
const MAX_TABLE_BYTES: u64 = 512 << 20;

/// A key's string for LCS: missing is empty, another type an error.
fn string_of(ctx: &mut Ctx, key: &Bytes) -> Result<Bytes, CmdError> {
    match read(ctx, key) {
        None => Ok(Bytes::new()),
        Some(Value::Str(s)) => Ok(s.bytes().clone()),
        Some(_) => Err(CmdError::other(
            "ERR The specified keys must contain string values",
        )),
    }
}

fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let a = string_of(ctx, &args[1]);
    let b = string_of(ctx, &args[2]);
    answer(a?, b?, args)
}

/// LCS whose two keys are on different shards.
pub async fn run_client(client: &mut Client, args: &[Bytes]) -> CmdResult {
    let db = client.db;
    let guard = super::across::hold_keys(&args[1..3]).await;
    let got = super::across::read_keys(&guard, db, &args[1..3], string_of).await;
    drop(guard);
    let mut got = got.into_iter();
    let (a, b) = (got.next(), got.next());
    match (a, b) {
        (Some(a), Some(b)) => answer(a?, b?, args),
        _ => Err(CmdError::Syntax),
    }
}

/// The options, then the table, then the reply.
fn answer(a: Bytes, b: Bytes, args: &[Bytes]) -> CmdResult {
    let (mut idx, mut len, mut with_len, mut min_len) = (false, false, false, 0u64);
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        if is(&args[j], "idx") {
            idx = true;
        } else if is(&args[j], "len") {
            len = true;
        } else if is(&args[j], "withmatchlen") {
            with_len = true;
        } else if is(&args[j], "minmatchlen") && more {
            let v = parse_i64_strict(&args[j + 1]).ok_or(CmdError::NotInteger)?;
            min_len = v.max(0) as u64;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if idx && len {
        return Err(CmdError::other(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    if a.len() as u64 >= u64::from(u32::MAX) - 1 || b.len() as u64 >= u64::from(u32::MAX) - 1 {
        return Err(CmdError::other("ERR String too long for LCS"));
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    let mut dp: Vec<u32> = Vec::new();
    if cells.saturating_mul(4) > MAX_TABLE_BYTES || dp.try_reserve_exact(cells as usize).is_err() {
        return Err(CmdError::other(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    dp.resize(cells as usize, 0);
    let w = blen + 1;
    for i in 1..=alen {
        for j in 1..=blen {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + (j - 1)] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[alen * w + blen];
    if len {
        return Ok(Reply::Int(i64::from(total)));
    }
    // Walk back from the end as Redis does, collecting the string and the
    // ranges of contiguous matches.
    let mut result = vec![0u8; total as usize];
    let mut k = total as usize;
    let mut matches = Vec::new();
    let unset = alen;
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (unset, 0usize, 0usize, 0usize);
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[k - 1] = a[i - 1];
            if a_start == unset {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            k -= 1;
            i -= 1;
            j -= 1;
        } else {
            if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != unset {
                emit = true;
            }
        }
        // As Redis computes it, also when no range is open.
        let match_len = (a_end as i64 - a_start as i64 + 1) as u64;
        if emit {
            if idx && (min_len == 0 || match_len >= min_len) {
                let mut m = vec![
                    Reply::Array(vec![Reply::Int(a_start as i64), Reply::Int(a_end as i64)]),
                    Reply::Array(vec![Reply::Int(b_start as i64), Reply::Int(b_end as i64)]),
                ];
                if with_len {
                    m.push(Reply::Int(match_len as i64));
                }
                matches.push(Reply::Array(m));
            }
            a_start = unset;
        }
    }
    if idx {
        return Ok(Reply::Map(vec![
            (
                Reply::Bulk(Bytes::from_static(b"matches")),
                Reply::Array(matches),
            ),
            (
                Reply::Bulk(Bytes::from_static(b"len")),
                Reply::Int(i64::from(total)),
            ),
        ]));
    }
    Ok(Reply::Bulk(Bytes::from(result)))
}
