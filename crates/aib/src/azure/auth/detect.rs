//! Choosing the credential kind from `--auth` and the environment map: pure, no I/O except
//! looking `az` up on the given `PATH`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::AuthError;
use crate::azure::env::{self, Env};
use crate::secret::Secret;

/// The kinds of login aib supports, in detection order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthKind {
    /// Service principal with a client secret.
    Secret,
    /// GitHub Actions OIDC, a fresh id token for every exchange.
    GithubOidc,
    /// Azure Pipelines workload identity federation (service connection).
    AdoOidc,
    /// A federated token from a file (or `AzureCLI@2`'s `idToken`).
    FederatedFile,
    /// Managed identity: `IDENTITY_ENDPOINT` or IMDS on an Azure VM.
    ManagedIdentity,
    /// Azure CLI's logged-in account.
    AzureCli,
}

impl AuthKind {
    /// All kinds, in detection order.
    pub const ALL: [AuthKind; 6] = [
        AuthKind::Secret,
        AuthKind::GithubOidc,
        AuthKind::AdoOidc,
        AuthKind::FederatedFile,
        AuthKind::ManagedIdentity,
        AuthKind::AzureCli,
    ];

    /// The `--auth` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Secret => "secret",
            AuthKind::GithubOidc => "github-oidc",
            AuthKind::AdoOidc => "ado-oidc",
            AuthKind::FederatedFile => "federated-file",
            AuthKind::ManagedIdentity => "managed-identity",
            AuthKind::AzureCli => "azure-cli",
        }
    }
}

impl fmt::Display for AuthKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthKind {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        AuthKind::ALL
            .into_iter()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| AuthError::UnknownKind(s.to_owned()))
    }
}

/// What the flags say; `None` falls back to the environment.
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    /// `--auth`.
    pub auth: Option<String>,
    /// `--client-id` (also picks a user-assigned managed identity).
    pub client_id: Option<String>,
    /// `--tenant-id`.
    pub tenant_id: Option<String>,
    /// `--subscription-id`.
    pub subscription_id: Option<String>,
}

/// A kind that was not used, why, and what would make it usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The kind.
    pub kind: AuthKind,
    /// What was missing.
    pub why: String,
    /// What to set.
    pub set: String,
}

/// The chosen credential with everything needed to build it. `Debug` never shows a secret.
#[derive(Debug, Clone)]
pub struct AuthPlan {
    /// The kind chosen.
    pub kind: AuthKind,
    /// Tenant, when known before the first token (Azure CLI and managed identity may not say).
    pub tenant_id: Option<String>,
    /// Client id, when known.
    pub client_id: Option<String>,
    /// Subscription the steps work in, when set.
    pub subscription_id: Option<String>,
    /// Whether the kind was detected or chosen with `--auth`.
    pub detected: bool,
    pub(crate) source: Source,
}

/// The public part of a plan: what `aib whoami` shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The kind chosen.
    pub kind: AuthKind,
    /// Whether it was detected (`false`: chosen with `--auth`/`AIB_AUTH`).
    pub detected: bool,
    /// Tenant id, when known.
    pub tenant_id: Option<String>,
    /// Client id, when known.
    pub client_id: Option<String>,
    /// Subscription id, when set.
    pub subscription_id: Option<String>,
}

