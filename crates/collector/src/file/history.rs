//! Metric history from CSV files such as the traces in `data/traces`.
//!
//! Format: a header with a `timestamp` column (RFC 3339, marking the START of each
//! interval) and any number of numeric columns, e.g. `timestamp,requests`. Rows are in
//! increasing time order on one regular grid; the file's step is the smallest gap
//! between consecutive rows. Absent rows and empty cells are missing points, never zero.

use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use prescale_core::{TimeSeries, WorkloadRef};

use super::{csv_line, parse_timestamp};
use crate::source::{Grid, step_seconds};
use crate::{CollectorError, MetricSource, Signal};

/// How points of a fine grid combine into one coarser point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Add them up: for counts per interval, such as `requests`.
    Sum,
    /// Average them: for gauges, such as CPU or latency.
    Mean,
}

/// The column [`CsvHistory`] serves as [`Signal::RequestRate`].
const REQUESTS_COLUMN: &str = "requests";
/// Name of the time column.
const TIMESTAMP_COLUMN: &str = "timestamp";
/// Most points a file's grid may span (about 19 years at one minute).
const MAX_GRID_POINTS: i64 = 10_000_000;

/// One workload's history read from a CSV file.
///
/// As a [`MetricSource`] it serves [`Signal::RequestRate`] from the `requests` column as
/// requests per second (the bucket's count divided by the step); the workload argument is
/// not checked, since a file holds one workload. Range grids are aligned to the file's own
/// phase (a file whose rows fall at :04, :09, ... yields 15-minute points at :04, :19, ...).
#[derive(Debug, Clone)]
pub struct CsvHistory {
    file: String,
    columns: Vec<String>,
    start: DateTime<Utc>,
    step_secs: i64,
    /// Per column, the values on the file's grid from `start`.
    values: Vec<Vec<Option<f64>>>,
}

/// One parsed data row.
struct Row {
    line: u64,
    at: DateTime<Utc>,
    cells: Vec<Option<f64>>,
}

