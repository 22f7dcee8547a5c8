"""Drive one Azure VM Image Builder build by hand against a running aib-emulator, with
Microsoft's own Python SDKs (azure-mgmt-*), from the bundled local parameter file.

    aib-emulator --json --time-scale 60 > /tmp/emu.json &    # one JSON line: URLs, CA, login
    .tools/venv/bin/python tests/emulator_fidelity/drive_build.py /tmp/emu.json

It logs in with the emulator's client secret (authority host = the emulator), creates what
parameters/local.image.parameters.json describes (resource group, identity, role assignments,
scripts storage account with the scripts of scripts/uploads/linux, gallery, image definition),
submits the image template, runs it and prints every lastRunStatus change
(Queued -> Building -> Customizing -> Distributing), then the run output and the gallery
version. The fidelity tests import drive() to run exactly this.
"""

import hashlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.imagebuilder import ImageBuilderClient
from azure.mgmt.imagebuilder import models as ib
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.storage import StorageManagementClient
from azure.storage.blob import BlobServiceClient, LinearRetry

ROOT = Path(__file__).resolve().parents[2]
PARAMETERS = ROOT / "parameters" / "local.image.parameters.json"
SCRIPTS = ROOT / "scripts" / "uploads" / "linux"
MGMT_SCOPE = "https://management.azure.com/.default"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def load_jsonc(path: Path) -> dict:
    """Reads JSON with // and /* */ comments and trailing commas (the parameter files' dialect)."""
    text = path.read_text(encoding="utf-8")
    out, i, in_str = [], 0, False
    while i < len(text):
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        else:
            out.append(c)
        i += 1
    cleaned = "".join(out)
    # Trailing commas before } or ].
    import re

    cleaned = re.sub(r",(\s*[}\]])", r"\1", cleaned)
    return json.loads(cleaned)


@dataclass
class Session:
    """Clients and ids of one driven build, for callers that continue the scenario."""

    info: dict
    credential: ClientSecretCredential
    resources: ResourceManagementClient
    msi: ManagedServiceIdentityClient
    auth: AuthorizationManagementClient
    storage: StorageManagementClient
    compute: ComputeManagementClient
    builder: ImageBuilderClient
    rg: str = ""
    location: str = ""
    identity_id: str = ""
    identity_principal: str = ""
    definition_id: str = ""
    scripts_url: str = ""
    template: str = ""
    sub_states: list = field(default_factory=list)
    run_state: str = ""
    artifact_id: str = ""


def arm_kwargs(info: dict, **extra) -> dict:
    kw = {
        "base_url": info["url"].rstrip("/"),
        "credential_scopes": [MGMT_SCOPE],
        # Enough status retries that injected throttling cannot exhaust them (default 3).
        "retry_status": 10,
        "retry_total": 15,
    }
    kw.update(extra)
    return kw


def connect(info: dict) -> Session:
    """Clients for every resource provider, pointed at the emulator."""
    # Trust the emulator's test CA (requests reads REQUESTS_CA_BUNDLE, Python's ssl SSL_CERT_FILE).
    os.environ["REQUESTS_CA_BUNDLE"] = info["caFile"]
    os.environ["SSL_CERT_FILE"] = info["caFile"]
    cred = ClientSecretCredential(
        info["tenantId"],
        info["clientId"],
        info["clientSecret"],
        authority=info["url"].rstrip("/"),
        disable_instance_discovery=True,
    )
    sub = info["subscriptionId"]
    return Session(
        info=info,
        credential=cred,
        resources=ResourceManagementClient(cred, sub, **arm_kwargs(info)),
        msi=ManagedServiceIdentityClient(cred, sub, **arm_kwargs(info)),
        auth=AuthorizationManagementClient(cred, sub, **arm_kwargs(info)),
        storage=StorageManagementClient(cred, sub, **arm_kwargs(info)),
        compute=ComputeManagementClient(cred, sub, **arm_kwargs(info)),
        builder=ImageBuilderClient(cred, sub, **arm_kwargs(info)),
    )


