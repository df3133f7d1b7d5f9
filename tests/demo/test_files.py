"""The demo's files: Level 1 frames and team results for invertible OPs (make run)."""

import pytest

from demo import files as demo
from ops.models import ObservingProgram
from tests.factories import ProposalFactory
from tests.inversions.conftest import invertible_program

pytestmark = pytest.mark.django_db


def test_the_best_candidates_get_their_files_first(local_collections):
    programs = [invertible_program(datasets=1) for _ in range(3)]
    for program, score in zip(programs, [90.0, 40.0, 70.0], strict=True):
        ObservingProgram.objects.filter(pk=program.pk).update(score=score)

    assert demo.prepare_demo_files(limit=2) == 2

    team = local_collections / "team" / "demo"
    assert sorted(path.name for path in team.iterdir()) == sorted(
        [programs[0].pk, programs[2].pk]
    )  # not the newest two
    assert demo.prepare_demo_files(limit=2) == 1  # the rest, once
    assert demo.prepare_demo_files(limit=2) == 0


@pytest.mark.parametrize("proposal_id", ["../../../evil", "../..", "pid_1_1/../../.."])
def test_an_id_that_would_leave_the_collections_writes_nothing_and_the_others_are_written(
    local_collections, tmp_path, proposal_id
):
    """Rows stored before the scan checked ids: the demo writes their files nowhere."""
    evil = invertible_program(datasets=1, proposal=ProposalFactory(id=proposal_id, cycle=9, number=9))
    good = invertible_program(datasets=1)

    assert demo.prepare_demo_files(limit=5) == 1

    assert (local_collections / "team" / "demo" / good.pk).is_dir()
    assert not (local_collections / "team" / "demo" / evil.pk).exists()
    assert list(tmp_path.rglob(evil.datasets.get().id)) == []
