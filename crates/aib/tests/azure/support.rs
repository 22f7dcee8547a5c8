//! Starting an emulator for one test and pointing `aib::azure` at it through an [`Env`] map
//! (never the process environment), with retry backoff cut to milliseconds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aib::azure::arm::{ArmError, ArmOptions, PollOptions, RetryOptions};
use aib::azure::auth::AuthOptions;
use aib::azure::cloud::CloudOptions;
use aib::azure::env::{self, Env};
use aib::azure::{Azure, AzureSettings, Observer, connect};
use aib_emulator::{Emulator, EmulatorConfig, RequestRecord};

/// An ARM/Entra-only emulator (no Azurite: starts in milliseconds).
pub async fn emulator() -> Emulator {
    emulator_with(EmulatorConfig::default()).await
}

/// An emulator with a custom config (Azurite always off here).
pub async fn emulator_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(EmulatorConfig {
        azurite: false,
        ..config
    })
    .await
    .expect("the emulator starts")
}

/// The environment a CI job would have for the emulator's service principal with a secret,
/// plus the emulator's CA and endpoints.
pub fn secret_env(emu: &Emulator) -> Env {
    let mut e = base_env(emu);
    e.set(env::AZURE_CLIENT_ID, emu.client_id());
    e.set(env::AZURE_TENANT_ID, emu.tenant_id());
    e.set(env::AZURE_CLIENT_SECRET, emu.client_secret());
    e
}

/// Only the CA, the endpoints and the subscription: no credential.
pub fn base_env(emu: &Emulator) -> Env {
    let url = emu.url();
    Env::from_pairs([
        (env::SSL_CERT_FILE, emu.ca_file().display().to_string()),
        (env::AIB_ARM_ENDPOINT, url.to_string()),
        (env::AIB_AUTHORITY_HOST, url.to_string()),
        (env::AZURE_SUBSCRIPTION_ID, emu.subscription_id().to_owned()),
        (env::PATH, "/nonexistent".to_owned()),
    ])
}

/// Settings resolved exactly as a binary would, with test-speed backoff (never shorter than
/// the server's Retry-After, which the client always honours).
pub fn settings(env: &Env) -> AzureSettings {
    let mut s = AzureSettings::resolve(&CloudOptions::default(), &AuthOptions::default(), env)
        .expect("settings resolve");
    s.arm = fast_arm_options();
    s
}

/// Backoff in milliseconds, a generous deadline, polls every 50 ms unless told otherwise.
pub fn fast_arm_options() -> ArmOptions {
    ArmOptions {
        retry: RetryOptions {
            max_attempts: 30,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            deadline: Duration::from_secs(120),
        },
        poll: PollOptions {
            default_interval: Duration::from_millis(50),
            max_interval: Duration::from_secs(5),
            timeout: Some(Duration::from_secs(300)),
        },
        ..ArmOptions::default()
    }
}

/// Records what the Azure layer registers and reports, for assertions.
#[derive(Default)]
pub struct Recorder {
    pub secrets: Mutex<Vec<String>>,
    pub progress: Mutex<Vec<(String, String, Duration)>>,
}

impl Observer for Recorder {
    fn register_secret(&self, value: &str) {
        self.secrets.lock().unwrap().push(value.to_owned());
    }
    fn operation_progress(&self, resource: &str, state: &str, elapsed: Duration) {
        self.progress
            .lock()
            .unwrap()
            .push((resource.to_owned(), state.to_owned(), elapsed));
    }
}

impl Recorder {
    /// The operation states reported for `resource`, in order.
    pub fn states_of(&self, resource: &str) -> Vec<String> {
        self.progress
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.0 == resource)
            .map(|p| p.1.clone())
            .collect()
    }
}

/// Connects with a recorder as observer.
pub fn connect_recorded(settings: &AzureSettings) -> (Azure, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let azure = connect(settings, recorder.clone()).expect("connect");
    (azure, recorder)
}

/// `/subscriptions/{sub}` of the emulator.
pub fn sub(emu: &Emulator) -> String {
    format!("/subscriptions/{}", emu.subscription_id())
}

/// Records of requests to paths ending with `suffix` (case-insensitive).
pub fn requests_to(emu: &Emulator, suffix: &str) -> Vec<RequestRecord> {
    let suffix = suffix.to_ascii_lowercase();
    emu.requests()
        .into_iter()
        .filter(|r| r.path.to_ascii_lowercase().ends_with(&suffix))
        .collect()
}

/// Creates a resource group through the client (no faults should be on).
pub async fn create_group(azure: &Azure, emu: &Emulator, name: &str) {
    let path = format!("{}/resourcegroups/{name}", sub(emu));
    let _: serde_json::Value = azure
        .arm
        .put(&path, &serde_json::json!({"location": "westeurope"}))
        .await
        .expect("resource group created");
}

/// An emulator with resource group `group` made through a recording client: where most ARM
/// tests start.
pub async fn emulator_with_group(group: &str) -> (Emulator, Azure, Arc<Recorder>) {
    let emu = emulator().await;
    let (azure, recorder) = connect_recorded(&settings(&secret_env(&emu)));
    create_group(&azure, &emu, group).await;
    (emu, azure, recorder)
}

/// The id of gallery `name` in resource group `group` of the emulator.
pub fn gallery_id(emu: &Emulator, group: &str, name: &str) -> String {
    format!(
        "{}/resourceGroups/{group}/providers/Microsoft.Compute/galleries/{name}",
        sub(emu)
    )
}

/// Creates the gallery `id` in westeurope: the long-running PUT the operation tests follow.
pub async fn put_gallery(azure: &Azure, id: &str) -> Result<serde_json::Value, ArmError> {
    azure
        .arm
        .put(
            id,
            &serde_json::json!({"location": "westeurope", "properties": {}}),
        )
        .await
}

/// Whether ARM answers 404 for `path`: what a finished delete, or a refused create, leaves.
pub async fn is_gone(azure: &Azure, path: &str) -> bool {
    azure
        .arm
        .get_optional::<serde_json::Value>(path)
        .await
        .expect("the read is answered")
        .is_none()
}
