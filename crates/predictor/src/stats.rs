//! Small order statistics shared by the forecasters.

/// Median of `values` (reordered in place); `None` when empty.
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    quantile(values, 0.5)
}

/// The `q` quantile of `values` (reordered in place) with linear interpolation between
/// order statistics (Hyndman-Fan type 7, the default of R and numpy); `None` when empty.
pub(crate) fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let position = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let lower = position.floor() as usize;
    let fraction = position - lower as f64;
    // Selection, not a sort: the fit takes these quantiles over tens of thousands of
    // residuals per lead. The next order statistic is the smallest of what lies above.
    let (_, low, above) = values.select_nth_unstable_by(lower, f64::total_cmp);
    let low = *low;
    let high = if fraction > 0.0 { above.iter().copied().min_by(f64::total_cmp).unwrap_or(low) } else { low };
    Some(low + fraction * (high - low))
}

/// Mean of the present values of a slice; `None` when all are missing.
pub(crate) fn mean_present(values: &[Option<f64>]) -> Option<f64> {
    let (sum, count) = values.iter().flatten().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_lengths() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn quantile_interpolates_like_type_7() {
        // numpy.quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9.1
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((quantile(&mut v, 0.9).unwrap() - 9.1).abs() < 1e-12);
        assert_eq!(quantile(&mut [5.0], 0.9), Some(5.0));
    }

    #[test]
    fn quantile_by_selection_matches_the_sorted_definition() {
        // A shuffled series with repeats, against interpolation on the sorted copy.
        let values: Vec<f64> = (0..101).map(|i| f64::from((i * 37) % 23)).collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.1, 0.25, 0.5, 0.77, 0.9, 0.999, 1.0] {
            let position = q * (sorted.len() - 1) as f64;
            let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
            let expected = sorted[lo] + (position - lo as f64) * (sorted[hi] - sorted[lo]);
            let got = quantile(&mut values.clone(), q).unwrap();
            assert!((got - expected).abs() < 1e-12, "q {q}: {got} vs {expected}");
        }
    }

    #[test]
    fn mean_skips_missing_points() {
        assert_eq!(mean_present(&[Some(1.0), None, Some(3.0)]), Some(2.0));
        assert_eq!(mean_present(&[None, None]), None);
    }
}
