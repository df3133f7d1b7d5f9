"""The program page: verdict and why, settling, datasets, history; the list links to it."""

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ops.history import Actor, record_event
from ops.models import Dataset
from ops.qualification import qualify_programs
from ops.states import ActorKind, State
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


def five(median, spread):
    return {
        "min": median - 2 * spread,
        "p25": median - spread,
        "med": median,
        "p75": median + spread,
        "max": median + 3 * spread,
    }


# The three arms of a ViSP IP: what each observes.
ARMS = [
    {"spectral_lines": ["Fe I (630.25 nm)"], "wavelength_min": 629.9, "wavelength_max": 630.6},
    {"spectral_lines": ["Ca II (854.21 nm)"], "wavelength_min": 853.9, "wavelength_max": 854.6},
    {"spectral_lines": [], "wavelength_min": 589.2, "wavelength_max": 589.9},
]


def observed_program(*, datasets_per_ip=3):
    """A qualified OP like the store's: a ViSP IP that passes, one whose first dataset has
    61 % AO lock, and a VBI IP; r0 on every ViSP dataset, light level on all ViSP datasets but
    the last of the failing IP."""
    program = program_in_state(State.DISCOVERED, newest_dataset_created_at=CREATED)
    passing, failing = (InstrumentProgramFactory(program=program) for _ in range(2))
    vbi = InstrumentProgramFactory(program=program, instrument="VBI")
    for ip in (passing, failing):
        for n in range(datasets_per_ip):
            DatasetFactory(
                instrument_program=ip,
                create_date=CREATED,
                fried_parameter=five(0.04 + 0.01 * n, 0.01),
                light_level=five(470 + n, 2) if ip is passing or n < datasets_per_ip - 1 else None,
                **ARMS[n % 3],
                **(
                    {"ao_locked": 61, "frame_count": 100, "health_good": 100, "gos_open": 100}
                    if ip is failing and n == 0
                    else {}
                ),
            )
    for _ in range(datasets_per_ip):
        DatasetFactory(instrument_program=vbi, create_date=CREATED, stokes_parameters="I", spectral_lines=[])
    with time_machine.travel(LATER, tick=False):
        qualify_programs(program_ids=[program.pk])
    program.refresh_from_db()
    return program


_CELL = re.compile(r'<td class="cell[^"]*"[^>]*>.*?</td>')


def cells(html):
    """The matrix's rule cells, as their markup."""
    return _CELL.findall(html)


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
    history = html[html.index('id="history-heading"') :]
    newest = history.index("2025-07-02 00:00:00")
    older = history.index("2025-07-01 00:00:00")
    assert newest < older
    assert "invertible → not invertible" in history
    assert "not invertible <small>(was invertible)</small>" in history
    assert "VISP): fails stokes" in history and "VISP): passes every rule" in history
    assert "qualifier" in history and "scanner" in history
    # The verdict section shows the newest report only.
    verdict = html[html.index('id="verdict-heading"') : html.index('id="seeing-heading"')]
    assert "fails stokes" in verdict and "passes every rule" not in verdict


@time_machine.travel(LATER, tick=False)
def test_the_page_makes_a_constant_number_of_queries(viewer_client):
    def queries_for(datasets_per_ip, requalifications):
        program = observed_program(datasets_per_ip=datasets_per_ip)
        for n in range(requalifications):
            Dataset.objects.filter(program=program).update(ao_locked=n)
            qualify_programs(program_ids=[program.pk])
        with CaptureQueriesContext(connection) as queries:
            html = page(viewer_client, program)
        # A matrix row per ViSP dataset, and a row per dataset in each plot's table.
        assert html.count('<th scope="row"><code>') == 2 * datasets_per_ip + 2 * 3 * datasets_per_ip
        return len(queries)

    assert queries_for(1, 0) == queries_for(10, 3)  # 3 datasets and 30, 1 event and 4


@time_machine.travel(LATER, tick=False)
def test_the_list_links_to_the_page_and_shows_settling(viewer_client):
    settled = op(id="eid_1_1_opSETTLED_R001.1.1")
    arriving = op(id="eid_1_2_opARRIVING_R001.1.1", created=dt.datetime(2025, 6, 30, tzinfo=dt.UTC))
    html = viewer_client.get(reverse("program-list")).content.decode()
    assert f'href="{reverse("program-detail", args=[settled.pk])}"' in html
    assert f'href="{reverse("program-detail", args=[arriving.pk])}"' in html
    assert "settles on 2025-07-07" in html
    assert "settled, awaiting qualification" in html


def test_the_matrix_marks_each_rule_with_its_value_and_threshold(viewer_client):
    program = observed_program()
    html = page(viewer_client, program)
    start = html.index('<table class="matrix"')
    matrix = html[start : html.index("</table>", start)]
    failing_ao = [cell for cell in cells(matrix) if "AO fails" in cell]
    assert failing_ao == [
        '<td class="cell fail" tabindex="0"><span class="mark" aria-hidden="true">✗</span>'
        '<span class="shown" aria-hidden="true">61 %</span>'
        '<span class="tip">AO fails: measured 61 %, threshold 75 %</span></td>'
    ]
    passing_ao = [cell for cell in cells(matrix) if "AO passes" in cell]
    assert len(passing_ao) == 5
    assert all('class="cell pass"' in cell and ">✓<" in cell and "90.1 %" in cell for cell in passing_ao)
    on_disk = next(cell for cell in cells(matrix) if "On disk passes" in cell)
    assert "farthest corner 609.3″, solar radius 962.4″" in on_disk and "609 / 962″" in on_disk
    assert matrix.count("Fe I 630.2 passes: measured Fe I (630.25 nm) in DS") == 2  # on each ViSP IP's row
    assert "✗</span> fails ao" in matrix and "✓</span> passes every rule" in matrix


