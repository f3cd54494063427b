//! `time.format(t, layout)` with Go's reference-time layouts, as Webhook
//! Relay's functions take them (`"2006-01-02T15:04:05Z07:00"`). Times are
//! UTC: a script has no time zone database (no OS access).

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The civil date of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`): (year, month 1..=12, day 1..=31).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The layout's tokens, longest first where one is a prefix of another.
const TOKENS: &[&str] = &[
    "January",
    "Monday",
    "Z07:00",
    "-07:00",
    "Z0700",
    "-0700",
    ".000000000",
    ".000000",
    ".000",
    "2006",
    "Jan",
    "Mon",
    "MST",
    "-07",
    "01",
    "02",
    "_2",
    "06",
    "15",
    "03",
    "04",
    "05",
    "PM",
    "pm",
    "1",
    "2",
    "3",
    "4",
    "5",
];

/// Formats `secs` (Unix seconds, fractions kept to the nanosecond) in UTC.
pub(crate) fn format(secs: f64, layout: &str) -> String {
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u64;
    // Clamped to ±10^11 s (years -1200..5100): beyond it Go's layouts
    // have no meaning anyway, and the arithmetic stays far from overflow.
    let whole = whole.clamp(-1e11, 1e11) as i64;
    let (days, rem) = (whole.div_euclid(86_400), whole.rem_euclid(86_400));
    let (year, month, day) = civil(days);
    let weekday = (days + 4).rem_euclid(7) as usize;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let hour12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    let mut out = String::with_capacity(layout.len() + 8);
    let mut rest = layout;
    while !rest.is_empty() {
        let Some(token) = TOKENS.iter().find(|t| rest.starts_with(**t)) else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        let piece = match *token {
            "January" => MONTHS[month as usize - 1].to_owned(),
            "Jan" => MONTHS[month as usize - 1][..3].to_owned(),
            "Monday" => DAYS[weekday].to_owned(),
            "Mon" => DAYS[weekday][..3].to_owned(),
            "2006" => format!("{year:04}"),
            "06" => format!("{:02}", year.rem_euclid(100)),
            "01" => format!("{month:02}"),
            "1" => month.to_string(),
            "02" => format!("{day:02}"),
            "_2" => format!("{day:>2}"),
            "2" => day.to_string(),
            "15" => format!("{hour:02}"),
            "03" => format!("{hour12:02}"),
            "3" => hour12.to_string(),
            "04" => format!("{minute:02}"),
            "4" => minute.to_string(),
            "05" => format!("{second:02}"),
            "5" => second.to_string(),
            "PM" => if hour < 12 { "AM" } else { "PM" }.to_owned(),
            "pm" => if hour < 12 { "am" } else { "pm" }.to_owned(),
            "MST" => "UTC".to_owned(),
            "Z07:00" | "Z0700" => "Z".to_owned(),
            "-07:00" => "+00:00".to_owned(),
            "-0700" => "+0000".to_owned(),
            "-07" => "+00".to_owned(),
            ".000" => format!(".{:03}", nanos / 1_000_000),
            ".000000" => format!(".{:06}", nanos / 1_000),
            _ => format!(".{nanos:09}"),
        };
        out.push_str(&piece);
        rest = &rest[token.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::format;

    #[test]
    fn go_reference_layouts() {
        // 1136239445 is Go's reference time, Mon Jan 2 15:04:05 MST 2006,
        // as UTC: 2006-01-02T22:04:05Z.
        let t = 1_136_239_445.0;
        let table = [
            ("2006-01-02T15:04:05Z07:00", "2006-01-02T22:04:05Z"),
            ("Mon Jan _2 15:04:05 2006", "Mon Jan  2 22:04:05 2006"),
            ("02 Jan 06 15:04 MST", "02 Jan 06 22:04 UTC"),
            (
                "Monday, 02-Jan-06 15:04:05 MST",
                "Monday, 02-Jan-06 22:04:05 UTC",
            ),
            ("3:04PM", "10:04PM"),
            (
                "2006-01-02 15:04:05.000 -0700",
                "2006-01-02 22:04:05.000 +0000",
            ),
            ("January 2, 2006", "January 2, 2006"),
            ("literal text ü", "literal text ü"),
        ];
        for (layout, want) in table {
            assert_eq!(format(t, layout), want, "{layout}");
        }
        assert_eq!(
            format(0.5, "2006-01-02 15:04:05.000000"),
            "1970-01-01 00:00:00.500000"
        );
        assert_eq!(format(951_782_400.0, "2006-01-02 Mon"), "2000-02-29 Tue");
        assert_eq!(format(-1.0, "2006-01-02 15:04:05"), "1969-12-31 23:59:59");
        assert_eq!(format(f64::NAN, "2006").len(), 4);
    }
}
