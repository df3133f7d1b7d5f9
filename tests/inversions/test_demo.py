"""The demo's files: Level 1 frames and team results for invertible OPs (make run)."""

import pytest

from inversions import demo
from ops.models import ObservingProgram
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