def test_an_unsupported_instrument_is_one_row(viewer_client):
    program = observed_program()
    html = page(viewer_client, program)
    vbi = html[html.index('<tbody class="ip unsupported">') :]
    vbi = vbi[: vbi.index("</tbody>")]
    assert vbi.count("<tr") == 1
    assert "instrument not supported" in vbi and "3 datasets: " in vbi
    for dataset in Dataset.objects.filter(instrument_name="VBI"):
        assert f"<code>{dataset.pk}</code>" in vbi
    assert "VBI fails" not in html  # no rule cells for its datasets


def test_datasets_show_embargo_and_browse_movie(viewer_client):
    program = op(
        ips=[
            (
                "VISP",
                {
                    "is_embargoed": True,
                    "embargo_end_date": dt.datetime(2026, 1, 15, tzinfo=dt.UTC),
                    "browse_movie_url": "https://vimeo.com/1081736",
                },
            )
        ]
    )
    html = page(viewer_client, program)
    assert html.count('<span class="embargoed">until 2026-01-15</span>') == 2
    assert html.count('<a href="https://vimeo.com/1081736" rel="noopener">movie') == 2
    assert "629.90\u2013630.60 nm" in html and "Fe I (630.25 nm)" in html


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.domain)//",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://vimeo.com/1\njavascript:alert(1)",
        "//evil.example/movie",
    ],
)
def test_a_browse_movie_url_that_is_not_http_is_no_link(viewer_client, url):
    program = op(ips=[("VISP", {"browse_movie_url": url})])

    html = page(viewer_client, program)

    assert "movie<span" not in html
    assert "javascript:" not in html.lower() and "data:text" not in html and "evil.example" not in html


def test_an_unqualified_program_shows_its_datasets_values_without_marks(viewer_client):
    program = op(ips=[("VISP", {"ao_locked": 111})])  # 25 % of 444 frames
    html = page(viewer_client, program)
    assert "not qualified yet" in html
    assert 'class="cell fail"' not in html and 'class="cell pass"' not in html
    assert html.count('<span class="shown" aria-hidden="true">25 %</span>') == 2


def test_box_plots_draw_each_dataset_with_its_numbers_in_a_table(viewer_client):
    program = observed_program()
    html = page(viewer_client, program)
    seeing = html[html.index('id="seeing-heading"') : html.index('id="history-heading"')]
    assert seeing.count('role="img"') == 2
    assert 'aria-label="Box plots of Fried parameter r0 (cm) for 9 datasets;' in seeing
    r0, light = seeing.split('<figure class="box-plot">')[1:]
    assert r0.count('<rect class="box"') == 6
    assert light.count('<rect class="box"') == 5
    first = Dataset.objects.filter(instrument_program__instrument="VISP").order_by("id").first()
    # r0 in cm: 4 ± 1 with min 2 and max 7.
    assert (
        f'<th scope="row"><code>{first.pk}</code></th><td>2.00</td><td>3.00</td><td>4.00</td>'
        "<td>5.00</td><td>7.00</td>" in r0
    )
    assert light.count('<td colspan="5">not given</td>') == 4  # one ViSP dataset, three VBI
    assert light.count(">not given</text>") == 4
    assert r0.count(">not given</text>") == 3
    assert '<text class="unit"' in r0 and ">cm</text>" in r0


def test_the_history_is_a_timeline_with_information_events_lighter(viewer_client):
    program = observed_program()
    record_event(
        program_id=program.pk,
        to_state=State.INVERTIBLE,
        actor=Actor(ActorKind.INVERTER),
        details={"note": "checked by hand"},
    )
    html = page(viewer_client, program)
    timeline = html[html.index('<ol class="timeline">') :]
    timeline = timeline[: timeline.index("</ol>")]
    events = timeline.split('<li class="event')[1:]
    assert len(events) == 3
    newest, verdict, discovered = events
    assert newest.startswith(' information">') and "note: checked by hand" in newest
    assert verdict.startswith('">') and "discovered → invertible" in verdict
    assert "by qualifier" in verdict and "2025-07-01 00:00:00 UTC" in verdict
    assert "fails ao" in verdict
    assert "by scanner" in discovered


def test_the_score_is_shown_with_the_state(viewer_client):
    program = op()
    with time_machine.travel(LATER, tick=False):
        qualify_programs()
    program.refresh_from_db()
    assert program.score is not None
    html = page(viewer_client, program)
    facts = html[html.index('<dl class="facts">') : html.index("</dl>")]
    assert f'<span class="score" tabindex="0" title="{program.score_explained()}">' in facts


def test_the_state_names_who_entered_it_not_a_later_note(viewer_client):
    program = op(State.INVERTIBLE)
    with time_machine.travel(LATER, tick=False):
        record_event(program_id=program.pk, to_state=State.QUEUED, actor=Actor(ActorKind.INVERTER))
    with time_machine.travel(LATER + dt.timedelta(days=1), tick=False):
        record_event(program_id=program.pk, to_state=State.QUEUED, actor=Actor(ActorKind.SCANNER))

    state = page(viewer_client, program).split('<dd id="program-state">')[1].split("</dd>")[0]

    assert "state-queued" in state
    assert "since 2025-07-01 00:00 UTC by inverter" in state
