//! Humane durations as the configuration writes them: `90s`, `15m`, `1h`, `30d`, `500ms`, `0`.
//!
//! The grammar is deliberately small: a non-negative whole number followed by exactly one unit
//! (`ms`, `s`, `m`, `h`, `d`), or a bare `0`. Surrounding whitespace is ignored. There are no
//! signs, decimals, weeks or combined forms (`1h30m`), and values that do not fit in a `u64`
//! of milliseconds are refused rather than wrapped.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A non-negative duration written as a whole number and one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(Duration);

/// Why a duration was refused. The message quotes the input (trimmed, at most 40 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration (use e.g. 90s, 15m, 1h, 30d)")]
pub struct DurationError(String);

/// Units from the smallest to the largest, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];

impl HumanDuration {
    /// No time at all.
    pub const ZERO: HumanDuration = HumanDuration(Duration::ZERO);

    /// Parses `<digits><unit>` with unit `ms`, `s`, `m`, `h` or `d`; a bare `0` is zero.
    pub fn parse(raw: &str) -> Result<Self, DurationError> {
        let text = raw.trim();
        let bad = || DurationError(text.chars().take(40).collect());
        if text == "0" {
            return Ok(Self::ZERO);
        }
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = text.split_at(split);
        if digits.is_empty() {
            return Err(bad());
        }
        let per_unit = UNITS.iter().find(|(u, _)| *u == unit).map(|(_, ms)| *ms).ok_or_else(bad)?;
        let count: u64 = digits.parse().map_err(|_| bad())?;
        let ms = count.checked_mul(per_unit).ok_or_else(bad)?;
        Ok(HumanDuration(Duration::from_millis(ms)))
    }

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }

    /// The standard-library duration.
    pub const fn as_std(self) -> Duration {
        self.0
    }

    /// Whole seconds (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// Whether it is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Duration {
        d.0
    }
}

impl fmt::Display for HumanDuration {
    /// The largest unit that represents the value exactly: `900s` prints `15m`; zero prints `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // u128: `from_secs(u64::MAX)` has more milliseconds than a u64 holds.
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        let (unit, per) = UNITS
            .iter()
            .rev()
            .map(|(unit, per)| (*unit, u128::from(*per)))
            // Not `is_multiple_of`: the workspace's rust-version is 1.85.
            .find(|(_, per)| ms.checked_rem(*per) == Some(0))
            .unwrap_or(("ms", 1));
        write!(f, "{}{unit}", ms / per)
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for HumanDuration {
    /// As its `Display` string, e.g. `"15m"`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    /// A string such as `"15m"`, or a non-negative whole number of seconds.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HumanVisitor;

        impl Visitor<'_> for HumanVisitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"15m\" or a whole number of seconds")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                HumanDuration::parse(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration::from_secs(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                u64::try_from(v).map(HumanDuration::from_secs).map_err(|_| E::custom(DurationError(v.to_string())))
            }
        }

        d.deserialize_any(HumanVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_input_parses_or_is_refused_without_panicking(raw in ".{0,40}") {
            let _ = HumanDuration::parse(&raw);
        }

        #[test]
        fn display_round_trips_every_duration(n in 0u64..1_000_000, unit in prop::sample::select(vec!["ms", "s", "m", "h", "d"])) {
            let parsed = HumanDuration::parse(&format!("{n}{unit}")).unwrap();
            prop_assert_eq!(HumanDuration::parse(&parsed.to_string()).unwrap(), parsed);
        }
    }

    #[test]
    fn each_unit_parses() {
        assert_eq!(HumanDuration::parse("90s").unwrap().as_secs(), 90);
        assert_eq!(HumanDuration::parse("15m").unwrap().as_secs(), 900);
        assert_eq!(HumanDuration::parse("1h").unwrap().as_secs(), 3600);
        assert_eq!(HumanDuration::parse("30d").unwrap().as_secs(), 30 * 86_400);
        assert_eq!(HumanDuration::parse("500ms").unwrap().as_std(), Duration::from_millis(500));
        assert_eq!("2h".parse::<HumanDuration>().unwrap(), HumanDuration::from_secs(7200));
    }

    #[test]
    fn a_bare_zero_and_surrounding_whitespace_are_accepted() {
        assert!(HumanDuration::parse(" 0 ").unwrap().is_zero());
        assert!(HumanDuration::parse("0s").unwrap().is_zero());
        assert_eq!(HumanDuration::parse("\t15m\n").unwrap().as_secs(), 900);
        assert_eq!(HumanDuration::parse("0").unwrap(), HumanDuration::ZERO);
    }

    #[test]
    fn anything_else_is_refused_with_the_value_in_the_message() {
        for bad in [
            "",
            " ",
            "s",
            "15",
            "-1s",
            "+1s",
            "1.5h",
            "1h30m",
            "15 m",
            "15M",
            "2w",
            "1y",
            "abc",
            "0x10s",
            "１s",
            "99999999999999999999d",
            "18446744073709551615d",
            "213503982334601d",
        ] {
            let err = HumanDuration::parse(bad).unwrap_err();
            assert!(err.to_string().contains("is not a duration (use e.g. 90s, 15m, 1h, 30d)"), "{bad:?}");
        }
        assert_eq!(HumanDuration::parse(" abc ").unwrap_err().to_string(), "`abc` is not a duration (use e.g. 90s, 15m, 1h, 30d)");
    }

    #[test]
    fn the_largest_duration_that_fits_is_accepted() {
        assert_eq!(HumanDuration::parse("18446744073709551615ms").unwrap().as_std(), Duration::from_millis(u64::MAX));
    }

    #[test]
    fn display_uses_the_largest_exact_unit() {
        assert_eq!(HumanDuration::from_secs(900).to_string(), "15m");
        assert_eq!(HumanDuration::from_secs(90).to_string(), "90s");
        assert_eq!(HumanDuration::from_secs(86_400).to_string(), "1d");
        assert_eq!(HumanDuration::from_secs(14 * 86_400).to_string(), "14d");
        assert_eq!(HumanDuration::parse("1500ms").unwrap().to_string(), "1500ms");
        assert_eq!(HumanDuration::ZERO.to_string(), "0s");
    }

    #[test]
    fn display_is_exact_even_beyond_u64_milliseconds() {
        assert_eq!(HumanDuration::from_secs(u64::MAX).to_string(), format!("{}s", u64::MAX));
    }

    #[test]
    fn display_round_trips() {
        for s in ["1ms", "59s", "2h", "30d"] {
            assert_eq!(HumanDuration::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn serde_reads_a_string_or_whole_seconds_and_writes_the_string() {
        let from_text: HumanDuration = serde_json::from_str("\"15m\"").unwrap();
        let from_secs: HumanDuration = serde_json::from_str("900").unwrap();
        assert_eq!(from_text, from_secs);
        assert_eq!(serde_json::to_string(&from_text).unwrap(), "\"15m\"");
        assert!(serde_json::from_str::<HumanDuration>("0").unwrap().is_zero());
    }

    #[test]
    fn serde_refuses_negative_numbers_fractions_and_bad_strings() {
        let err = serde_json::from_str::<HumanDuration>("-5").unwrap_err().to_string();
        assert!(err.contains("`-5` is not a duration"), "{err}");
        assert!(serde_json::from_str::<HumanDuration>("1.5").is_err());
        assert!(serde_json::from_str::<HumanDuration>("true").is_err());
        let err = serde_json::from_str::<HumanDuration>("\"soon\"").unwrap_err().to_string();
        assert!(err.contains("`soon` is not a duration"), "{err}");
    }
}