impl CsvHistory {
    /// Reads the CSV file at `path`.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, CollectorError> {
        let path = path.as_ref();
        let file =
            std::fs::File::open(path).map_err(|source| CollectorError::Io { path: path.to_path_buf(), source })?;
        Self::from_reader(file, &path.display().to_string())
    }

    /// Reads CSV from `reader`; `name` stands for the file in error messages.
    pub fn from_reader(reader: impl Read, name: &str) -> Result<Self, CollectorError> {
        let mut csv = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(reader);
        let header: Vec<String> =
            csv.headers().map_err(|e| csv_error(name, &[], e))?.iter().map(String::from).collect();
        let time_index = header_layout(name, &header)?;
        let columns: Vec<String> =
            header.iter().enumerate().filter(|(i, _)| *i != time_index).map(|(_, c)| c.clone()).collect();

        let mut rows: Vec<Row> = Vec::new();
        for record in csv.records() {
            let record = record.map_err(|e| csv_error(name, &header, e))?;
            let line = record.position().map(csv::Position::line).unwrap_or(0);
            let bad = |column: &str, message: String| bad_row(name, line, column, message);
            let at = parse_timestamp(&record[time_index]).map_err(|m| bad(TIMESTAMP_COLUMN, m))?;
            if at.timestamp_subsec_nanos() != 0 {
                return Err(bad(TIMESTAMP_COLUMN, format!("{} has a fraction of a second", &record[time_index])));
            }
            if let Some(prev) = rows.last()
                && at <= prev.at
            {
                return Err(bad(
                    TIMESTAMP_COLUMN,
                    format!(
                        "{} is not after the previous row's {} (line {})",
                        at.to_rfc3339(),
                        prev.at.to_rfc3339(),
                        prev.line
                    ),
                ));
            }
            let mut cells = Vec::with_capacity(columns.len());
            for (i, text) in record.iter().enumerate().filter(|(i, _)| *i != time_index) {
                cells.push(parse_cell(text).map_err(|m| bad(&header[i], m))?);
            }
            rows.push(Row { line, at, cells });
        }
        let first = match rows.as_slice() {
            [] => return Err(bad_row(name, 1, TIMESTAMP_COLUMN, "the file has no data rows".into())),
            [only] => {
                return Err(bad_row(
                    name,
                    only.line,
                    TIMESTAMP_COLUMN,
                    "one row is not enough to tell the step".into(),
                ));
            }
            [first, _, ..] => first,
        };
        let step_secs = rows.windows(2).map(|w| (w[1].at - w[0].at).num_seconds()).min().unwrap_or(1);
        let start = first.at;
        let span = (rows[rows.len() - 1].at - start).num_seconds() / step_secs + 1;
        if span > MAX_GRID_POINTS {
            return Err(bad_row(
                name,
                rows[rows.len() - 1].line,
                TIMESTAMP_COLUMN,
                format!("the file spans {span} steps of {step_secs} s; at most {MAX_GRID_POINTS} are supported"),
            ));
        }
        let mut values = vec![vec![None; span as usize]; columns.len()];
        for row in &rows {
            let offset = (row.at - start).num_seconds();
            if offset % step_secs != 0 {
                return Err(bad_row(
                    name,
                    row.line,
                    TIMESTAMP_COLUMN,
                    format!(
                        "{} is off the file's {step_secs} s grid that starts at {} (line {})",
                        row.at.to_rfc3339(),
                        start.to_rfc3339(),
                        first.line
                    ),
                ));
            }
            let index = (offset / step_secs) as usize;
            for (column, cell) in values.iter_mut().zip(&row.cells) {
                column[index] = *cell;
            }
        }
        Ok(Self { file: name.to_string(), columns, start, step_secs, values })
    }

    /// The numeric columns, in file order (the timestamp column excluded).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The file's own step.
    pub fn step(&self) -> Duration {
        Duration::seconds(self.step_secs)
    }

    /// Start of the first row's interval.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// End of the last row's interval.
    pub fn end(&self) -> DateTime<Utc> {
        self.start + Duration::seconds(self.step_secs * self.len() as i64)
    }

    /// `column` over the whole file, resampled to `step` (a multiple of the file's step):
    /// from the point containing the first row to the last point that ends by the file's end.
    ///
    /// A point whose interval is not fully covered by present values is `None`: a gap in
    /// the file, an empty cell, or the file's start. A finer step than the file's is an error.
    pub fn series(&self, column: &str, step: Duration, aggregate: Aggregate) -> Result<TimeSeries, CollectorError> {
        self.resampled(column, self.start, self.end(), step, aggregate)
    }

    fn len(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }

    fn column_values(&self, column: &str) -> Result<&[Option<f64>], CollectorError> {
        self.columns.iter().position(|c| c == column).map(|i| self.values[i].as_slice()).ok_or_else(|| {
            CollectorError::BadRow {
                file: self.file.clone(),
                line: 1,
                column: column.to_string(),
                message: format!("no such column; the file has: {}", self.columns.join(", ")),
            }
        })
    }

    /// `column` from the point containing `from` to the last one complete by `to`,
    /// on the phase-aligned grid of `step`.
    fn resampled(
        &self,
        column: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
        aggregate: Aggregate,
    ) -> Result<TimeSeries, CollectorError> {
        let values = self.column_values(column)?;
        let target = step_seconds(step)?;
        let refuse = |reason: String| CollectorError::Resample {
            file: self.file.clone(),
            from_secs: self.step_secs,
            to_secs: target,
            reason,
        };
        if target < self.step_secs {
            return Err(refuse("the requested step is finer than the file's; that would invent data".into()));
        }
        if target % self.step_secs != 0 {
            return Err(refuse("the requested step is not a multiple of the file's".into()));
        }
        let grid = Grid::covering(from, to, step, self.phase_secs())?;
        let per = target / self.step_secs;
        let out = (0..grid.len)
            .map(|b| {
                let first = (grid.timestamp(b) - self.start).num_seconds() / self.step_secs;
                bucket(values, first, per, aggregate)
            })
            .collect();
        TimeSeries::new(grid.start, grid.step(), out).map_err(|e| CollectorError::InvalidRange(e.to_string()))
    }

    /// Seconds past a multiple of the file's step at which its rows fall.
    fn phase_secs(&self) -> i64 {
        self.start.timestamp().rem_euclid(self.step_secs)
    }
}

