//! Runtime knobs (time scale, faults, delays) and the request log.
//!
//! Knobs live behind one lock shared by the running servers, so a test can change them while a
//! client is mid-flight (e.g. switch on 429s after login). Every duration here is in *emulated*
//! time; [`Knobs::real`] converts it with the current time scale when a deadline is set.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// The values behind [`Knobs`]; also the JSON shape of `GET/POST /_emulator/knobs`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct KnobValues {
    /// Emulated seconds per real second (120.0 makes a two-hour token last one real minute).
    pub time_scale: f64,
    /// Items per page of every ARM list.
    pub page_size: usize,
    /// Share (0..1) of ARM requests answered 429 `TooManyRequests` (blob front: 503 `ServerBusy`).
    pub throttle_rate: f64,
    /// `Retry-After` seconds sent with injected throttling.
    pub throttle_retry_after: u64,
    /// Share (0..1) of requests answered 500/503.
    pub server_error_rate: f64,
    /// Share (0..1) of requests whose connection is dropped without an answer.
    pub drop_rate: f64,
    /// Lifetime of access tokens issued from now on (emulated).
    #[serde(with = "secs")]
    pub token_lifetime: Duration,
    /// Lifetime of CI id tokens (GitHub, Azure Pipelines) issued from now on (emulated).
    #[serde(with = "secs")]
    pub federated_token_lifetime: Duration,
    /// Delay before a new managed identity's principal is visible to role assignments (emulated).
    #[serde(with = "secs")]
    pub principal_visibility_delay: Duration,
    /// Delay before a new role assignment takes effect (emulated).
    #[serde(with = "secs")]
    pub rbac_propagation_delay: Duration,
    /// Delay before writes show in `/resources` lists (emulated).
    #[serde(with = "secs")]
    pub list_lag: Duration,
    /// Status polls answered "in progress" before an operation may finish.
    pub lro_polls: u32,
    /// Minimum duration of every long-running operation (emulated).
    #[serde(with = "secs")]
    pub lro_duration: Duration,
    /// `Retry-After` seconds on 202s and status answers (real seconds: clients sleep on their clock).
    pub lro_retry_after: u64,
    /// How galleries, image definitions and image versions advertise their running operations
    /// (JSON: `"azure-async-operation"`, `"operation-location"`, `"location"`, `"none"`).
    pub lro_style: LroStyle,
    /// Honour `principalType: ServicePrincipal` as a bypass of the principal-visibility window.
    pub principal_type_bypass: bool,
    /// Share (0..1) of blob-front answers whose body trickles out in 16 KiB pieces.
    pub slow_body_rate: f64,
    /// Pause before each 16 KiB piece of a slow body (real time: it is the network).
    #[serde(with = "secs")]
    pub slow_body_delay: Duration,
    /// Image Builder timings and faults (see [`crate::AibKnobs`]).
    pub aib: crate::AibKnobs,
    /// Roll each fault independently (`true`) instead of spreading it evenly (`false`: a rate
    /// of 0.2 fails exactly every fifth request of its kind). Spread faults make a test's
    /// "faults were injected" hold on every run; random ones suit long soak runs by hand.
    pub random_faults: bool,
}

/// The kinds of injected fault, each spread over its own stream of requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    ArmThrottle,
    ArmServerError,
    BlobThrottle,
    BlobServerError,
    SlowBody,
    Drop,
    AibInternal,
}

impl Fault {
    const COUNT: usize = 7;
}

/// The header a resource provider uses to advertise a running operation (contract section 2.2):
/// a client must follow each of them, so a test can make the Azure-AsyncOperation resources
/// (galleries, image definitions, image versions) answer in any of the four styles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LroStyle {
    /// 201/200 with the body and `Azure-AsyncOperation` (an operation-status resource whose
    /// `status` is read; 200 while running and after), as Compute does.
    #[default]
    AzureAsyncOperation,
    /// The same status resource under the data-plane header `Operation-Location`.
    OperationLocation,
    /// 202 with an empty body and `Location`: 202 while running, then the resource (200).
    Location,
    /// 201/200 with a non-terminal `provisioningState` and no polling header: the client
    /// re-reads the resource until its state is terminal (each GET counts as a poll). A DELETE,
    /// which has nothing to re-read, then answers 202 + `Location`.
    None,
}

impl std::fmt::Display for LroStyle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LroStyle::AzureAsyncOperation => "azure-async-operation",
            LroStyle::OperationLocation => "operation-location",
            LroStyle::Location => "location",
            LroStyle::None => "none",
        })
    }
}

/// Durations as seconds (a float) in knob JSON; the Image Builder knobs use it too, so every
/// knob duration reads and writes the same way.
pub(crate) mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

