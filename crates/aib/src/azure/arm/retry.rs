//! What is retried, how long to wait, and when to stop: the policy of the one retry loop in
//! [`ArmClient`](super::ArmClient) (the loop itself is backon's).
//!
//! Retried: 408, 429, 500, 502, 503, 504 and transport failures (connection, timeout, reset).
//! The wait is the longer of the server's hint (`x-ms-retry-after-ms`, `retry-after-ms`,
//! `Retry-After` in seconds or as an HTTP date) and exponential backoff with jitter; retrying
//! stops at an attempt limit or when the next attempt would start after the overall deadline.
//! A non-idempotent POST (AIB `run`) is re-sent only when the service said it did not run it
//! (408, 429, 503) or when the connection was never made.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// Retry limits; tests shrink the backoff (never the server's Retry-After).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOptions {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff delay (before jitter).
    pub initial_backoff: Duration,
    /// Largest backoff delay (before jitter).
    pub max_backoff: Duration,
    /// No attempt starts later than this after the first one.
    pub deadline: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            deadline: Duration::from_secs(600),
        }
    }
}

impl RetryOptions {
    /// The exponential backoff with jitter that backon runs.
    pub(crate) fn backoff(&self) -> backon::ExponentialBuilder {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
    }
}

/// Status codes worth another try.
pub const RETRY_STATUS: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// Status codes that mean "not executed", so even a non-idempotent request may be re-sent.
pub const NOT_EXECUTED_STATUS: [u16; 3] = [408, 429, 503];

/// Whether a failed attempt is retried.
pub fn should_retry_status(status: u16, idempotent: bool) -> bool {
    if idempotent {
        RETRY_STATUS.contains(&status)
    } else {
        NOT_EXECUTED_STATUS.contains(&status)
    }
}

/// How long the server asked us to wait, from the first header present of
/// `x-ms-retry-after-ms`, `retry-after-ms` (milliseconds) and `Retry-After` (seconds or an HTTP
/// date, relative to `now`).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    for name in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(ms) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms));
        }
    }
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = azure_core::time::parse_rfc7231(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.unix_timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The wait before the next attempt: never shorter than the server asked, otherwise backoff.
pub fn next_wait(server: Option<Duration>, backoff: Duration) -> Duration {
    match server {
        Some(server) => server.max(backoff),
        None => backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// Seconds, HTTP dates (future and past) and the millisecond headers all parse, in order.
    #[test]
    fn retry_after_parses_every_form() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_609_459_200); // 2021-01-01
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Fri, 01 Jan 2021 00:00:10 GMT")]),
                now
            ),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Thu, 31 Dec 2020 23:59:50 GMT")]),
                now
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "9"), ("retry-after-ms", "1500")]),
                now
            ),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "1500"), ("x-ms-retry-after-ms", "250")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    /// The server's hint wins over a shorter backoff; a longer backoff wins over the hint.
    #[test]
    fn wait_is_never_shorter_than_retry_after() {
        let s = Duration::from_secs;
        assert_eq!(next_wait(Some(s(5)), s(1)), s(5));
        assert_eq!(next_wait(Some(s(1)), s(4)), s(4));
        assert_eq!(next_wait(None, s(2)), s(2));
    }

    /// Backoff grows exponentially within [delay, 2×delay) and is capped; attempts are bounded.
    #[test]
    fn backoff_grows_with_jitter_and_is_bounded() {
        use backon::BackoffBuilder as _;
        let options = RetryOptions {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            deadline: Duration::from_secs(60),
        };
        let delays: Vec<Duration> = options.backoff().build().collect();
        assert_eq!(delays.len(), 4, "{delays:?}");
        let bases = [100u64, 200, 400, 400];
        for (d, base) in delays.iter().zip(bases) {
            let base = Duration::from_millis(base);
            assert!(*d >= base && *d <= base * 2, "{d:?} vs {base:?}");
        }
    }

    /// Idempotent requests retry the whole safe list; a POST only what was surely not executed.
    #[test]
    fn non_idempotent_requests_retry_only_not_executed_statuses() {
        for s in RETRY_STATUS {
            assert!(should_retry_status(s, true));
        }
        assert!(should_retry_status(429, false));
        assert!(should_retry_status(503, false));
        assert!(!should_retry_status(500, false));
        assert!(!should_retry_status(504, false));
        for s in [400, 401, 403, 404, 409] {
            assert!(!should_retry_status(s, true));
        }
    }
}
