"""The demo data center's files: every dataset the demo store lists has its Level 1 folder, and
its OP the demo team's results, from the first second (make run)."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from django.conf import settings

from demo import files, team
from demo.store.generator import generate_store
from demo.store.server import DemoStoreServer
from inversions import services
from ops.models import ObservingProgram, Scan
from ops.qualification import qualify_programs
from ops.scan import run_scan
from ops.states import State
from tests.factories import UserFactory

NOW = datetime(2025, 11, 28, 12, 0)
LIST_IDS = "query Ids { datasetInventories { datasetId instrumentName } }"


@pytest.fixture
def store():
    return generate_store(seed=3, datasets=40, now=NOW)


def listed(server: DemoStoreServer) -> list[dict]:
    response = requests.post(server.url, json={"query": LIST_IDS, "operationName": "Ids"}, timeout=10)
    return response.json()["data"]["datasetInventories"]


def test_the_store_lists_a_dataset_only_once_its_files_are_there(store, local_collections):
    store_files = files.StoreFiles(store.datasets, root=local_collections)
    with DemoStoreServer(store=store, clock=store_files.clock) as server:
        assert listed(server) == []
        assert store_files.write() == len(files.visp_datasets(store.datasets))
        records = listed(server)
    assert len(records) == len(store.datasets)
    visp = files.visp_datasets(store.datasets)
    assert visp
    for dataset in visp:
        level1 = local_collections / "level1" / dataset.bucket / dataset.proposal_id / dataset.dataset_id
        assert len(list(level1.glob("*.fits"))) == 4 * files.DEMO_FRAMES  # I, Q, U, V per step
        results = local_collections / "team" / team.result_path(dataset.program_id).strip("/")
        assert sorted(path.name for path in results.iterdir()) == sorted(settings.LEVEL2_RESULT_FILES)
    assert not list(local_collections.rglob(".*.partial"))
    assert files.StoreFiles(store.datasets, root=local_collections).write() == 0  # each once


def test_each_ip_has_one_dataset_of_the_results_fiducial_arm(store):
    arms: dict[str, list[int]] = {}
    by_id = {record["datasetId"]: record for record in store.datasets}
    for dataset in files.visp_datasets(store.datasets):
        ip = by_id[dataset.dataset_id]["instrumentProgramExecutionId"]
        arms.setdefault(ip, []).append(dataset.arm)
    assert arms
    assert all(sorted(ip_arms)[:2] in ([1], [1, 2]) for ip_arms in arms.values())


@pytest.mark.django_db
def test_an_op_queued_the_second_it_becomes_invertible_reaches_preprocessed(
    store, local_collections, eager_tasks, settings, django_capture_on_commit_callbacks
):
    inverter = UserFactory(username="lead", groups=["inverters"])
    store_files = files.StoreFiles(store.datasets, root=local_collections)
    store_files.start().join()
    with DemoStoreServer(store=store, clock=store_files.clock) as server:
        settings.LEVEL2_METADATA_URL = server.url
        scan = run_scan(trigger=Scan.Trigger.BUTTON)
    assert scan.status == Scan.Status.SUCCEEDED
    qualify_programs(program_ids=scan.changed_program_ids)
    program = ObservingProgram.objects.filter(state=State.INVERTIBLE).order_by("pk").first()
    assert program is not None

    with django_capture_on_commit_callbacks(execute=True):
        services.queue_program(program_id=program.pk, user=inverter)

    program.refresh_from_db()
    assert program.state == State.PREPROCESSED
    copied = program.events.get(to_state=State.PREPROCESSING).details["datasets"]
    assert copied
    scratch = Path(settings.LEVEL2_SCRATCH_DIR) / program.proposal_id
    assert all(len(list((scratch / dataset_id).glob("*.fits"))) for dataset_id in copied)


def test_records_still_to_arrive_get_their_files_shortly_before_they_do(monkeypatch, local_collections):
    store = generate_store(
        seed=3, datasets=6, now=NOW, arriving_programs=2, arrival_interval=timedelta(hours=1)
    )
    arriving = [record for record in store.datasets if datetime.fromisoformat(record["createDate"]) > NOW]
    assert arriving
    slept = []
    monkeypatch.setattr(files, "utc_now", lambda: NOW)
    monkeypatch.setattr(files.time, "sleep", slept.append)

    files.StoreFiles(store.datasets, root=local_collections).write(ahead=timedelta(minutes=10))

    waits = [seconds for seconds in slept if seconds > 0]
    assert len(waits) == len(arriving)
    last = datetime.fromisoformat(arriving[-1]["createDate"])
    assert max(waits) == (last - timedelta(minutes=10) - NOW).total_seconds()


def visp_record(dataset_id: str, proposal_id: str, program_id: str) -> dict:
    return {
        "datasetId": dataset_id,
        "primaryProposalId": proposal_id,
        "primaryExperimentId": "eid_1_1",
        "observingProgramExecutionId": program_id,
        "instrumentProgramExecutionId": f"{program_id}_ip",
        "instrumentName": "VISP",
        "bucket": "data",
        "createDate": "2025-11-01T00:00:00.000000",
    }


@pytest.mark.parametrize("proposal_id", ["../../../evil", "../..", "pid_1_1/../../.."])
def test_an_id_that_would_leave_the_collections_writes_nothing_and_the_others_are_written(
    local_collections, tmp_path, proposal_id
):
    """The demo's own records have safe ids; its files stay in its collections whatever the ids."""
    records = [visp_record("EVIL1", proposal_id, "op_evil"), visp_record("GOOD1", "pid_1_1", "op_good")]

    assert files.StoreFiles(records, root=local_collections).write() == 1

    assert (local_collections / "team" / "demo" / "op_good").is_dir()
    assert not (local_collections / "team" / "demo" / "op_evil").exists()
    assert list(tmp_path.rglob("EVIL1")) == []


def test_a_restarted_store_lists_at_once_what_an_earlier_start_wrote(store, local_collections):
    """A first scan must not find the store smaller while the writer goes over the files again:
    it would mark the datasets vanished and re-qualify their OPs."""
    files.StoreFiles(store.datasets, root=local_collections).write()
    by_date = sorted(store.datasets, key=lambda record: record["createDate"])
    visp = {dataset.dataset_id: dataset for dataset in files.visp_datasets(store.datasets)}
    gone = next(record for record in by_date[len(by_date) // 2 :] if record["datasetId"] in visp)
    level1, _ = files._folders(local_collections, visp[gone["datasetId"]])
    level1.rename(level1.with_name("elsewhere"))  # an earlier start stopped before writing it

    restarted = files.StoreFiles(store.datasets, root=local_collections)
    with DemoStoreServer(store=store, clock=restarted.clock) as server:
        assert restarted.write(written_only=True) == 0
        before_gone = {r["datasetId"] for r in by_date if r["createDate"] < gone["createDate"]}
        assert {record["datasetId"] for record in listed(server)} == before_gone
        level1.with_name("elsewhere").rename(level1)
        restarted.write(written_only=True)
        assert len(listed(server)) == len(store.datasets)
