//! Provider timestamps: parsing the forms providers send (Unix seconds,
//! Unix milliseconds, RFC 3339) and the tolerance check of step 7, which
//! applies in both directions so a clock skewed into the future cannot mint
//! requests that stay fresh for longer. Depends on nothing.

use crate::Rejection;

const MALFORMED: Rejection = Rejection::InvalidSignature("malformed timestamp");

/// Ok when `ts` is within `tolerance` seconds of `now`, either way.
pub(crate) fn within(ts: i64, now: i64, tolerance: u64) -> Result<(), Rejection> {
    let skew = ts.abs_diff(now);
    if skew > tolerance {
        return Err(Rejection::StaleTimestamp);
    }
    Ok(())
}

/// Unix seconds as ASCII digits. At most 12 digits (year 33658): enough for
/// any real clock, and small enough that nothing overflows.
pub(crate) fn unix_secs(value: &[u8]) -> Result<i64, Rejection> {
    digits(value, 12)
}

/// Unix milliseconds as ASCII digits, at most 15 (same bound as seconds).
pub(crate) fn unix_millis_to_secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

fn digits(value: &[u8], max: usize) -> Result<i64, Rejection> {
    if value.is_empty() || value.len() > max || !value.iter().all(u8::is_ascii_digit) {
        return Err(MALFORMED);
    }
    Ok(value
        .iter()
        .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
}

/// An RFC 3339 date-time (`2019-11-16T10:11:12.634234626Z`, or with a
/// `+hh:mm` offset) as Unix seconds, fractions dropped. Twitch sends these.
pub(crate) fn rfc3339(value: &[u8]) -> Result<i64, Rejection> {
    if value.len() < 20 || value.len() > 64 {
        return Err(MALFORMED);
    }
    let num = |range: std::ops::Range<usize>| digits(value.get(range).ok_or(MALFORMED)?, 4);
    let sep = |i: usize, c: &[u8]| value.get(i).is_some_and(|b| c.contains(b));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return Err(MALFORMED);
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(MALFORMED);
    }
    let mut rest = &value[19..];
    if let [b'.', tail @ ..] = rest {
        let frac = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        if frac == 0 {
            return Err(MALFORMED);
        }
        rest = &tail[frac..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2], 2)?;
            let m = digits(&[*m1, *m2], 2)?;
            if h > 23 || m > 59 {
                return Err(MALFORMED);
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return Err(MALFORMED),
    };
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats Unix seconds as RFC 3339 UTC with nanoseconds, as Twitch does.
pub(crate) fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Inverse of days_from_civil (Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000000000Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_applies_both_ways() {
        assert_eq!(within(1000, 1000, 0), Ok(()));
        assert_eq!(within(700, 1000, 300), Ok(()));
        assert_eq!(within(1300, 1000, 300), Ok(()));
        assert_eq!(within(699, 1000, 300), Err(Rejection::StaleTimestamp));
        assert_eq!(within(1301, 1000, 300), Err(Rejection::StaleTimestamp));
        assert_eq!(within(i64::MIN, i64::MAX, u64::MAX), Ok(()));
        assert_eq!(
            within(i64::MIN, i64::MAX, 300),
            Err(Rejection::StaleTimestamp)
        );
    }

    #[test]
    fn unix_seconds() {
        assert_eq!(unix_secs(b"1531420618"), Ok(1_531_420_618));
        for bad in [&b""[..], b"-1", b"12a", b" 1", b"1.5", b"9999999999999"] {
            assert_eq!(unix_secs(bad), Err(MALFORMED), "{bad:?}");
        }
        assert_eq!(unix_millis_to_secs(1_676_056_940_508), 1_676_056_940);
    }

    #[test]
    fn rfc3339_forms() {
        // `date -d 2019-11-16T10:11:12Z +%s` = 1573899072.
        assert_eq!(
            rfc3339(b"2019-11-16T10:11:12.634234626Z"),
            Ok(1_573_899_072)
        );
        assert_eq!(rfc3339(b"2019-11-16T10:11:12Z"), Ok(1_573_899_072));
        assert_eq!(rfc3339(b"2019-11-16T12:11:12+02:00"), Ok(1_573_899_072));
        assert_eq!(rfc3339(b"2019-11-16t08:11:12-02:00"), Ok(1_573_899_072));
        assert_eq!(rfc3339(b"1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(rfc3339(b"2024-02-29T00:00:00Z"), Ok(1_709_164_800));
        for bad in [
            &b"2019-11-16T10:11:12"[..],
            b"2019-11-16T10:11:12.Z",
            b"2019-13-16T10:11:12Z",
            b"2023-02-29T10:11:12Z",
            b"2019-11-16T24:11:12Z",
            b"2019-11-16T10:11:12+2:00",
            b"2019-11-16T10:11:12Zjunk",
            b"2019/11/16T10:11:12Z",
            b"",
        ] {
            assert_eq!(
                rfc3339(bad),
                Err(MALFORMED),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b'1'; 200];
        assert_eq!(rfc3339(&long), Err(MALFORMED));
    }

    #[test]
    fn format_round_trips() {
        for secs in [0, 1_573_899_072, 1_709_164_800, 4_102_444_800, 951_782_400] {
            assert_eq!(rfc3339(format_rfc3339(secs).as_bytes()), Ok(secs), "{secs}");
        }
    }
}
