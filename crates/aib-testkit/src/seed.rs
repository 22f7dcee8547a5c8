//! The image's infrastructure as deploy-infra (and upload-scripts) would leave it, created
//! through ARM on the emulator so that the step under test finds what it finds in Azure.
//!
//! Tests of the later steps do not run deploy-infra: seeding only what a step reads keeps
//! each test about its own step, and fast.

use aib::azure::Azure;
use aib::azure::blob::DATA_CONTRIBUTOR_ROLE_ID;
use aib::azure::storage::{self, BlobContainer, Sku, StorageAccount, StorageAccountId};
use aib_emulator::Emulator;
use serde_json::{Value, json};

/// Where everything is created: one region for all, as the test parameter files say.
pub const LOCATION: &str = "westeurope";

/// A resource group on the emulator, and what can be created in it.
pub struct Seed<'a> {
    emu: &'a Emulator,
    azure: &'a Azure,
    /// The subscription.
    pub sub: String,
    /// The group's name.
    pub name: String,
    /// The group's resource id.
    pub id: String,
}

/// A user-assigned identity as created: its resource id, and the principal roles are granted to.
pub struct Identity {
    /// Resource id.
    pub id: String,
    /// Principal (object) id.
    pub principal: String,
}

impl<'a> Seed<'a> {
    /// Creates resource group `name` in the emulator's subscription.
    pub async fn group(emu: &'a Emulator, azure: &'a Azure, name: &str) -> Seed<'a> {
        let seed = Seed::existing(emu, azure, name);
        seed.put(&seed.id, json!({"location": LOCATION}), "resource group")
            .await;
        seed
    }

    /// The group `name` a test created before (no request): to add to it later.
    pub fn existing(emu: &'a Emulator, azure: &'a Azure, name: &str) -> Seed<'a> {
        let sub = emu.subscription_id().to_owned();
        Seed {
            emu,
            azure,
            id: format!("/subscriptions/{sub}/resourceGroups/{name}"),
            sub,
            name: name.to_owned(),
        }
    }

    /// Creates user-assigned identity `name` and grants its principal each role of `roles`
    /// (definition GUIDs) on this group, effective at once.
    pub async fn identity(&self, name: &str, roles: &[&str]) -> Identity {
        let id = aib::azure::identity::identity_id(&self.sub, &self.name, name);
        let created = self
            .put(&id, json!({"location": LOCATION}), "identity")
            .await;
        let principal = created["properties"]["principalId"]
            .as_str()
            .expect("principalId")
            .to_owned();
        for role in roles {
            self.emu.grant(&principal, role, &self.id);
        }
        Identity { id, principal }
    }

    /// Creates gallery `gallery` and its image `definition` as the test parameter files
    /// describe it (Linux, generalized, gen2, publisher `aib`, offer `agent`, SKU `u2204`);
    /// returns the definition's resource id.
    pub async fn gallery_image(&self, gallery: &str, definition: &str) -> String {
        let gallery = aib::azure::gallery::gallery_id(&self.sub, &self.name, gallery);
        self.put(&gallery, json!({"location": LOCATION}), "gallery")
            .await;
        let definition = aib::azure::gallery::image_definition_id(&gallery, definition);
        let body = json!({"location": LOCATION, "properties": {
            "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
            "identifier": {"publisher": "aib", "offer": "agent", "sku": "u2204"}}});
        self.put(&definition, body, "image definition").await;
        definition
    }

    /// PUTs `body` at `id` through ARM (the resource as ARM answers); a refusal fails the test
    /// naming `what`.
    async fn put(&self, id: &str, body: Value, what: &str) -> Value {
        self.azure
            .arm
            .put(id, &body)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Creates storage account `account` (StorageV2, LRS) with `container`, and grants the
    /// emulator's principal Storage Blob Data Contributor on the account: Owner covers ARM
    /// only, and writing blobs needs a data role, as in Azure.
    pub async fn storage(&self, account: &str, container: &str) -> StorageAccountId {
        let id = StorageAccountId {
            subscription_id: self.sub.clone(),
            resource_group: self.name.clone(),
            name: account.into(),
        };
        storage::put_account(
            &self.azure.arm,
            &id,
            &StorageAccount {
                location: LOCATION.into(),
                sku: Some(Sku {
                    name: "Standard_LRS".into(),
                    tier: None,
                }),
                kind: Some("StorageV2".into()),
                ..Default::default()
            },
        )
        .await
        .expect("storage account");
        storage::put_container(&self.azure.arm, &id, container, &BlobContainer::default())
            .await
            .expect("container");
        self.emu
            .grant(self.emu.object_id(), DATA_CONTRIBUTOR_ROLE_ID, &id.path());
        id
    }
}
