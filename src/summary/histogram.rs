//! Latency histograms in summaries: HdrHistogram's V2 compressed encoding, base64 (the
//! form of HdrHistogram's own interval logs), so any tool with an HdrHistogram library
//! can read them and summaries merge without losing anything.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::metrics::{Latency, new_histogram};

/// Why a histogram in a summary could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("histogram is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram is not a valid HdrHistogram V2 encoding: {0}")]
    Decode(String),
    #[error("histogram has bounds or precision other than imaptest's (1 µs to 1 h, 3 digits)")]
    Incompatible,
}

/// The base64 V2-deflate encoding of `histogram`.
pub fn encode(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serialising into a Vec cannot fail for a histogram imaptest built.
    let _ = V2DeflateSerializer::new().serialize(histogram, &mut bytes);
    BASE64.encode(bytes)
}

/// Reads a histogram written by [`encode`] (or any V2/V2-deflate encoder using the
/// same bounds).
pub fn decode(text: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = BASE64.decode(text.trim())?;
    let decoded: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| HistogramError::Decode(format!("{e:?}")))?;
    // Re-record into imaptest's own bounds, so every histogram adds to every other.
    let mut histogram = new_histogram();
    histogram
        .add(&decoded)
        .map_err(|_| HistogramError::Incompatible)?;
    Ok(histogram)
}

/// A [`Latency`] from its encoded histogram and exact sum.
pub fn latency(text: Option<&str>, count: u64, sum_us: u64) -> Result<Latency, HistogramError> {
    let histogram = match text {
        Some(text) => Some(Box::new(decode(text)?)),
        None => None,
    };
    Ok(Latency {
        histogram,
        count,
        sum_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_lossless() {
        let mut h = new_histogram();
        for v in [1u64, 7, 250, 999, 1_001, 12_345, 3_000_000, 3_599_999_999] {
            h.record_n(v, v % 5 + 1).unwrap();
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back, h);
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q));
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode("not base64!").is_err());
        assert!(decode("aGVsbG8=").is_err());
    }
}
