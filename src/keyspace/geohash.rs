//! Geohashes as Redis stores them: a longitude and latitude become a
//! 52-bit integer (26 bits each, interleaved, latitude in the even bits)
//! kept as a sorted-set score, so the GEO commands are sorted sets with a
//! way to turn members into points and areas into score ranges. The
//! arithmetic follows Redis 7.0's step for step (same operations, same
//! order, same libm), so decoded positions and distances are the same
//! doubles Redis replies with.
//!
//! Pure functions: no commands, no keyspace.
#![forbid(unsafe_code)]

/// Bits per coordinate in a stored score.
pub const STEP_MAX: u8 = 26;

pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;

/// Earth's radius as Redis's distances use it.
pub const EARTH_RADIUS_M: f64 = 6372797.560856;

const D_R: f64 = std::f64::consts::PI / 180.0;

/// A range of one coordinate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

/// The ranges stored scores use (the Web Mercator latitude limits).
pub const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
pub const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// A geohash of `step` bits per coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hash {
    pub bits: u64,
    pub step: u8,
}

/// The cell a hash stands for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    pub hash: Hash,
    pub longitude: Range,
    pub latitude: Range,
}

/// Spreads the 32 bits of `x` over the even bits of the result and those
/// of `y` over the odd ones.
pub fn interleave(x: u32, y: u32) -> u64 {
    fn spread(v: u32) -> u64 {
        let mut v = u64::from(v);
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        (v | (v << 1)) & 0x5555_5555_5555_5555
    }
    spread(x) | (spread(y) << 1)
}

/// The inverse of [`interleave`]: (even bits, odd bits).
pub fn deinterleave(v: u64) -> (u32, u32) {
    fn squash(mut v: u64) -> u32 {
        v &= 0x5555_5555_5555_5555;
        v = (v | (v >> 1)) & 0x3333_3333_3333_3333;
        v = (v | (v >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v >> 16)) & 0x0000_0000_FFFF_FFFF;
        v as u32
    }
    (squash(v), squash(v >> 1))
}

/// Whether Redis accepts the point (GEOADD's limits).
pub fn valid(longitude: f64, latitude: f64) -> bool {
    (LONG_MIN..=LONG_MAX).contains(&longitude) && (LAT_MIN..=LAT_MAX).contains(&latitude)
}

/// The hash of a point within the given ranges, `step` bits per
/// coordinate; `None` outside the ranges or the stored limits.
pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<Hash> {
    if step == 0 || step > 32 || !valid(longitude, latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    let scale = (1u64 << step) as f64;
    lat_offset *= scale;
    long_offset *= scale;
    // C's conversion to uint32_t truncates (offsets are never negative).
    Some(Hash {
        bits: interleave(lat_offset as u32, long_offset as u32),
        step,
    })
}

/// The stored-score hash of a point ([`STEP_MAX`] bits, the stored ranges).
pub fn encode_wgs84(longitude: f64, latitude: f64) -> Option<Hash> {
    encode(LONG_RANGE, LAT_RANGE, longitude, latitude, STEP_MAX)
}

/// The cell of `hash` within the given ranges.
pub fn decode(long_range: Range, lat_range: Range, hash: Hash) -> Area {
    let (ilat, ilong) = deinterleave(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let cells = (1u64 << hash.step) as f64;
    // `+ 1` wraps in 32 bits in C; no stored step gets there.
    let next = |i: u32| f64::from(i.wrapping_add(1));
    Area {
        hash,
        latitude: Range {
            min: lat_range.min + (f64::from(ilat) / cells) * lat_scale,
            max: lat_range.min + (next(ilat) / cells) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (f64::from(ilong) / cells) * long_scale,
            max: long_range.min + (next(ilong) / cells) * long_scale,
        },
    }
}

/// A cell's center, clamped to the stored limits: (longitude, latitude).
pub fn area_center(area: &Area) -> (f64, f64) {
    let long = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (long, lat)
}

/// C's `(uint64_t)score` as gcc compiles it on x86-64 (Rust's `as`
/// saturates instead): what a corrupt score (negative, huge, infinite)
/// decodes as in Redis.
fn c_to_u64(x: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let cvt = |v: f64| -> u64 {
        if v.is_nan() || !(-TWO_63..TWO_63).contains(&v) {
            0x8000_0000_0000_0000
        } else {
            v.trunc() as i64 as u64
        }
    };
    if x < TWO_63 {
        cvt(x)
    } else {
        cvt(x - TWO_63) ^ 0x8000_0000_0000_0000
    }
}

/// The point a stored score stands for: (longitude, latitude).
pub fn decode_score(score: f64) -> (f64, f64) {
    let hash = Hash {
        bits: c_to_u64(score),
        step: STEP_MAX,
    };
    area_center(&decode(LONG_RANGE, LAT_RANGE, hash))
}

fn deg_rad(deg: f64) -> f64 {
    deg * D_R
}

fn rad_deg(rad: f64) -> f64 {
    rad / D_R
}

/// Distance along a meridian, in meters.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Great-circle distance in meters (haversine), as Redis computes it.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    // Same longitude: the cheaper meridian distance.
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// The GEOHASH string of a stored score: the point re-encoded with the
/// standard geohash ranges (latitude -90..90), 11 base-32 characters, the
/// last one 0 as 52 bits give only 10 full ones and 2 bits.
pub fn standard_string(score: f64) -> Option<String> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (long, lat) = decode_score(score);
    let hash = encode(
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
        long,
        lat,
        STEP_MAX,
    )?;
    let mut out = String::with_capacity(11);
    for i in 0..11 {
        let idx = if i == 10 {
            0
        } else {
            (hash.bits >> (52 - (i + 1) * 5)) & 0x1f
        };
        out.push(ALPHABET[idx as usize] as char);
    }
    Some(out)
}

// ------------------------------------------------------------ searches --

/// Meters the whole Mercator width spans (the step estimate's unit).
const MERCATOR_MAX: f64 = 20037726.37;

/// What a search covers, in meters once multiplied by `meters_per_unit`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Radius(f64),
    /// Width, height.
    Box(f64, f64),
}

