"""Fidelity: Microsoft's azure-mgmt-compute and azure-mgmt-imagebuilder drive Image Builder in
aib-emulator end to end.

Gallery -> definition -> template (its create poller finishes) -> run (its poller finishes,
every sub-state seen) -> run outputs name a gallery version that azure-mgmt-compute can GET ->
a second template whose inline step exits 1 makes the run poller raise, and customization.log
in the staging account (read with azure-storage-blob) shows the step -> cancel of a long build
-> delete of the templates, after which the staging groups are gone and the versions stay.
It runs once clean and once with injected 429s, internal errors on template reads and slower
polls. The first part is drive_build.py, the example for driving a build by hand.
"""

import os
import time

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.imagebuilder import models as ib
from azure.storage.blob import BlobServiceClient, LinearRetry

from conftest import start_emulator, stop_emulator
from drive_build import BLOB_READER, PARAMETERS, drive, grant, load_jsonc, template_from


@pytest.fixture(scope="module")
def aib_emulator(tmp_path_factory):
    """An emulator of its own on a fast clock (the session one runs at real time)."""
    emu = start_emulator(
        tmp_path_factory.mktemp("aib-emulator"),
        "--time-scale",
        "600",
        "--token-lifetime",
        "3600000",
    )
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    os.environ["REQUESTS_CA_BUNDLE"] = emu.ca_file
    os.environ["SSL_CERT_FILE"] = emu.ca_file
    yield emu
    stop_emulator(emu)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def set_aib(emu, **changes):
    knobs = emu.knobs()
    knobs["aib"].update(changes)
    emu.set_knobs(aib=knobs["aib"])


def staging_log(s, template: str) -> str:
    """The newest customization.log, found the way a client finds it (contract 8.9)."""
    t = s.builder.virtual_machine_image_templates.get(s.rg, template)
    staging = t.properties.exact_staging_resource_group.rsplit("/", 1)[-1]
    accounts = list(
        s.resources.resources.list_by_resource_group(
            staging, filter="resourceType eq 'Microsoft.Storage/storageAccounts'"
        )
    )
    assert len(accounts) == 1
    grant(s, accounts[0].id, s.info["objectId"], BLOB_READER)
    props = s.storage.storage_accounts.get_properties(staging, accounts[0].name)
    blobs = BlobServiceClient(
        props.primary_endpoints.blob,
        credential=s.credential,
        retry_policy=LinearRetry(backoff=0.5, random_jitter_range=0, retry_total=10),
    )
    container = blobs.get_container_client("packerlogs")
    for attempt in range(60):
        try:
            names = [b.name for b in container.list_blobs()]
            break
        except HttpResponseError as e:  # the data role propagates first
            if e.status_code != 403 or attempt == 59:
                raise
            time.sleep(0.25)
    logs = [n for n in names if n.endswith("/customization.log")]
    assert len(logs) == 1, names
    return container.download_blob(logs[0]).readall().decode()