/// The aggregate of `per` file points from index `first`; `None` unless all are present.
fn bucket(values: &[Option<f64>], first: i64, per: i64, aggregate: Aggregate) -> Option<f64> {
    let mut sum = 0.0;
    for i in first..first + per {
        sum += usize::try_from(i).ok().and_then(|i| values.get(i).copied().flatten())?;
    }
    Some(match aggregate {
        Aggregate::Sum => sum,
        Aggregate::Mean => sum / per as f64,
    })
}

#[async_trait]
impl MetricSource for CsvHistory {
    async fn range(
        &self,
        _workload: &WorkloadRef,
        signal: Signal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Result<TimeSeries, CollectorError> {
        self.check_signal(signal)?;
        let mut series = self.resampled(REQUESTS_COLUMN, from, to, step, Aggregate::Sum)?;
        let secs = f64::from(series.step_secs());
        for v in series.values_mut().iter_mut().flatten() {
            *v /= secs;
        }
        Ok(series)
    }

    /// The rate of the file interval that ended most recently at or before `at`.
    async fn instant(
        &self,
        _workload: &WorkloadRef,
        signal: Signal,
        at: DateTime<Utc>,
    ) -> Result<Option<f64>, CollectorError> {
        self.check_signal(signal)?;
        let values = self.column_values(REQUESTS_COLUMN)?;
        let ended = (at - self.start).num_seconds().div_euclid(self.step_secs) - 1;
        let count = usize::try_from(ended).ok().and_then(|i| values.get(i).copied().flatten());
        Ok(count.map(|c| c / self.step_secs as f64))
    }
}

impl CsvHistory {
    fn check_signal(&self, signal: Signal) -> Result<(), CollectorError> {
        if signal != Signal::RequestRate {
            return Err(CollectorError::UnsupportedSignal {
                signal,
                source_name: format!("history file {}", self.file),
            });
        }
        Ok(())
    }
}

/// Index of the timestamp column, after checking the header.
fn header_layout(name: &str, header: &[String]) -> Result<usize, CollectorError> {
    for (i, column) in header.iter().enumerate() {
        if column.is_empty() {
            return Err(bad_row(name, 1, &(i + 1).to_string(), "empty column name in the header".into()));
        }
        if header[..i].contains(column) {
            return Err(bad_row(name, 1, column, "column appears twice in the header".into()));
        }
    }
    let time_index = header.iter().position(|c| c == TIMESTAMP_COLUMN).ok_or_else(|| {
        bad_row(
            name,
            1,
            TIMESTAMP_COLUMN,
            format!("the header has no `timestamp` column (found: {})", header.join(",")),
        )
    })?;
    if header.len() < 2 {
        return Err(bad_row(name, 1, "2", "the header names no value column besides `timestamp`".into()));
    }
    Ok(time_index)
}

/// A cell: empty is missing; anything else must be a finite number.
fn parse_cell(text: &str) -> Result<Option<f64>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(format!("{text:?} is not a finite number (leave the cell empty for a missing value)")),
    }
}

fn bad_row(file: &str, line: u64, column: &str, message: String) -> CollectorError {
    CollectorError::BadRow { file: file.to_string(), line, column: column.to_string(), message }
}

