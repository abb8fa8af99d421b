//! Empirical distributions: a list of observed values (one per line in a text file, `#`
//! comments and blank lines ignored), sampled uniformly and rescaled to the requested mean.

use std::path::{Path, PathBuf};

use rand::Rng as _;

use crate::{DistError, Rng};

/// Observed values normalised to mean 1; [`Empirical::sample`] draws one uniformly.
#[derive(Debug, Clone, PartialEq)]
pub struct Empirical {
    path: PathBuf,
    /// Values divided by their mean (so their mean is exactly 1).
    unit: Vec<f64>,
}

impl Empirical {
    /// Read values from `path`.
    pub fn from_file(path: &Path) -> Result<Self, DistError> {
        let text = std::fs::read_to_string(path).map_err(|source| DistError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_text(path, &text)
    }

    /// Parse values from `text` (`path` only names the source in errors).
    pub fn from_text(path: &Path, text: &str) -> Result<Self, DistError> {
        let mut values = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let v: f64 = line.parse().map_err(|_| bad(path, i, line))?;
            if !v.is_finite() || v < 0.0 {
                return Err(bad(path, i, line));
            }
            values.push(v);
        }
        Self::from_values(path, values)
    }

    /// Wrap already-parsed values.
    pub fn from_values(path: &Path, mut values: Vec<f64>) -> Result<Self, DistError> {
        let sum: f64 = values.iter().sum();
        if values.is_empty() || sum.is_nan() || sum <= 0.0 {
            return Err(DistError::Empty(path.to_owned()));
        }
        let mean = sum / values.len() as f64;
        values.iter_mut().for_each(|v| *v /= mean);
        Ok(Self {
            path: path.to_owned(),
            unit: values,
        })
    }

    /// The file the values came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The normalised values (mean 1), in file order.
    pub fn unit_values(&self) -> &[f64] {
        &self.unit
    }

    /// Coefficient of variation (σ / mean) of the observed values.
    pub fn cv(&self) -> f64 {
        let n = self.unit.len() as f64;
        let var = self.unit.iter().map(|v| (v - 1.0) * (v - 1.0)).sum::<f64>() / n;
        var.sqrt()
    }

    /// One draw with mean 1.
    #[inline]
    pub fn sample_unit(&self, rng: &mut Rng) -> f64 {
        self.unit[rng.random_range(0..self.unit.len())]
    }
}

fn bad(path: &Path, i: usize, text: &str) -> DistError {
    DistError::BadSample {
        path: path.to_owned(),
        line: i + 1,
        text: text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let e = Empirical::from_text(Path::new("t"), "# hdr\n1\n\n3 # c\n").unwrap();
        assert_eq!(e.unit_values(), &[0.5, 1.5]);
        assert!((e.cv() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn rejects_garbage_negative_and_empty() {
        let p = Path::new("f");
        assert!(matches!(
            Empirical::from_text(p, "1\nx\n"),
            Err(DistError::BadSample { line: 2, .. })
        ));
        assert!(Empirical::from_text(p, "-1\n").is_err());
        assert!(matches!(
            Empirical::from_text(p, "# none\n"),
            Err(DistError::Empty(_))
        ));
        assert!(matches!(
            Empirical::from_text(p, "0\n0\n"),
            Err(DistError::Empty(_))
        ));
    }
}