/// A search: where, what shape, and the unit its sizes are in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Search {
    pub longitude: f64,
    pub latitude: f64,
    pub shape: Shape,
    pub meters_per_unit: f64,
}

impl Search {
    /// The distance of a point from the center, if it lies in the shape
    /// (Redis's geohashGetDistanceIfInRadiusWGS84 / InRectangle).
    pub fn distance_if_inside(&self, longitude: f64, latitude: f64) -> Option<f64> {
        let (x1, y1) = (self.longitude, self.latitude);
        match self.shape {
            Shape::Radius(r) => {
                let d = distance(x1, y1, longitude, latitude);
                (d <= r * self.meters_per_unit).then_some(d)
            }
            Shape::Box(w, h) => {
                let (w, h) = (w * self.meters_per_unit, h * self.meters_per_unit);
                if lat_distance(latitude, y1) > h / 2.0 {
                    return None;
                }
                if distance(longitude, latitude, x1, latitude) > w / 2.0 {
                    return None;
                }
                Some(distance(x1, y1, longitude, latitude))
            }
        }
    }

    /// The bounding box (min long, min lat, max long, max lat).
    fn bounds(&self) -> (f64, f64, f64, f64) {
        let (long, lat) = (self.longitude, self.latitude);
        let (height, width) = match self.shape {
            Shape::Radius(r) => (r * self.meters_per_unit, r * self.meters_per_unit),
            Shape::Box(w, h) => (
                self.meters_per_unit * (h / 2.0),
                self.meters_per_unit * (w / 2.0),
            ),
        };
        let lat_delta = rad_deg(height / EARTH_RADIUS_M);
        let long_delta_top = rad_deg(width / EARTH_RADIUS_M / deg_rad(lat + lat_delta).cos());
        let long_delta_bottom = rad_deg(width / EARTH_RADIUS_M / deg_rad(lat - lat_delta).cos());
        // North and south of the equator the widest edge is the other one.
        let long_delta = if lat < 0.0 {
            long_delta_bottom
        } else {
            long_delta_top
        };
        (
            long - long_delta,
            lat - lat_delta,
            long + long_delta,
            lat + lat_delta,
        )
    }

    /// The score ranges `[min, max)` to scan, in Redis's order: the
    /// center cell, then north, south, east, west, north-east, north-west,
    /// south-east, south-west, leaving out the cells Redis leaves out
    /// (zeroed ones, and one equal to the last scanned).
    pub fn score_ranges(&self) -> Vec<(u64, u64)> {
        let cells = self.cells();
        let mut out = Vec::with_capacity(9);
        let mut last: Option<usize> = None;
        for (i, cell) in cells.iter().enumerate() {
            let Some(cell) = cell else {
                continue;
            };
            // Redis compares with the last scanned cell only once that is
            // not the center (its index 0 reads as "none").
            if let Some(l) = last.filter(|&l| l > 0) {
                if cells[l] == Some(*cell) {
                    continue;
                }
            }
            let shift = 52 - u32::from(cell.step) * 2;
            out.push((cell.bits << shift, (cell.bits + 1) << shift));
            last = Some(i);
        }
        out
    }

