"""Fidelity: Microsoft's Python SDKs run a full scenario against aib-emulator.

Client-secret login with the authority host set to the emulator, resource group, user-assigned
identity, role assignment through the PrincipalNotFound window, storage account (their LRO
poller must finish), container, blob upload/download through the emulator's blob front with a
bearer token (403 first, without a data role), filtered resource listing, group deletion.
The same scenario runs clean and with 20 % injected throttling.
"""

import time
import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.storage import StorageManagementClient
from azure.storage.blob import BlobServiceClient, LinearRetry

from conftest import children_of, start_emulator, stop_emulator

MGMT_SCOPE = "https://management.azure.com/.default"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def credential(emu):
    # A custom authority host is not in MSAL's list of known hosts: instance discovery (which
    # would go to login.microsoftonline.com) must be off, as for Azure Stack.
    return ClientSecretCredential(
        emu.tenant_id,
        emu.client_id,
        emu.client_secret,
        authority=emu.url,
        disable_instance_discovery=True,
    )


def arm_kwargs(emu):
    return {
        "base_url": emu.url,
        "credential_scopes": [MGMT_SCOPE],
        # Enough status retries that 20 % throttling cannot exhaust them (default is 3).
        "retry_status": 10,
        "retry_total": 15,
    }


def role_id(emu, guid):
    return f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def run_scenario(emu, wait_until):
    cred = credential(emu)
    sub = emu.subscription_id
    resources = ResourceManagementClient(cred, sub, **arm_kwargs(emu))
    msi = ManagedServiceIdentityClient(cred, sub, **arm_kwargs(emu))
    authz = AuthorizationManagementClient(cred, sub, **arm_kwargs(emu))
    storage = StorageManagementClient(cred, sub, **arm_kwargs(emu))

    suffix = uuid.uuid4().hex[:8]
    rg = f"rg-fidelity-{suffix}"
    group = resources.resource_groups.create_or_update(rg, {"location": "westeurope", "tags": {"suite": "fidelity"}})
    assert group.properties.provisioning_state == "Succeeded"
    assert resources.resource_groups.check_existence(rg)

    identity = msi.user_assigned_identities.create_or_update(rg, f"id-{suffix}", {"location": "westeurope"})
    assert identity.principal_id and identity.client_id

    rg_scope = f"/subscriptions/{sub}/resourceGroups/{rg}"
    # Right after creation the principal is not replicated yet: PrincipalNotFound, then success.
    params = RoleAssignmentCreateParameters(role_definition_id=role_id(emu, READER), principal_id=identity.principal_id)
    with pytest.raises(HttpResponseError) as err:
        authz.role_assignments.create(rg_scope, str(uuid.uuid4()), params)
    assert err.value.error.code == "PrincipalNotFound"
    assert " does not exist in the directory " in err.value.error.message

    def assign():
        try:
            return authz.role_assignments.create(rg_scope, str(uuid.uuid4()), params)
        except HttpResponseError as e:
            if e.error is not None and e.error.code == "PrincipalNotFound":
                return None
            raise

    assignment = wait_until(assign, timeout=20)
    assert assignment.principal_id == identity.principal_id

    account_name = f"aibfid{suffix}"
    availability = storage.storage_accounts.check_name_availability({"name": account_name, "type": "Microsoft.Storage/storageAccounts"})
    assert availability.name_available
    poller = storage.storage_accounts.begin_create(
        rg,
        account_name,
        {
            "location": "westeurope",
            "sku": {"name": "Standard_LRS"},
            "kind": "StorageV2",
            "properties": {
                "allowBlobPublicAccess": False,
                "minimumTlsVersion": "TLS1_2",
                "allowSharedKeyAccess": False,
            },
        },
        polling_interval=1,
    )
    account = poller.result(timeout=60)
    assert account.provisioning_state == "Succeeded"
    assert account.allow_shared_key_access is False
    blob_endpoint = account.primary_endpoints.blob
    assert blob_endpoint.startswith(emu.blob_url)

    storage.blob_containers.create(rg, account_name, "scripts", {})

    blobs = BlobServiceClient(
        blob_endpoint,
        credential=cred,
        retry_policy=LinearRetry(backoff=0.5, random_jitter_range=0, retry_total=10),
    )
    blob = blobs.get_blob_client("scripts", "dir/install.sh")
    # Owner of the subscription holds no data role: Storage says AuthorizationPermissionMismatch.
    with pytest.raises(HttpResponseError) as err:
        blob.upload_blob(b"echo hi\n", overwrite=True)
    assert err.value.status_code == 403
    assert err.value.error_code == "AuthorizationPermissionMismatch"

    account_scope = f"{rg_scope}/providers/Microsoft.Storage/storageAccounts/{account_name}"
    authz.role_assignments.create(
        account_scope,
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(
            role_definition_id=role_id(emu, BLOB_CONTRIBUTOR),
            principal_id=emu.object_id,
            principal_type="ServicePrincipal",
        ),
    )

    def upload():
        try:
            blob.upload_blob(b"echo hi\n", overwrite=True)
            return True
        except HttpResponseError as e:
            if e.status_code == 403:  # the assignment has not propagated yet
                return False
            raise

    wait_until(upload, timeout=20)
    assert blob.download_blob().readall() == b"echo hi\n"
    names = [b.name for b in blobs.get_container_client("scripts").list_blobs(name_starts_with="dir/")]
    assert names == ["dir/install.sh"]

    def listed():
        found = list(
            resources.resources.list_by_resource_group(
                rg,
                filter="resourceType eq 'Microsoft.Storage/storageAccounts'",
                expand="createdTime,provisioningState",
            )
        )
        return found if len(found) == 1 else None

    items = wait_until(listed, timeout=20)
    assert items[0].name == account_name
    assert items[0].created_time is not None
    # Paged list (page size 2) over everything in the group: identity + account.
    everything = list(resources.resources.list_by_resource_group(rg))
    assert {r.type for r in everything} == {
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.Storage/storageAccounts",
    }

    resources.resource_groups.begin_delete(rg, polling_interval=1).result(timeout=60)
    assert not resources.resource_groups.check_existence(rg)


