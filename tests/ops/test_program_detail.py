"""The program page: verdict and why, settling, datasets, history; the list links to it."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ops.models import Dataset
from ops.qualification import qualify_programs
from ops.states import State
from tests.factories import DatasetFactory, InstrumentProgramFactory, program_in_state

pytestmark = pytest.mark.django_db

CREATED = dt.datetime(2025, 4, 2, 22, 24, tzinfo=dt.UTC)
LATER = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)


def op(state=State.DISCOVERED, *, ips=(("VISP", {}),), created=CREATED, **fields):
    program = program_in_state(state, newest_dataset_created_at=created, **fields)
    for instrument, dataset_fields in ips:
        ip = InstrumentProgramFactory(program=program, instrument=instrument)
        for _ in range(2):
            DatasetFactory(instrument_program=ip, create_date=created, **dataset_fields)
    return program


def page(client, program):
    response = client.get(reverse("program-detail", args=[program.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_needs_a_login(client):
    program = op()
    response = client.get(reverse("program-detail", args=[program.pk]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_an_unknown_program_is_a_404(viewer_client):
    response = viewer_client.get(reverse("program-detail", args=["eid_9_9_nothing"]))
    assert response.status_code == 404


@time_machine.travel(LATER, tick=False)
def test_the_verdict_shows_each_ip_and_rule_with_values(viewer_client):
    program = op(ips=[("VISP", {}), ("VISP", {"ao_locked": 61, "frame_count": 100}), ("VBI", {})])
    qualify_programs()
    html = page(viewer_client, program)
    assert "qualified 2025-07-01 00:00 UTC by the qualifier" in html
    assert "passes every rule" in html
    assert "fails ao" in html
    assert "fails instrument" in html
    assert "AO locked 61 % &lt; 75 % (61 of 100 frames)" in html
    assert "<td>61 %</td>" in html and "<td>75 %</td>" in html  # measured, threshold
    assert "VBI: instrument not supported" in html
    assert "solar radius on 2025-03-27" in html
    assert "Ca II 854.2 nm (optional)" in html
    for dataset in Dataset.objects.all():
        assert dataset.pk in html


def test_a_program_still_receiving_data_shows_when_it_settles(viewer_client):
    program = op(created=dt.datetime(2025, 6, 28, 12, 0, tzinfo=dt.UTC))
    with time_machine.travel(LATER, tick=False):
        qualify_programs()
        html = page(viewer_client, program)
    assert "settles on" in html and "2025-07-05 12:00" in html
    assert "qualified 2025" not in html


@time_machine.travel(LATER, tick=False)
def test_a_settled_unqualified_program_says_so(viewer_client):
    program = op()
    html = page(viewer_client, program)
    assert "Not qualified yet: settled on 2025-04-09 22:24 UTC" in html


def test_history_shows_old_and_new_verdicts_newest_first(viewer_client):
    program = op()
    with time_machine.travel(LATER, tick=False):
        qualify_programs()
    Dataset.objects.filter(program=program).update(stokes_parameters="IQU")
    with time_machine.travel(LATER + dt.timedelta(days=1), tick=False):
        qualify_programs(program_ids=[program.pk])
    html = page(viewer_client, program)
    history = html[html.index("<h2>History</h2>") :]
    newest = history.index("2025-07-02 00:00:00")
    older = history.index("2025-07-01 00:00:00")
    assert newest < older
    assert "invertible → not invertible" in history
    assert "not invertible <small>(was invertible)</small>" in history
    assert "VISP): fails stokes" in history and "VISP): passes every rule" in history
    assert "qualifier" in history and "scanner" in history
    # The verdict section shows the newest report only.
    verdict = html[html.index("<h2>Verdict</h2>") : html.index("<h2>Datasets</h2>")]
    assert "fails stokes" in verdict


@time_machine.travel(LATER, tick=False)
def test_the_page_makes_a_constant_number_of_queries(viewer_client):
    def queries_for(datasets, requalifications):
        program = op(ips=[("VISP", {})] * datasets)
        qualify_programs(program_ids=[program.pk])
        for n in range(requalifications):
            Dataset.objects.filter(program=program).update(ao_locked=n)
            qualify_programs(program_ids=[program.pk])
        with CaptureQueriesContext(connection) as queries:
            page(viewer_client, program)
        return len(queries)

    assert queries_for(1, 0) == queries_for(4, 3)


@time_machine.travel(LATER, tick=False)
def test_the_list_links_to_the_page_and_shows_settling(viewer_client):
    settled = op(id="eid_1_1_opSETTLED_R001.1.1")
    arriving = op(id="eid_1_2_opARRIVING_R001.1.1", created=dt.datetime(2025, 6, 30, tzinfo=dt.UTC))
    html = viewer_client.get(reverse("ops:program-list")).content.decode()
    assert f'href="{reverse("program-detail", args=[settled.pk])}"' in html
    assert f'href="{reverse("program-detail", args=[arriving.pk])}"' in html
    assert "settles on 2025-07-07" in html
    assert "settled, awaiting qualification" in html