    /// The nine cells (`None`: left out), as geohashCalculateAreasByShape
    /// finds them.
    fn cells(&self) -> [Option<Hash>; 9] {
        let (min_lon, min_lat, max_lon, max_lat) = self.bounds();
        let radius = match self.shape {
            Shape::Radius(r) => r,
            Shape::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
        } * self.meters_per_unit;
        let mut step = estimate_steps(radius, self.latitude);
        let at = |step: u8| {
            let hash = encode(LONG_RANGE, LAT_RANGE, self.longitude, self.latitude, step)
                .unwrap_or(Hash { bits: 0, step });
            (hash, neighbors(hash), decode(LONG_RANGE, LAT_RANGE, hash))
        };
        let (mut hash, mut n, mut area) = at(step);
        let edge = |h: Hash| decode(LONG_RANGE, LAT_RANGE, h);
        let decrease = edge(n.north).latitude.max < max_lat
            || edge(n.south).latitude.min > min_lat
            || edge(n.east).longitude.max < max_lon
            || edge(n.west).longitude.min > min_lon;
        if step > 1 && decrease {
            step -= 1;
            (hash, n, area) = at(step);
        }
        let mut cells = [
            Some(hash),
            Some(n.north),
            Some(n.south),
            Some(n.east),
            Some(n.west),
            Some(n.north_east),
            Some(n.north_west),
            Some(n.south_east),
            Some(n.south_west),
        ];
        // Index in `cells` of each direction.
        const N: usize = 1;
        const S: usize = 2;
        const E: usize = 3;
        const W: usize = 4;
        const NE: usize = 5;
        const NW: usize = 6;
        const SE: usize = 7;
        const SW: usize = 8;
        if step >= 2 {
            let mut drop = |ids: [usize; 3]| {
                for i in ids {
                    cells[i] = None;
                }
            };
            if area.latitude.min < min_lat {
                drop([S, SW, SE]);
            }
            if area.latitude.max > max_lat {
                drop([N, NE, NW]);
            }
            if area.longitude.min < min_lon {
                drop([W, SW, NW]);
            }
            if area.longitude.max > max_lon {
                drop([E, SE, NE]);
            }
        }
        // A zero hash (bits and step 0) is skipped too; a cell keeps its
        // step, so only the dropped ones are.
        cells
    }
}

/// The cells around a hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Neighbors {
    north: Hash,
    south: Hash,
    east: Hash,
    west: Hash,
    north_east: Hash,
    north_west: Hash,
    south_east: Hash,
    south_west: Hash,
}

const ODD: u64 = 0xaaaa_aaaa_aaaa_aaaa;
const EVEN: u64 = 0x5555_5555_5555_5555;

/// One cell along the axis whose bits are `axis` (the odd ones for
/// longitude, east `d` > 0; the even ones for latitude, north `d` > 0),
/// wrapping around, the other axis kept.
fn shift_axis(h: Hash, d: i8, axis: u64) -> Hash {
    if d == 0 {
        return h;
    }
    let shift = 64 - u32::from(h.step) * 2;
    let mut v = h.bits & axis;
    let kept = h.bits & !axis;
    let zz = !axis >> shift;
    if d > 0 {
        v = v.wrapping_add(zz + 1);
    } else {
        v |= zz;
        v = v.wrapping_sub(zz + 1);
    }
    v &= axis >> shift;
    Hash {
        bits: v | kept,
        step: h.step,
    }
}

fn neighbors(h: Hash) -> Neighbors {
    let at = |dx: i8, dy: i8| shift_axis(shift_axis(h, dx, ODD), dy, EVEN);
    Neighbors {
        east: at(1, 0),
        west: at(-1, 0),
        south: at(0, -1),
        north: at(0, 1),
        north_west: at(-1, 1),
        south_west: at(-1, -1),
        north_east: at(1, 1),
        south_east: at(1, -1),
    }
}

/// Bits per coordinate for cells about `range_meters` wide at `lat`.
pub fn estimate_steps(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    // Cells narrow towards the poles.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_round_trips() {
        for (x, y) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ff_ffff, 0x155_5555),
            (u32::MAX, 7),
        ] {
            assert_eq!(deinterleave(interleave(x, y)), (x, y));
        }
        assert_eq!(interleave(1, 0), 1);
        assert_eq!(interleave(0, 1), 2);
    }

    #[test]
    fn palermo_encodes_as_redis_stores_it() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo" stores this score.
        let h = encode_wgs84(13.361389, 38.115556).unwrap();
        assert_eq!(h.bits, 3479099956230698);
        let (long, lat) = decode_score(h.bits as f64);
        assert!((long - 13.361389).abs() < 1e-5 && (lat - 38.115556).abs() < 1e-5);
        assert_eq!(standard_string(h.bits as f64).unwrap(), "sqc8b49rny0");
    }

    #[test]
    fn distances_are_haversine() {
        let (pl, pa) = decode_score(3479099956230698.0);
        let (cl, ca) = decode_score(3479447370796909.0);
        let d = distance(pl, pa, cl, ca);
        assert!((d - 166274.1516).abs() < 0.001, "{d}");
        assert_eq!(distance(1.0, 2.0, 1.0, 3.0), lat_distance(2.0, 3.0));
    }
}