/// A csv error as a row error naming the column where the reader could tell it.
pub(super) fn csv_error(file: &str, header: &[String], error: csv::Error) -> CollectorError {
    let line = csv_line(&error);
    match error.into_kind() {
        csv::ErrorKind::Io(source) => CollectorError::Io { path: PathBuf::from(file), source },
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            let (column, message) = if len > expected_len {
                ((expected_len + 1).to_string(), format!("the row has {len} fields, the header {expected_len}"))
            } else {
                let missing = header.get(len as usize).cloned().unwrap_or_else(|| (len + 1).to_string());
                (missing, format!("the row has {len} fields, the header {expected_len}"))
            };
            bad_row(file, line, &column, message)
        }
        csv::ErrorKind::Utf8 { err, .. } => {
            let column = header.get(err.field()).cloned().unwrap_or_else(|| (err.field() + 1).to_string());
            bad_row(file, line, &column, "the field is not valid UTF-8".into())
        }
        other => bad_row(file, line, "-", format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<CsvHistory, CollectorError> {
        CsvHistory::from_reader(text.as_bytes(), "t.csv")
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn bad_row_of(err: CollectorError) -> (u64, String, String) {
        match err {
            CollectorError::BadRow { file, line, column, message } => {
                assert_eq!(file, "t.csv");
                (line, column, message)
            }
            other => panic!("expected a row error, got {other:?}"),
        }
    }

    const GAPPY: &str = "timestamp,requests,cpu\n\
        2026-01-01T00:00:00Z,1,0.5\n\
        2026-01-01T00:01:00Z,2,0.5\n\
        2026-01-01T00:02:00Z,3,\n\
        2026-01-01T00:04:00Z,5,1.5\n\
        2026-01-01T00:05:00Z,6,1.0\n\
        2026-01-01T00:06:00Z,7,1.0\n";

    #[test]
    fn reads_columns_step_and_gaps() {
        let h = read(GAPPY).unwrap();
        assert_eq!(h.columns(), ["requests", "cpu"]);
        assert_eq!(h.step(), Duration::minutes(1));
        assert_eq!(h.start(), t("2026-01-01T00:00:00Z"));
        assert_eq!(h.end(), t("2026-01-01T00:07:00Z"));
        let s = h.series("requests", Duration::minutes(1), Aggregate::Sum).unwrap();
        assert_eq!(s.values(), &[Some(1.0), Some(2.0), Some(3.0), None, Some(5.0), Some(6.0), Some(7.0)]);
        let cpu = h.series("cpu", Duration::minutes(1), Aggregate::Mean).unwrap();
        assert_eq!(cpu.values()[2], None);
    }

    #[test]
    fn resampling_sums_and_keeps_gaps_missing() {
        let h = read(GAPPY).unwrap();
        let s = h.series("requests", Duration::minutes(2), Aggregate::Sum).unwrap();
        assert_eq!(s.start(), t("2026-01-01T00:00:00Z"));
        // 00:02-00:04 lacks 00:03; 00:06-00:08 would run past the end of the file.
        assert_eq!(s.values(), &[Some(3.0), None, Some(11.0)]);
        let cpu = h.series("cpu", Duration::minutes(2), Aggregate::Mean).unwrap();
        assert_eq!(cpu.values(), &[Some(0.5), None, Some(1.25)]);
        // A file starting mid-bucket: the first bucket is partly before the file, so missing.
        let late = read("timestamp,requests\n2026-01-01T00:01:00Z,1\n2026-01-01T00:02:00Z,2\n2026-01-01T00:03:00Z,3\n")
            .unwrap();
        let s = late.series("requests", Duration::minutes(2), Aggregate::Sum).unwrap();
        assert_eq!((s.start(), s.values()), (t("2026-01-01T00:00:00Z"), &[None, Some(5.0)][..]));
    }

    #[test]
    fn finer_or_uneven_steps_are_refused() {
        let h = read(GAPPY).unwrap();
        let err = h.series("requests", Duration::seconds(30), Aggregate::Sum).unwrap_err();
        assert!(
            matches!(err, CollectorError::Resample { from_secs: 60, to_secs: 30, ref reason, .. } if reason.contains("finer"))
        );
        let err = h.series("requests", Duration::seconds(90), Aggregate::Sum).unwrap_err();
        assert!(matches!(err, CollectorError::Resample { ref reason, .. } if reason.contains("multiple")), "{err}");
    }

    #[test]
    fn offset_grids_keep_their_phase() {
        let text = "timestamp,requests\n2014-04-10T00:04:00Z,1\n2014-04-10T00:09:00Z,2\n2014-04-10T00:14:00Z,3\n\
                    2014-04-10T00:19:00Z,4\n";
        let h = read(text).unwrap();
        let s = h.series("requests", Duration::minutes(15), Aggregate::Sum).unwrap();
        assert_eq!(s.start(), t("2014-04-10T00:04:00Z"));
        assert_eq!(s.values(), &[Some(6.0)]);
    }

    #[test]
    fn bad_cells_name_line_and_column() {
        let (line, column, message) =
            bad_row_of(read("timestamp,requests\n2026-01-01T00:00:00Z,1\n2026-01-01T00:01:00Z,many\n").unwrap_err());
        assert_eq!((line, column.as_str()), (3, "requests"));
        assert!(message.contains("many"), "{message}");
        let (line, column, _) =
            bad_row_of(read("timestamp,requests\n2026-01-01T00:00:00Z,1\nyesterday,2\n").unwrap_err());
        assert_eq!((line, column.as_str()), (3, "timestamp"));
        let (line, column, _) = bad_row_of(read("timestamp,requests\n2026-01-01T00:00:00Z,NaN\n").unwrap_err());
        assert_eq!((line, column.as_str()), (2, "requests"));
    }

    #[test]
    fn bad_structure_names_line_and_column() {
        let (line, column, _) = bad_row_of(read("time,requests\n2026-01-01T00:00:00Z,1\n").unwrap_err());
        assert_eq!((line, column.as_str()), (1, "timestamp"));
        let (line, column, _) =
            bad_row_of(read("timestamp,requests\n2026-01-01T00:00:00Z,1\n2026-01-01T00:01:00Z\n").unwrap_err());
        assert_eq!((line, column.as_str()), (3, "requests"));
        let (line, column, _) = bad_row_of(read("timestamp,requests\n2026-01-01T00:00:00Z,1,7\n").unwrap_err());
        assert_eq!((line, column.as_str()), (2, "3"));
        let (line, _, message) =
            bad_row_of(read("timestamp,requests\n2026-01-01T00:01:00Z,1\n2026-01-01T00:00:00Z,1\n").unwrap_err());
        assert!(line == 3 && message.contains("not after"), "{message}");
        let (line, _, message) = bad_row_of(
            read("timestamp,requests\n2026-01-01T00:00:00Z,1\n2026-01-01T00:02:00Z,1\n2026-01-01T00:05:00Z,1\n")
                .unwrap_err(),
        );
        assert!(line == 4 && message.contains("off the file's 120 s grid"), "{message}");
        let (_, _, message) = bad_row_of(read("timestamp,requests\n").unwrap_err());
        assert!(message.contains("no data rows"), "{message}");
        let (_, column, _) = bad_row_of(read("timestamp,requests,requests\n2026-01-01T00:00:00Z,1,1\n").unwrap_err());
        assert_eq!(column, "requests");
    }

    #[test]
    fn unknown_column_lists_the_known_ones() {
        let err = read(GAPPY).unwrap().series("latency", Duration::minutes(1), Aggregate::Mean).unwrap_err();
        assert!(err.to_string().contains("requests, cpu"), "{err}");
    }

    #[tokio::test]
    async fn metric_source_serves_request_rate_per_second() {
        let h = read(GAPPY).unwrap();
        let w = WorkloadRef::new("shop", "frontend");
        let s = h
            .range(&w, Signal::RequestRate, t("2025-12-31T23:58:30Z"), t("2026-01-01T00:04:00Z"), Duration::minutes(2))
            .await
            .unwrap();
        assert_eq!(s.start(), t("2025-12-31T23:58:00Z"));
        assert_eq!(s.values(), &[None, Some(3.0 / 120.0), None]);
        assert_eq!(h.instant(&w, Signal::RequestRate, t("2026-01-01T00:02:30Z")).await.unwrap(), Some(2.0 / 60.0));
        assert_eq!(h.instant(&w, Signal::RequestRate, t("2026-01-01T00:04:00Z")).await.unwrap(), None);
        assert_eq!(h.instant(&w, Signal::RequestRate, t("2025-01-01T00:00:00Z")).await.unwrap(), None);
        let err = h.instant(&w, Signal::Cpu, t("2026-01-01T00:02:30Z")).await.unwrap_err();
        assert!(matches!(err, CollectorError::UnsupportedSignal { signal: Signal::Cpu, .. }));
    }

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        let err = CsvHistory::from_path("/nonexistent/history.csv").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/history.csv"), "{err}");
    }
}
