//! Checks shared by every entry point: the history and the events must be usable as given.

use prescale_core::{ScheduledEvent, TimeSeries};

use crate::FeatureError;

/// Seconds in a day.
pub(crate) const DAY_SECS: u32 = 86_400;

/// The number of steps in a day, after checking that the history is usable:
/// not empty, every present value finite, a step that divides a day.
pub(crate) fn check_history(history: &TimeSeries) -> Result<usize, FeatureError> {
    if history.is_empty() {
        return Err(FeatureError::EmptyHistory);
    }
    if let Some((index, value)) =
        history.values().iter().enumerate().find_map(|(i, v)| v.filter(|x| !x.is_finite()).map(|x| (i, x)))
    {
        return Err(FeatureError::NonFiniteValue { index, timestamp: history.timestamp(index), value });
    }
    let step_secs = history.step_secs();
    if !DAY_SECS.is_multiple_of(step_secs) {
        return Err(FeatureError::StepDoesNotDivideDay { step_secs });
    }
    Ok((DAY_SECS / step_secs) as usize)
}

/// Every event must pass [`ScheduledEvent::validate`]; the first one that does not is reported.
pub(crate) fn check_events(events: &[ScheduledEvent]) -> Result<(), FeatureError> {
    for (index, event) in events.iter().enumerate() {
        if let Err(problems) = event.validate() {
            let problems = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            return Err(FeatureError::InvalidEvent { index, id: event.id.clone(), problems });
        }
    }
    Ok(())
}

/// Milliseconds from `history`'s start to `t` (negative before it).
pub(crate) fn offset_ms(history: &TimeSeries, t: chrono::DateTime<chrono::Utc>) -> i64 {
    (t - history.start()).num_milliseconds()
}

/// The grid indices `[lo, hi)` of the steps that overlap `[from_ms, to_ms)` (offsets from the
/// history's start); they may lie outside the history.
pub(crate) fn overlapping_steps(from_ms: i64, to_ms: i64, step_ms: i64) -> (i64, i64) {
    let lo = from_ms.div_euclid(step_ms);
    let hi = (to_ms + step_ms - 1).div_euclid(step_ms);
    (lo, hi)
}