impl Default for KnobValues {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            page_size: 5,
            throttle_rate: 0.0,
            throttle_retry_after: 1,
            server_error_rate: 0.0,
            drop_rate: 0.0,
            token_lifetime: Duration::from_secs(3600),
            federated_token_lifetime: Duration::from_secs(300),
            principal_visibility_delay: Duration::from_secs(5),
            rbac_propagation_delay: Duration::from_secs(5),
            list_lag: Duration::from_secs(2),
            lro_polls: 1,
            lro_duration: Duration::from_secs(1),
            lro_retry_after: 1,
            lro_style: LroStyle::AzureAsyncOperation,
            principal_type_bypass: true,
            slow_body_rate: 0.0,
            slow_body_delay: Duration::from_millis(50),
            aib: crate::AibKnobs::default(),
            random_faults: false,
        }
    }
}

impl KnobValues {
    /// The preset step tests start from: a fast clock (one emulated minute is 0.1 s), no list
    /// lag, no Entra/RBAC replication windows, quick operations with `Retry-After: 0`, and
    /// one-minute Image Builder create/delete/cancel. A test changes only what it is about.
    pub fn fast() -> KnobValues {
        let mut k = KnobValues {
            time_scale: 600.0,
            list_lag: Duration::from_secs(0),
            lro_duration: Duration::from_secs(6),
            lro_polls: 1,
            lro_retry_after: 0,
            rbac_propagation_delay: Duration::from_secs(0),
            principal_visibility_delay: Duration::from_secs(0),
            ..KnobValues::default()
        };
        k.aib.create = Duration::from_secs(60);
        k.aib.delete = Duration::from_secs(60);
        k.aib.cancel = Duration::from_secs(60);
        k
    }
}

/// Cheap clone handle on the knobs of one running emulator; changes apply at once.
#[derive(Clone, Debug, Default)]
pub struct Knobs(Arc<RwLock<KnobValues>>, Arc<Mutex<[f64; Fault::COUNT]>>);

impl Knobs {
    pub(crate) fn new(values: KnobValues) -> Self {
        Self(Arc::new(RwLock::new(values)), Arc::default())
    }

    /// A copy of the current values.
    pub fn get(&self) -> KnobValues {
        self.0.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// Replaces all values at once (what `POST /_emulator/knobs` does).
    pub fn set(&self, values: KnobValues) {
        if let Ok(mut v) = self.0.write() {
            *v = values;
        }
    }

    fn update(&self, f: impl FnOnce(&mut KnobValues)) {
        if let Ok(mut v) = self.0.write() {
            f(&mut v);
        }
    }

    /// Emulated seconds per real second; lets a test cross a token lifetime in real seconds.
    pub fn set_time_scale(&self, scale: f64) {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        self.update(|v| v.time_scale = scale);
    }
    /// Small pages make clients prove they follow `nextLink`.
    pub fn set_page_size(&self, size: usize) {
        self.update(|v| v.page_size = size.max(1));
    }
    /// Random 429s with `Retry-After` so clients prove they back off as told.
    pub fn set_throttle_rate(&self, rate: f64, retry_after_secs: u64) {
        self.update(|v| {
            v.throttle_rate = rate.clamp(0.0, 1.0);
            v.throttle_retry_after = retry_after_secs;
        });
    }
    /// Random 500/503 so clients prove they retry transient failures.
    pub fn set_server_error_rate(&self, rate: f64) {
        self.update(|v| v.server_error_rate = rate.clamp(0.0, 1.0));
    }
    /// Random dropped connections (no answer at all).
    pub fn set_drop_rate(&self, rate: f64) {
        self.update(|v| v.drop_rate = rate.clamp(0.0, 1.0));
    }
    /// Access tokens issued from now on live this long (emulated); clients must refresh.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.update(|v| v.token_lifetime = lifetime);
    }
    /// CI id tokens issued from now on live this long (emulated); clients must not cache them.
    pub fn set_federated_token_lifetime(&self, lifetime: Duration) {
        self.update(|v| v.federated_token_lifetime = lifetime);
    }
    /// The Entra replication window after an identity is created (`PrincipalNotFound`).
    pub fn set_principal_visibility_delay(&self, delay: Duration) {
        self.update(|v| v.principal_visibility_delay = delay);
    }
    /// Role assignments take effect only after this delay (403 meanwhile).
    pub fn set_rbac_propagation_delay(&self, delay: Duration) {
        self.update(|v| v.rbac_propagation_delay = delay);
    }
    /// `/resources` lists lag writes by this much.
    pub fn set_list_lag(&self, lag: Duration) {
        self.update(|v| v.list_lag = lag);
    }
    /// Status polls answered "in progress" before an operation may finish.
    pub fn set_lro_polls(&self, polls: u32) {
        self.update(|v| v.lro_polls = polls);
    }
    /// Minimum emulated duration of long-running operations.
    pub fn set_lro_duration(&self, duration: Duration) {
        self.update(|v| v.lro_duration = duration);
    }
    /// `Retry-After` (real seconds) on 202s and status answers.
    pub fn set_lro_retry_after(&self, secs: u64) {
        self.update(|v| v.lro_retry_after = secs);
    }
    /// How galleries, image definitions and image versions advertise operations started from
    /// now on, so a client proves it follows every header style (and, with
    /// [`LroStyle::None`], the resource's own `provisioningState`).
    pub fn set_lro_style(&self, style: LroStyle) {
        self.update(|v| v.lro_style = style);
    }
    /// Whether `principalType: ServicePrincipal` skips the principal-visibility window.
    pub fn set_principal_type_bypass(&self, honour: bool) {
        self.update(|v| v.principal_type_bypass = honour);
    }

