//! The fallback combinator: ask a preferred predictor within a deadline, else another.
//!
//! When the preferred predictor fails or misses the deadline, the fallback's forecast is
//! labelled `<fallback's source> (fallback: <reason>)`, the reason being `timeout` or the
//! error's text (one line, at most 120 characters), so a fallback is always visible.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prescale_core::{Forecast, ForecastSource};

use crate::{PredictError, PredictRequest, Predictor};

/// Longest reason written into a source label.
const MAX_REASON_CHARS: usize = 120;

/// Try `preferred` within `deadline`, else answer with `fallback`.
pub struct Fallback {
    preferred: Arc<dyn Predictor>,
    fallback: Arc<dyn Predictor>,
    deadline: Duration,
}

impl Fallback {
    /// Prefer `preferred`, giving it `deadline` (on tokio's clock); answer with `fallback` otherwise.
    pub fn new(preferred: Arc<dyn Predictor>, fallback: Arc<dyn Predictor>, deadline: Duration) -> Self {
        Self { preferred, fallback, deadline }
    }
}

/// A reason fit for a source label: one line, bounded length.
fn short_reason(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= MAX_REASON_CHARS {
        line
    } else {
        let cut: String = line.chars().take(MAX_REASON_CHARS - 3).collect();
        format!("{cut}...")
    }
}

#[async_trait]
impl Predictor for Fallback {
    /// The preferred predictor's source (a fallback answer is labelled as such).
    fn source(&self) -> ForecastSource {
        self.preferred.source()
    }

    async fn predict(&self, request: &PredictRequest) -> Result<Forecast, PredictError> {
        let reason = match tokio::time::timeout(self.deadline, self.preferred.predict(request)).await {
            Ok(Ok(forecast)) => return Ok(forecast),
            Ok(Err(error)) => short_reason(&error.to_string()),
            Err(_) => "timeout".to_string(),
        };
        tracing::warn!(preferred = %self.preferred.source(), %reason, "preferred predictor failed; using the fallback");
        let mut forecast = self.fallback.predict(request).await?;
        forecast.source = forecast.source.fallback(reason.clone());
        forecast.explanation = format!("{} failed ({reason}); {}", self.preferred.source(), forecast.explanation);
        Ok(forecast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(short_reason("HTTP 500:\n  upstream\tdown"), "HTTP 500: upstream down");
        let long = "x".repeat(500);
        let r = short_reason(&long);
        assert_eq!(r.chars().count(), MAX_REASON_CHARS);
        assert!(r.ends_with("..."));
    }
}