def grant(s: Session, scope: str, principal: str, role: str) -> None:
    """A role assignment through Microsoft.Authorization, retried through PrincipalNotFound."""
    sub = s.info["subscriptionId"]
    params = RoleAssignmentCreateParameters(
        role_definition_id=f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}",
        principal_id=principal,
        principal_type="ServicePrincipal",
    )
    for attempt in range(40):
        try:
            s.auth.role_assignments.create(scope, str(uuid.uuid4()), params)
            return
        except HttpResponseError as e:
            if "PrincipalNotFound" not in str(e) or attempt == 39:
                raise
            time.sleep(0.25)


def retry_forbidden(action, attempts: int = 60):
    """Role assignments take effect after a propagation delay: retry 403s for a while."""
    for attempt in range(attempts):
        try:
            return action()
        except HttpResponseError as e:
            if e.status_code != 403 or attempt == attempts - 1:
                raise
            time.sleep(0.25)
    return None


def prepare(s: Session, rg: str, params: dict, account: str = "") -> None:
    """Group, identity, roles, scripts account with the Linux scripts, gallery and definition."""
    p = {k: v["value"] for k, v in params["parameters"].items()}
    s.rg = rg
    s.location = p["location"]
    sub = s.info["subscriptionId"]
    rg_id = f"/subscriptions/{sub}/resourceGroups/{rg}"
    s.resources.resource_groups.create_or_update(rg, {"location": s.location, "tags": p.get("tags", {})})
    ident = s.msi.user_assigned_identities.create_or_update(rg, p["identityName"], {"location": s.location})
    s.identity_id, s.identity_principal = ident.id, ident.principal_id

    account = account or p["storageAccountName"]
    container = p["containerName"]
    props = s.storage.storage_accounts.begin_create(
        rg,
        account,
        {
            "location": s.location,
            "sku": {"name": "Standard_LRS"},
            "kind": "StorageV2",
            "properties": {"allowBlobPublicAccess": False, "minimumTlsVersion": "TLS1_2"},
        },
        polling_interval=1,
    ).result()
    s.storage.blob_containers.create(rg, account, container, {})
    account_id = props.id
    s.scripts_url = f"{props.primary_endpoints.blob}{container}/"
    # The identity builds (Contributor on the group: staging checks, gallery versions) and reads
    # the scripts; the caller uploads them.
    grant(s, rg_id, s.identity_principal, CONTRIBUTOR)
    grant(s, account_id, s.identity_principal, BLOB_READER)
    grant(s, account_id, s.info["objectId"], BLOB_CONTRIBUTOR)
    blobs = BlobServiceClient(
        props.primary_endpoints.blob,
        credential=s.credential,
        retry_policy=LinearRetry(backoff=0.5, random_jitter_range=0, retry_total=10),
    )
    for f in sorted(SCRIPTS.iterdir()):
        data = f.read_bytes()
        retry_forbidden(lambda: blobs.get_blob_client(container, f.name).upload_blob(data, overwrite=True))

    gallery = p["galleryName"]
    d = p["imageDefinition"]
    s.compute.galleries.begin_create_or_update(rg, gallery, {"location": s.location}).result()
    image = s.compute.gallery_images.begin_create_or_update(
        rg,
        gallery,
        d["name"],
        {
            "location": s.location,
            "properties": {
                "osType": d["osType"],
                "osState": d["osState"],
                "hyperVGeneration": d["hyperVGeneration"],
                "identifier": {"publisher": d["publisher"], "offer": d["offer"], "sku": d["sku"]},
                "features": [{"name": "SecurityType", "value": d["securityType"]}],
            },
        },
    ).result()
    s.definition_id = image.id