def scenario(emu, tag: str, every_sub_state: bool = True):
    # About a real second per sub-state, so a busy machine still sees each one.
    emu.set_knobs(time_scale=100.0)
    set_aib(emu, queue=100.0, build=150.0, customizer=60.0, distribute=150.0)
    s = drive(emu.info, rg=f"rg-aib-{tag}", account=f"aibscripts{tag}", poll=0.05, log=lambda *_: None)
    order = ["Queued", "Building", "Customizing", "Distributing"]
    if every_sub_state:
        assert s.sub_states == order
    else:
        # Retried reads (429, 500) can skip a short phase, but never reorder them.
        assert s.sub_states == [x for x in order if x in s.sub_states] and len(s.sub_states) >= 2
    assert s.run_state == "Succeeded"
    parts = s.artifact_id.split("/")
    version = s.compute.gallery_image_versions.get(s.rg, parts[8], parts[10], parts[12])
    assert version.name == "1.0.0"
    assert version.properties.provisioning_state == "Succeeded"
    assert version.properties.publishing_profile.target_regions[0].name == "West Europe"
    emu.set_knobs(time_scale=600.0)
    set_aib(emu, queue=30.0, build=180.0, customizer=120.0, distribute=240.0)
    templates = s.builder.virtual_machine_image_templates
    params = load_jsonc(PARAMETERS)

    # A template whose inline step exits 1: the run poller raises, the log shows the step.
    failing = template_from(s, params)
    failing.properties.customize = [
        ib.ImageTemplateShellCustomizer(name="fine", inline=["echo fine"]),
        ib.ImageTemplateShellCustomizer(name="breaks", inline=["echo about to fail", "exit 1"]),
    ]
    created = templates.begin_create_or_update(s.rg, "it-failing", failing).result()
    assert created.properties.provisioning_state == "Succeeded"
    with pytest.raises(HttpResponseError) as err:
        templates.begin_run(s.rg, "it-failing").result()
    text = str(err.value)
    assert "PackerBuildFailed" in text
    assert "'breaks'" in text and "customization.log" in text
    t = templates.get(s.rg, "it-failing")
    assert t.properties.last_run_status.run_state == "Failed"
    assert t.properties.last_run_status.run_sub_state == "Customizing"
    log = staging_log(s, "it-failing")
    assert log.count("(telemetry) Starting provisioner shell") == 2
    assert "about to fail" in log
    last_step = log[log.rindex("(telemetry) Starting provisioner") :]
    assert "Script exited with non-zero exit status: 1" in last_step, "the log ends with the step's error"

    # A long build, canceled.
    set_aib(emu, customizer=36000.0)
    long = template_from(s, params)
    long.properties.customize = [ib.ImageTemplateShellCustomizer(name="long", inline=["sleep 36000"])]
    long.properties.build_timeout_in_minutes = 960
    templates.begin_create_or_update(s.rg, "it-long", long).result()
    run = templates.begin_run(s.rg, "it-long")
    deadline = time.monotonic() + 30
    while templates.get(s.rg, "it-long").properties.last_run_status.run_sub_state != "Customizing":
        assert time.monotonic() < deadline, "the long build never reached Customizing"
        time.sleep(0.1)
    templates.begin_cancel(s.rg, "it-long").result()
    assert templates.get(s.rg, "it-long").properties.last_run_status.run_state == "Canceled"
    with pytest.raises(HttpResponseError):
        run.result()
    set_aib(emu, customizer=120.0)

    # Lists, then delete everything: staging groups go, the gallery version stays.
    names = {t.name for t in templates.list_by_resource_group(s.rg)}
    assert names == {s.template, "it-failing", "it-long"}
    assert s.template in {t.name for t in templates.list()}
    found = list(s.resources.resources.list(filter="substringof('it-fail', name)"))
    assert [r.type for r in found] == ["Microsoft.VirtualMachineImages/imageTemplates"]
    staging = [templates.get(s.rg, n).properties.exact_staging_resource_group.rsplit("/", 1)[-1] for n in names]
    for n in names:
        templates.begin_delete(s.rg, n).result()
    for g in staging:
        assert not s.resources.resource_groups.check_existence(g)
    assert list(templates.list_by_resource_group(s.rg)) == []
    version = s.compute.gallery_image_versions.get(s.rg, parts[8], parts[10], parts[12])
    assert version.properties.provisioning_state == "Succeeded"


def test_image_builder_scenario(aib_emulator):
    """The whole scenario with clean transport."""
    scenario(aib_emulator, "clean")


def test_image_builder_scenario_with_faults(aib_emulator):
    """The same with 20 % 429s, internal errors on template reads and Retry-After 2."""
    before = aib_emulator.knobs()
    aib_emulator.clear_requests()
    aib_emulator.set_knobs(throttle_rate=0.2, throttle_retry_after=1, lro_retry_after=2)
    set_aib(aib_emulator, internal_error_rate=0.2)
    try:
        scenario(aib_emulator, "faults", every_sub_state=False)
    finally:
        aib_emulator.set_knobs(**{k: before[k] for k in ("throttle_rate", "throttle_retry_after", "lro_retry_after", "aib")})
    statuses = [r["status"] for r in aib_emulator.requests()]
    assert statuses.count(429) > 0, "throttling was injected"
    assert statuses.count(500) > 0, "internal errors were injected"


def test_older_api_version_is_served_and_strict(aib_emulator):
    """At api-version 2024-02-01 the SDK creates and runs a template; a 2025-10-01-only field
    (replicationMode) is an unknown field there, refused with 400 ValidationFailed."""
    from azure.mgmt.imagebuilder import ImageBuilderClient

    from drive_build import arm_kwargs, connect, prepare

    aib_emulator.set_knobs(time_scale=600.0)
    s = connect(aib_emulator.info)
    params = load_jsonc(PARAMETERS)
    prepare(s, "rg-aib-older", params, account="aibscriptsolder")
    older = ImageBuilderClient(
        s.credential, aib_emulator.subscription_id, api_version="2024-02-01", **arm_kwargs(aib_emulator.info)
    ).virtual_machine_image_templates
    body = template_from(s, params)
    body.properties.customize = [ib.ImageTemplateShellCustomizer(name="hi", inline=["echo hi"])]
    created = older.begin_create_or_update(s.rg, "it-older", body).result()
    assert created.properties.provisioning_state == "Succeeded"
    older.begin_run(s.rg, "it-older").result()
    assert older.get(s.rg, "it-older").properties.last_run_status.run_state == "Succeeded"
    body.properties.distribute[0].replication_mode = "Shallow"
    with pytest.raises(HttpResponseError) as err:
        older.begin_create_or_update(s.rg, "it-older-2025", body)
    assert err.value.status_code == 400
    assert err.value.error.code == "ValidationFailed"
    assert 'unknown field "replicationMode"' in err.value.error.message