def test_scenario_clean(emulator, wait_until):
    """The whole scenario completes against the emulator with Microsoft's SDKs, no faults."""
    emulator.set_knobs(throttle_rate=0.0, server_error_rate=0.0)
    run_scenario(emulator, wait_until)


def test_scenario_with_20_percent_throttling(emulator, wait_until):
    """With 20 % random 429s (503 ServerBusy on blobs) the SDKs back off as told and finish."""
    emulator.clear_requests()
    emulator.set_knobs(throttle_rate=0.2, throttle_retry_after=1)
    try:
        run_scenario(emulator, wait_until)
    finally:
        emulator.set_knobs(throttle_rate=0.0)
    log = emulator.requests()
    throttled = [r for r in log if r["status"] == 429]
    assert throttled, "the knob injected no 429 at all"

    def at(r):
        return r["at"]["secs_since_epoch"] + r["at"]["nanos_since_epoch"] / 1e9

    # Every client that got a 429 waited at least Retry-After before sending the same call again.
    for i, r in enumerate(log):
        if r["status"] != 429:
            continue
        again = next((n for n in log[i + 1 :] if n["method"] == r["method"] and n["path"] == r["path"] and n["query"] == r["query"]), None)
        if again is not None:
            assert at(again) - at(r) >= r["retry_after"] - 0.05, (r, again)


def test_binary_stops_azurite_on_interrupt(tmp_path):
    """SIGINT stops the emulator and its Azurite child: no process is left behind."""
    emu = start_emulator(tmp_path)
    kids = children_of(emu.proc.pid)
    assert kids, "Azurite should run as a child of the emulator"
    assert stop_emulator(emu) == 0
    # Generous: on a loaded 2-core CI machine node can take seconds to exit.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.1)
    assert not any(_alive(k) for k in kids), kids


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_azurite_dies_with_a_killed_emulator(tmp_path):
    """Even SIGKILL (no cleanup code runs) leaves no Azurite behind: it dies with its parent."""
    emu = start_emulator(tmp_path)
    kids = children_of(emu.proc.pid)
    assert kids
    emu.proc.kill()
    emu.proc.wait(timeout=10)
    # Generous: on a loaded 2-core CI machine node can take seconds to exit.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.1)
    assert not any(_alive(k) for k in kids), kids
