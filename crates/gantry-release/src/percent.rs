//! Rollout percentages in basis points.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ReleaseError;

/// A traffic share in basis points (0..=10 000, i.e. 0.01 % steps), as `gantry-engine`'s
/// `Percentage` (convert with `Percentage::from_basis_points`).
///
/// On the wire it is a decimal number of percent (`25`, `12.5`, `0.01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percentage(u16);

impl Percentage {
    /// 0 %.
    pub const ZERO: Percentage = Percentage(0);
    /// 100 %.
    pub const FULL: Percentage = Percentage(10_000);

    /// From basis points; an error above 10 000.
    pub fn from_basis_points(bp: u32) -> Result<Self, ReleaseError> {
        u16::try_from(bp).ok().filter(|b| *b <= 10_000).map(Percentage).ok_or(ReleaseError::PercentageOutOfRange { basis_points: bp })
    }

    /// From whole percent (`pct(25)`); panics above 100, so only for literals and tests.
    pub const fn pct(whole: u16) -> Self {
        assert!(whole <= 100, "percentage above 100");
        Percentage(whole * 100)
    }

    /// The value in basis points.
    pub fn basis_points(self) -> u32 {
        u32::from(self.0)
    }

    /// The value as a fraction in `0.0..=1.0`.
    pub fn fraction(self) -> f64 {
        f64::from(self.0) / 10_000.0
    }
}

impl fmt::Display for Percentage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, r) = (self.0 / 100, self.0 % 100);
        match r {
            0 => write!(f, "{w}%"),
            r if r % 10 == 0 => write!(f, "{w}.{}%", r / 10),
            r => write!(f, "{w}.{r:02}%"),
        }
    }
}

impl Serialize for Percentage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(100) {
            s.serialize_u64(u64::from(self.0 / 100))
        } else {
            s.serialize_f64(f64::from(self.0) / 100.0)
        }
    }
}

impl<'de> Deserialize<'de> for Percentage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = f64::deserialize(d)?;
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return Err(serde::de::Error::custom("percentage must be a number from 0 to 100"));
        }
        let bp = (p * 100.0).round();
        Ok(Percentage(bp as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_decimal_percent() {
        let p = Percentage::from_basis_points(1250).unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "12.5");
        assert_eq!(serde_json::to_string(&Percentage::pct(25)).unwrap(), "25");
        assert_eq!(serde_json::from_str::<Percentage>("0.01").unwrap().basis_points(), 1);
        assert!(serde_json::from_str::<Percentage>("100.5").is_err());
        assert!(Percentage::from_basis_points(10_001).is_err());
        assert_eq!(p.to_string(), "12.5%");
        assert_eq!(Percentage::from_basis_points(5).unwrap().to_string(), "0.05%");
    }
}