    /// Blob-front answers trickle out (16 KiB pieces, `delay` before each) at this rate, so
    /// clients prove their timeouts and progress handling.
    pub fn set_slow_bodies(&self, rate: f64, delay: Duration) {
        self.update(|v| {
            v.slow_body_rate = rate.clamp(0.0, 1.0);
            v.slow_body_delay = delay;
        });
    }

    /// Real duration of an emulated one, at the current time scale.
    pub fn real(&self, emulated: Duration) -> Duration {
        let scale = self.get().time_scale;
        Duration::from_secs_f64(emulated.as_secs_f64() / scale)
    }

    /// Whether this request gets `fault`, at `rate` (0..1). Spread mode carries the fraction
    /// over between requests, so n requests get floor(n x rate) or one more such faults.
    pub(crate) fn fire(&self, fault: Fault, rate: f64) -> bool {
        let rate = rate.clamp(0.0, 1.0);
        if rate <= 0.0 || rate.is_nan() {
            return false;
        }
        if self.get().random_faults {
            return rand::rng().random_bool(rate);
        }
        let Ok(mut carried) = self.1.lock() else {
            return false;
        };
        let slot = &mut carried[fault as usize];
        *slot += rate;
        if *slot >= 1.0 - 1e-9 {
            *slot -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One request the emulator answered, for tests that count polls, check back-off, or check the
/// headers a client identifies itself and its run with (no secret-bearing header is kept).
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    /// When the request arrived (real time).
    pub at: SystemTime,
    /// HTTP method.
    pub method: String,
    /// Path as sent (no query).
    pub path: String,
    /// Raw query string ("" when none).
    pub query: String,
    /// Status we answered (0 when the connection was dropped on purpose).
    pub status: u16,
    /// Object id of the caller when a token identified one.
    pub principal: Option<String>,
    /// `Retry-After` seconds we sent, if any.
    pub retry_after: Option<u64>,
    /// The client's `User-Agent`, as sent.
    pub user_agent: Option<String>,
    /// The `x-ms-correlation-request-id` the client sent (not the one ARM makes up without it).
    pub correlation_request_id: Option<String>,
    /// The `x-ms-client-request-id` the client sent.
    pub client_request_id: Option<String>,
}

impl RequestRecord {
    /// A request as it arrives, before it is answered (status 0). Of its headers only those
    /// that name the client and its run are kept: never `Authorization`, `x-identity-header` or
    /// anything else that can carry a secret, since tests print and serve this log.
    pub(crate) fn arriving(
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> RequestRecord {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(256).collect::<String>())
        };
        RequestRecord {
            at: SystemTime::now(),
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or("").to_string(),
            status: 0,
            principal: None,
            retry_after: None,
            user_agent: header("user-agent"),
            correlation_request_id: header("x-ms-correlation-request-id"),
            client_request_id: header("x-ms-client-request-id"),
        }
    }
}

/// The request log shared by all servers of one emulator.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestLog(Arc<Mutex<Vec<RequestRecord>>>);

impl RequestLog {
    pub(crate) fn push(&self, record: RequestRecord) {
        if let Ok(mut v) = self.0.lock() {
            v.push(record);
        }
    }
    pub(crate) fn all(&self) -> Vec<RequestRecord> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
    pub(crate) fn clear(&self) {
        if let Ok(mut v) = self.0.lock() {
            v.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_faults_hit_their_share_exactly() {
        let knobs = Knobs::new(KnobValues::default());
        let hits = (0..100)
            .filter(|_| knobs.fire(Fault::ArmThrottle, 0.2))
            .count();
        assert_eq!(hits, 20);
        let every = (0..10).filter(|_| knobs.fire(Fault::Drop, 1.0)).count();
        assert_eq!(every, 10);
        assert!(!(0..10).any(|_| knobs.fire(Fault::SlowBody, 0.0)));
        // Each kind keeps its own count: a throttle does not use up a server error.
        let third = (0..9)
            .filter(|_| knobs.fire(Fault::ArmServerError, 1.0 / 3.0))
            .count();
        assert_eq!(third, 3);
    }

    #[test]
    fn random_faults_roll_independently() {
        let knobs = Knobs::new(KnobValues {
            random_faults: true,
            ..KnobValues::default()
        });
        let hits = (0..10_000)
            .filter(|_| knobs.fire(Fault::ArmThrottle, 0.5))
            .count();
        assert!((4_000..6_000).contains(&hits), "{hits}");
    }
}