def template_from(s: Session, params: dict) -> ib.ImageTemplate:
    """The ImageTemplate the parameter file describes, with checksums of the uploaded scripts."""
    t = params["parameters"]["imageTemplate"]["value"]

    def sha(name: str) -> str:
        return hashlib.sha256((SCRIPTS / name).read_bytes()).hexdigest()

    customize = []
    for step in t["customizationSteps"]:
        if step["type"] == "Shell" and "script" in step:
            customize.append(ib.ImageTemplateShellCustomizer(
                name=step["name"], script_uri=s.scripts_url + step["script"], sha256_checksum=sha(step["script"])))
        elif step["type"] == "Shell":
            customize.append(ib.ImageTemplateShellCustomizer(name=step["name"], inline=step["inline"]))
        elif step["type"] == "File":
            customize.append(ib.ImageTemplateFileCustomizer(
                name=step["name"], source_uri=s.scripts_url + step["file"],
                destination=step["destination"], sha256_checksum=sha(step["file"])))
    src = t["imageSource"]
    versioning = t.get("versioning") or {}
    return ib.ImageTemplate(
        location=s.location,
        tags=params["parameters"].get("tags", {}).get("value", {}),
        identity=ib.ImageTemplateIdentity(
            type="UserAssigned", user_assigned_identities={s.identity_id: ib.UserAssignedIdentity()}),
        properties=ib.ImageTemplateProperties(
            source=ib.ImageTemplatePlatformImageSource(
                publisher=src["publisher"], offer=src["offer"], sku=src["sku"], version=src["version"]),
            customize=customize,
            build_timeout_in_minutes=t["buildTimeoutInMinutes"],
            vm_profile=ib.ImageTemplateVmProfile(vm_size=t["vmSize"], os_disk_size_gb=t["osDiskSizeGB"]),
            distribute=[ib.ImageTemplateSharedImageDistributor(
                run_output_name=t["namePrefix"][:64],
                gallery_image_id=s.definition_id,
                target_regions=[ib.TargetRegion(
                    name=r["name"], replica_count=r["replicaCount"], storage_account_type=r["storageAccountType"])
                    for r in t["targetRegions"]],
                versioning=ib.DistributeVersionerLatest(major=versioning.get("major", -1)),
                exclude_from_latest=t.get("excludeFromLatest", False),
            )],
        ),
    )


def drive(info: dict, rg: str = "", account: str = "", parameters: Path = PARAMETERS,
          poll: float = 0.2, log=print) -> Session:
    """Prepares everything, submits and runs the template; returns the session with results.
    `rg` and `account` override the parameter file's names (storage names are global)."""
    params = load_jsonc(parameters)
    s = connect(info)
    prepare(s, rg or params["parameters"]["resourceGroupName"]["value"], params, account)
    rg = s.rg
    prefix = params["parameters"]["imageTemplate"]["value"]["namePrefix"]
    s.template = f"{prefix}-{time.strftime('%Y-%m-%d-%H-%M-%S', time.gmtime())}"
    created = s.builder.virtual_machine_image_templates.begin_create_or_update(
        rg, s.template, template_from(s, params)).result()
    log(f"template {s.template}: {created.properties.provisioning_state}")
    poller = s.builder.virtual_machine_image_templates.begin_run(rg, s.template)
    last = None
    while True:
        t = s.builder.virtual_machine_image_templates.get(rg, s.template)
        lrs = t.properties.last_run_status
        # The SDK's enums are str subclasses; keep their plain values.
        now = (str(lrs.run_state.value if hasattr(lrs.run_state, "value") else lrs.run_state),
               str(getattr(lrs.run_sub_state, "value", lrs.run_sub_state) or "")) if lrs else None
        if now and now != last:
            log(f"  {now[0]:<18} {now[1]}")
            if now[1] and (not s.sub_states or s.sub_states[-1] != now[1]):
                s.sub_states.append(now[1])
            last = now
        if poller.done():
            break
        time.sleep(poll)
    poller.result()
    t = s.builder.virtual_machine_image_templates.get(rg, s.template)
    s.run_state = t.properties.last_run_status.run_state
    outputs = list(s.builder.virtual_machine_image_templates.list_run_outputs(rg, s.template))
    s.artifact_id = outputs[0].properties.artifact_id
    log(f"run output {outputs[0].name}: {s.artifact_id}")
    return s


def main(argv: list) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    info = json.loads(Path(argv[1]).read_text(encoding="utf-8").splitlines()[0])
    s = drive(info)
    parts = s.artifact_id.split("/")
    version = s.compute.gallery_image_versions.get(parts[4], parts[8], parts[10], parts[12])
    print(f"gallery version {version.name}: {version.properties.provisioning_state}")
    return 0 if s.run_state == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
