"""The local transfer backend: real files move between collection folders, never from or to
a place outside them."""

import uuid

import pytest

from inversions.transfers import PathOutsideCollection, TaskStatus, TransferItem, TransferRequest
from inversions.transfers.local import LocalBackend


@pytest.fixture
def backend(tmp_path):
    root = tmp_path / "collections"
    (root / "team" / "runs" / "7").mkdir(parents=True)
    (root / "scratch").mkdir()
    return LocalBackend(root)


def copy(backend, source, destination, *, recursive=True):
    request = TransferRequest(
        submission_id=str(uuid.uuid4()),
        label="test",
        source_collection="team",
        destination_collection="scratch",
        items=[TransferItem(source, destination, recursive=recursive)],
    )
    return backend.status(backend.submit(request))


def test_a_folder_is_copied(backend):
    results = backend.root / "team" / "runs" / "7"
    (results / "inv_res_mod.fits").write_bytes(b"x" * 10)

    progress = copy(backend, "/runs/7/", "/pid_1_2/inv_X/input/")

    assert (progress.status, progress.files_done, progress.bytes_done) == (TaskStatus.SUCCEEDED, 1, 10)
    assert (backend.root / "scratch" / "pid_1_2" / "inv_X" / "input" / "inv_res_mod.fits").is_file()


def test_a_result_folder_holding_a_link_out_of_the_collections_copies_nothing(backend, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the worker's secrets")
    results = backend.root / "team" / "runs" / "7"
    (results / "inv_res_mod.fits").write_bytes(b"x")
    (results / "per_ori.fits").symlink_to(secret)

    progress = copy(backend, "/runs/7/", "/pid_1_2/inv_X/input/")

    assert progress.status == TaskStatus.FAILED
    assert "per_ori.fits in 7/ links to a place outside team/" in progress.message
    assert not (backend.root / "scratch" / "pid_1_2").exists()


@pytest.mark.parametrize("linked", ["file", "folder"])
def test_a_linked_source_out_of_the_collection_is_refused(backend, tmp_path, linked):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "per_ori.fits").write_text("secret")
    team = backend.root / "team"
    if linked == "file":
        (team / "runs" / "7" / "per_ori.fits").symlink_to(tmp_path / "outside" / "per_ori.fits")
        source, recursive = "/runs/7/per_ori.fits", False
    else:
        (team / "elsewhere").symlink_to(tmp_path / "outside")
        source, recursive = "/elsewhere/", True

    progress = copy(backend, source, "/pid_1_2/inv_X/input/per_ori.fits", recursive=recursive)

    assert progress.status == TaskStatus.FAILED and "leaves team/" in progress.message
    assert not (backend.root / "scratch" / "pid_1_2").exists()


def test_a_destination_linked_out_of_the_collection_is_refused(backend, tmp_path):
    (tmp_path / "outside").mkdir()
    (backend.root / "scratch" / "pid_1_2").symlink_to(tmp_path / "outside")
    (backend.root / "team" / "runs" / "7" / "per_ori.fits").write_bytes(b"x")

    progress = copy(backend, "/runs/7/", "/pid_1_2/inv_X/input/")

    assert progress.status == TaskStatus.FAILED and "leaves scratch/" in progress.message
    assert list((tmp_path / "outside").iterdir()) == []


@pytest.mark.parametrize("path", ["//etc/", "/runs/../../..", "/../scratch"])
def test_paths_are_resolved_inside_the_collection(backend, path):
    try:
        folder = backend.path("team", path)
    except PathOutsideCollection as error:
        assert "leaves team/" in str(error)
    else:
        assert folder.is_relative_to((backend.root / "team").resolve())


def test_listing_a_folder_linked_out_of_the_collection_is_refused(backend, tmp_path):
    (tmp_path / "outside").mkdir()
    (backend.root / "team" / "out").symlink_to(tmp_path / "outside")

    with pytest.raises(PathOutsideCollection, match="leaves team/"):
        backend.list_files("team", "/out/")