impl serde::Serialize for AuthKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Kind-specific inputs.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Secret {
        secret: Secret,
    },
    GithubOidc {
        request_url: String,
        request_token: Secret,
    },
    AdoOidc {
        request_uri: String,
        access_token: Secret,
        service_connection_id: String,
    },
    FederatedFile {
        file: Option<PathBuf>,
        token: Option<Secret>,
    },
    ManagedIdentity {
        /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`; `None` means IMDS.
        endpoint: Option<(String, Secret)>,
    },
    AzureCli {
        az: PathBuf,
        path: String,
    },
}

struct Ids<'a> {
    client: Option<&'a str>,
    tenant: Option<&'a str>,
}

impl AuthPlan {
    /// Picks the credential: `--auth`/`AIB_AUTH` if given, else the first kind (in
    /// [`AuthKind::ALL`] order) whose inputs are all present.
    pub fn detect(options: &AuthOptions, env: &Env) -> Result<AuthPlan, AuthError> {
        let requested = match options.auth.as_deref().or_else(|| env.get(env::AIB_AUTH)) {
            Some(s) => Some(s.parse::<AuthKind>()?),
            None => None,
        };
        let ids = Ids {
            client: options.client_id.as_deref().or_else(|| {
                env.first(&[
                    env::AZURE_CLIENT_ID,
                    env::SERVICE_PRINCIPAL_ID,
                    env::AZURESUBSCRIPTION_CLIENT_ID,
                ])
            }),
            tenant: options.tenant_id.as_deref().or_else(|| {
                env.first(&[
                    env::AZURE_TENANT_ID,
                    env::TENANT_ID,
                    env::AZURESUBSCRIPTION_TENANT_ID,
                ])
            }),
        };
        let subscription = options
            .subscription_id
            .clone()
            .or_else(|| env.get(env::AZURE_SUBSCRIPTION_ID).map(str::to_owned));
        let plan = |kind, source, detected| AuthPlan {
            kind,
            tenant_id: ids.tenant.map(str::to_owned),
            client_id: ids.client.map(str::to_owned),
            subscription_id: subscription.clone(),
            detected,
            source,
        };
        if let Some(kind) = requested {
            return probe(kind, &ids, env, true)
                .map(|source| plan(kind, source, false))
                .map_err(AuthError::NotConfigured);
        }
        let mut tried = Vec::new();
        for kind in AuthKind::ALL {
            match probe(kind, &ids, env, false) {
                Ok(source) => return Ok(plan(kind, source, true)),
                Err(skipped) => tried.push(skipped),
            }
        }
        Err(AuthError::NothingFits(tried))
    }

    /// The public ids of the plan.
    pub fn identity(&self) -> Identity {
        Identity {
            kind: self.kind,
            detected: self.detected,
            tenant_id: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            subscription_id: self.subscription_id.clone(),
        }
    }

    /// Where the credential comes from, in words without secrets (for `aib whoami`).
    pub fn source_description(&self) -> String {
        match &self.source {
            Source::Secret { .. } => "client secret from the environment".to_owned(),
            Source::GithubOidc { .. } => {
                "GitHub Actions OIDC (a fresh id token per exchange)".to_owned()
            }
            Source::AdoOidc {
                service_connection_id,
                ..
            } => format!("Azure Pipelines OIDC, service connection {service_connection_id}"),
            Source::FederatedFile { file: Some(f), .. } => {
                format!("federated token file {}", f.display())
            }
            Source::FederatedFile { file: None, .. } => "federated id token (idToken)".to_owned(),
            Source::ManagedIdentity {
                endpoint: Some((e, _)),
            } => format!("managed identity endpoint {e}"),
            Source::ManagedIdentity { endpoint: None } => {
                "managed identity through IMDS".to_owned()
            }
            Source::AzureCli { az, .. } => format!("Azure CLI at {}", az.display()),
        }
    }

    /// Every secret value the plan holds, for the reporter's mask.
    pub fn secrets(&self) -> Vec<&Secret> {
        match &self.source {
            Source::Secret { secret } => vec![secret],
            Source::GithubOidc { request_token, .. } => vec![request_token],
            Source::AdoOidc { access_token, .. } => vec![access_token],
            Source::FederatedFile { token, .. } => token.iter().collect(),
            Source::ManagedIdentity { endpoint } => endpoint.iter().map(|(_, h)| h).collect(),
            Source::AzureCli { .. } => Vec::new(),
        }
    }
}

const SET_IDS: &str = "AZURE_CLIENT_ID, AZURE_TENANT_ID";

fn skip(kind: AuthKind, why: impl Into<String>, set: impl Into<String>) -> Skipped {
    Skipped {
        kind,
        why: why.into(),
        set: set.into(),
    }
}

/// The missing names among `(name, present)`, as "A, B and C are not set".
fn missing(items: &[(&str, bool)]) -> Option<String> {
    let names: Vec<&str> = items
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| *n)
        .collect();
    match names.as_slice() {
        [] => None,
        [one] => Some(format!("{one} is not set")),
        [init @ .., last] => Some(format!("{} and {last} are not set", init.join(", "))),
    }
}

fn probe(kind: AuthKind, ids: &Ids<'_>, env: &Env, explicit: bool) -> Result<Source, Skipped> {
    let id_items = [
        ("AZURE_CLIENT_ID", ids.client.is_some()),
        ("AZURE_TENANT_ID", ids.tenant.is_some()),
    ];
    match kind {
        AuthKind::Secret => {
            let secret = env.first(&[env::AZURE_CLIENT_SECRET, env::SERVICE_PRINCIPAL_KEY]);
            let mut items = id_items.to_vec();
            items.push(("AZURE_CLIENT_SECRET", secret.is_some()));
            match (missing(&items), secret) {
                (None, Some(secret)) => Ok(Source::Secret {
                    secret: Secret::new(secret),
                }),
                (why, _) => Err(skip(
                    kind,
                    why.unwrap_or_default(),
                    format!(
                        "set {SET_IDS} and AZURE_CLIENT_SECRET (or AzureCLI@2's servicePrincipalId, tenantId, servicePrincipalKey with addSpnToEnvironment)"
                    ),
                )),
            }
        }
        AuthKind::GithubOidc => {
            let url = env.get(env::ACTIONS_ID_TOKEN_REQUEST_URL);
            let token = env.get(env::ACTIONS_ID_TOKEN_REQUEST_TOKEN);
            let set = format!(
                "in GitHub Actions give the job `permissions: id-token: write` and set {SET_IDS} (a federated credential on the app)"
            );
            if url.is_none() {
                return Err(skip(
                    kind,
                    "ACTIONS_ID_TOKEN_REQUEST_URL is not set (not GitHub Actions, or no id-token permission)",
                    set,
                ));
            }
            let mut items = id_items.to_vec();
            items.push(("ACTIONS_ID_TOKEN_REQUEST_TOKEN", token.is_some()));
            match (missing(&items), url, token) {
                (None, Some(url), Some(token)) => Ok(Source::GithubOidc {
                    request_url: url.to_owned(),
                    request_token: Secret::new(token),
                }),
                (why, _, _) => Err(skip(kind, why.unwrap_or_default(), set)),
            }
        }
        AuthKind::AdoOidc => {
            let uri = env.get(env::SYSTEM_OIDCREQUESTURI);
            let token = env.get(env::SYSTEM_ACCESSTOKEN);
            let connection = env.first(&[
                env::AIB_SERVICE_CONNECTION_ID,
                env::AZURESUBSCRIPTION_SERVICE_CONNECTION_ID,
            ]);
            let set = format!(
                "in Azure Pipelines map SYSTEM_ACCESSTOKEN: $(System.AccessToken) and set AIB_SERVICE_CONNECTION_ID, {SET_IDS} (a workload identity service connection)"
            );
            if uri.is_none() {
                return Err(skip(
                    kind,
                    "SYSTEM_OIDCREQUESTURI is not set (not Azure Pipelines)",
                    set,
                ));
            }
            let mut items = id_items.to_vec();
            items.push(("SYSTEM_ACCESSTOKEN", token.is_some()));
            items.push(("AIB_SERVICE_CONNECTION_ID", connection.is_some()));
            match (missing(&items), uri, token, connection) {
                (None, Some(uri), Some(token), Some(connection)) => Ok(Source::AdoOidc {
                    request_uri: uri.to_owned(),
                    access_token: Secret::new(token),
                    service_connection_id: connection.to_owned(),
                }),
                (why, ..) => Err(skip(kind, why.unwrap_or_default(), set)),
            }
        }
        AuthKind::FederatedFile => {
            let file = env.get(env::AZURE_FEDERATED_TOKEN_FILE);
            let token = env.get(env::ID_TOKEN);
            let set = format!(
                "set AZURE_FEDERATED_TOKEN_FILE (or AzureCLI@2's idToken with addSpnToEnvironment), {SET_IDS}"
            );
            if file.is_none() && token.is_none() {
                return Err(skip(
                    kind,
                    "AZURE_FEDERATED_TOKEN_FILE (or idToken) is not set",
                    set,
                ));
            }
            match missing(&id_items) {
                None => Ok(Source::FederatedFile {
                    file: file.map(PathBuf::from),
                    token: if file.is_none() {
                        token.map(Secret::new)
                    } else {
                        None
                    },
                }),
                Some(why) => Err(skip(kind, why, set)),
            }
        }
        AuthKind::ManagedIdentity => {
            let endpoint = env.get(env::IDENTITY_ENDPOINT);
            let header = env.get(env::IDENTITY_HEADER);
            match (endpoint, header) {
                (Some(endpoint), Some(header)) => Ok(Source::ManagedIdentity {
                    endpoint: Some((endpoint.to_owned(), Secret::new(header))),
                }),
                (Some(_), None) => Err(skip(
                    kind,
                    "IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not",
                    "set IDENTITY_HEADER too",
                )),
                // IMDS cannot be detected without a network probe: only when asked for.
                (None, _) if explicit => Ok(Source::ManagedIdentity { endpoint: None }),
                (None, _) => Err(skip(
                    kind,
                    "IDENTITY_ENDPOINT is not set (IMDS on an Azure VM is used only when asked for)",
                    "on an Azure VM pass --auth managed-identity (and AZURE_CLIENT_ID for a user-assigned identity)",
                )),
            }
        }
        AuthKind::AzureCli => {
            let path = env.get(env::PATH).unwrap_or_default();
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            match which::which_in("az", Some(path), cwd) {
                Ok(az) => Ok(Source::AzureCli {
                    az,
                    path: path.to_owned(),
                }),
                Err(_) => Err(skip(
                    kind,
                    "`az` was not found on PATH",
                    "install Azure CLI and run `az login` (or azure/login / AzureCLI@2 in CI)",
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    const IDS: [(&str, &str); 2] = [(env::AZURE_CLIENT_ID, "cid"), (env::AZURE_TENANT_ID, "tid")];

    /// With inputs for several kinds, detection takes the first in the documented order.
    #[test]
    fn detection_follows_the_documented_order() {
        let mut pairs = IDS.to_vec();
        pairs.extend([
            (env::AZURE_FEDERATED_TOKEN_FILE, "/tmp/token"),
            (env::ACTIONS_ID_TOKEN_REQUEST_URL, "https://gh/token?x=1"),
            (env::ACTIONS_ID_TOKEN_REQUEST_TOKEN, "ghs"),
            (env::IDENTITY_ENDPOINT, "https://mi"),
            (env::IDENTITY_HEADER, "h"),
        ]);
        let plan = AuthPlan::detect(&AuthOptions::default(), &env(&pairs)).unwrap();
        assert_eq!(plan.kind, AuthKind::GithubOidc);
        assert!(plan.detected);
        pairs.push((env::AZURE_CLIENT_SECRET, "s3cret"));
        let plan = AuthPlan::detect(&AuthOptions::default(), &env(&pairs)).unwrap();
        assert_eq!(plan.kind, AuthKind::Secret);
        let only_mi = env(&[
            (env::IDENTITY_ENDPOINT, "https://mi"),
            (env::IDENTITY_HEADER, "h"),
        ]);
        let plan = AuthPlan::detect(&AuthOptions::default(), &only_mi).unwrap();
        assert_eq!(plan.kind, AuthKind::ManagedIdentity);
    }

    /// AzureCLI@2's addSpnToEnvironment names are accepted for the secret kind.
    #[test]
    fn azure_cli_task_variables_are_accepted() {
        let e = env(&[
            (env::SERVICE_PRINCIPAL_ID, "spn"),
            (env::TENANT_ID, "tenant"),
            (env::SERVICE_PRINCIPAL_KEY, "key"),
        ]);
        let plan = AuthPlan::detect(&AuthOptions::default(), &e).unwrap();
        assert_eq!(plan.kind, AuthKind::Secret);
        assert_eq!(plan.client_id.as_deref(), Some("spn"));
        assert_eq!(plan.tenant_id.as_deref(), Some("tenant"));
        let e = env(&[
            (env::SERVICE_PRINCIPAL_ID, "spn"),
            (env::TENANT_ID, "tenant"),
            (env::ID_TOKEN, "eyJ.fed.token"),
        ]);
        let plan = AuthPlan::detect(&AuthOptions::default(), &e).unwrap();
        assert_eq!(plan.kind, AuthKind::FederatedFile);
        assert!(!format!("{plan:?}").contains("eyJ.fed.token"));
    }

    /// With nothing configured, the error lists every kind in order with why and what to set.
    #[test]
    fn nothing_fits_lists_every_kind_with_a_reason() {
        let err = AuthPlan::detect(
            &AuthOptions::default(),
            &env(&[(env::PATH, "/nonexistent")]),
        )
        .unwrap_err();
        let AuthError::NothingFits(tried) = &err else {
            panic!("unexpected {err:?}")
        };
        let kinds: Vec<AuthKind> = tried.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, AuthKind::ALL.to_vec());
        let text = err.to_string();
        for kind in AuthKind::ALL {
            assert!(text.contains(&format!("  - {kind}: ")), "{text}");
        }
        assert!(text.contains("AZURE_CLIENT_SECRET"), "{text}");
        assert!(text.contains("`az` was not found"), "{text}");
        assert_eq!(err.exit_status(), crate::exit::ExitStatus::BadInput);
    }

    /// An explicit --auth whose inputs are missing says which, and never falls back to another.
    #[test]
    fn explicit_kind_with_missing_inputs_names_them() {
        let opts = AuthOptions {
            auth: Some("secret".into()),
            ..Default::default()
        };
        let err = AuthPlan::detect(&opts, &env(&[(env::AZURE_CLIENT_ID, "c")])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("AZURE_TENANT_ID and AZURE_CLIENT_SECRET are not set"),
            "{text}"
        );
        let bad = AuthOptions {
            auth: Some("password".into()),
            ..Default::default()
        };
        assert!(matches!(
            AuthPlan::detect(&bad, &Env::default()),
            Err(AuthError::UnknownKind(_))
        ));
    }

    /// AIB_AUTH picks the kind like --auth; managed identity without an endpoint means IMDS.
    #[test]
    fn aib_auth_selects_managed_identity_via_imds() {
        let e = env(&[
            (env::AIB_AUTH, "Managed-Identity"),
            (env::AZURE_CLIENT_ID, "uami"),
        ]);
        let plan = AuthPlan::detect(&AuthOptions::default(), &e).unwrap();
        assert_eq!(plan.kind, AuthKind::ManagedIdentity);
        assert!(!plan.detected);
        assert!(matches!(
            plan.source,
            Source::ManagedIdentity { endpoint: None }
        ));
    }

    /// `az` is found on the PATH given in the map, not the process PATH.
    #[test]
    fn azure_cli_is_found_on_the_given_path() {
        let dir = tempfile::tempdir().unwrap();
        let az = dir.path().join("az");
        std::fs::write(&az, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let e = env(&[(env::PATH, dir.path().to_str().unwrap())]);
        let plan = AuthPlan::detect(&AuthOptions::default(), &e).unwrap();
        assert_eq!(plan.kind, AuthKind::AzureCli);
    }
}
