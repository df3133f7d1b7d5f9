"""The cluster's API: every documented status of every route."""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from demo import team as demo_team
from inversions import publication, services, tasks
from inversions.models import Inversion
from inversions.products.synthetic import write_results
from inversions.transfers import _backend_for
from ops import selectors as ops_selectors
from ops.history import Actor, record_event
from ops.states import ActorKind, State
from tests.factories import ApiTokenFactory, InversionFactory, UserFactory, events_of, program_in_state
from tests.inversions.conftest import invertible_program, published_and_stale

PROGRAMS = "/api/programs"


def auth(token) -> dict[str, str]:
    return {"Authorization": f"Token {token.secret}"}


@pytest.fixture
def inverter_token(inverter):
    return ApiTokenFactory(user=inverter)


@pytest.fixture
def viewer_token(db):
    return ApiTokenFactory(user=UserFactory(username="reader", groups=["viewers"]))


@pytest.fixture
def staff_token(db):
    return ApiTokenFactory(user=UserFactory(username="admin", is_staff=True))


def events_url(program) -> str:
    return f"{PROGRAMS}/{program.pk}/events"


def post_event(client, program, token, **body):
    return client.post(events_url(program), body, content_type="application/json", headers=auth(token))


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [None, "Token not-a-token", "Bearer {secret}", "{secret}", "Token "],
    ids=["none", "bad token", "other scheme", "no scheme", "empty"],
)
def test_a_request_without_a_good_token_is_401(client, viewer_token, header):
    headers = {"Authorization": header.format(secret=viewer_token.secret)} if header else {}
    response = client.get(PROGRAMS, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_a_revoked_token_is_refused(client, inverter_token):
    assert client.get(PROGRAMS, headers=auth(inverter_token)).status_code == 200
    inverter_token.revoked_at = inverter_token.created_at
    inverter_token.save()
    assert client.get(PROGRAMS, headers=auth(inverter_token)).status_code == 401
    program = invertible_program()
    response = post_event(client, program, inverter_token, state="queued", expected_state="invertible")
    assert response.status_code == 401
    assert not Inversion.objects.exists()


def test_using_a_token_records_when(client, viewer_token):
    assert viewer_token.last_used_at is None
    client.get(PROGRAMS, headers=auth(viewer_token))
    viewer_token.refresh_from_db()
    assert viewer_token.last_used_at is not None


def test_reads_accept_a_logged_in_session_but_writes_do_not(client, inverter):
    program = invertible_program()
    client.force_login(inverter)
    assert client.get(PROGRAMS).status_code == 200
    assert client.get(f"{PROGRAMS}/{program.pk}").status_code == 200
    response = client.post(
        events_url(program),
        {"state": "queued", "expected_state": "invertible"},
        content_type="application/json",
    )
    assert response.status_code == 401
    program.refresh_from_db()
    assert program.state == State.INVERTIBLE


# --- GET /api/programs --------------------------------------------------------------------------


def test_the_list_has_the_fields_of_the_export(client, viewer_token):
    invertible_program()
    program_in_state(State.NOT_INVERTIBLE)
    response = client.get(PROGRAMS, headers=auth(viewer_token))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and (body["limit"], body["offset"]) == (100, 0)
    assert body["items"] == list(ops_selectors.program_export())


def test_the_list_is_paginated_with_a_total(client, viewer_token):
    programs = sorted(program_in_state(State.DISCOVERED).pk for _ in range(5))
    response = client.get(PROGRAMS, {"limit": 2, "offset": 2}, headers=auth(viewer_token))
    body = response.json()
    assert (body["count"], body["limit"], body["offset"]) == (5, 2, 2)
    assert [item["program_id"] for item in body["items"]] == programs[2:4]
    last = client.get(PROGRAMS, {"limit": 2, "offset": 4}, headers=auth(viewer_token)).json()
    assert [item["program_id"] for item in last["items"]] == programs[4:]


def test_the_list_filters_by_state_proposal_and_instrument(client, viewer_token):
    visp = invertible_program(proposal__id="pid_2_10")
    other_proposal = invertible_program(proposal__id="pid_2_9")
    no_ip = program_in_state(State.DISCOVERED, proposal__id="pid_2_10")

    def ids(**query):
        response = client.get(PROGRAMS, query, headers=auth(viewer_token))
        assert response.status_code == 200
        return {item["program_id"] for item in response.json()["items"]}

    assert ids(state="invertible") == {visp.pk, other_proposal.pk}
    assert ids(state="discovered") == {no_ip.pk}
    assert ids(proposal="pid_2_10") == {visp.pk, no_ip.pk}
    assert ids(instrument="visp") == {visp.pk, other_proposal.pk}
    assert ids(instrument="VBI") == set()
    assert ids(state="invertible", proposal="pid_2_10", instrument="VISP") == {visp.pk}


def test_a_page_costs_the_same_queries_for_any_number_of_programs(client, viewer_token):
    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(PROGRAMS, headers=auth(viewer_token)).status_code == 200
        return len(queries)

    invertible_program()
    queries_for_page()  # the token's last-used time is written once a minute: not now again
    few = queries_for_page()
    for _ in range(6):
        invertible_program(datasets=3)
    assert queries_for_page() == few


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"state": "done"},
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"offset": 99999999999999999999},
        {"offset": 10**9 + 1},
    ],
)
def test_bad_list_parameters_are_400_with_field_errors(client, viewer_token, query):
    response = client.get(PROGRAMS, query, headers=auth(viewer_token))
    assert response.status_code == 400
    assert list(response.json()["errors"]) == list(query)


@pytest.mark.django_db
def test_an_offset_past_the_end_is_an_empty_page(client, viewer_token):
    program_in_state(State.DISCOVERED)
    body = client.get(PROGRAMS, {"offset": 10**9}, headers=auth(viewer_token)).json()
    assert (body["count"], body["items"]) == (1, [])


@pytest.mark.django_db
def test_too_many_query_parameters_are_a_400(client, viewer_token, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = client.get(PROGRAMS, {f"x{i}": i for i in range(11)}, headers=auth(viewer_token))
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["request"]


# --- GET /api/programs/{program_id} -------------------------------------------------------------


def test_one_program_with_its_ips_datasets_and_history(client, viewer_token, inverter):
    program = invertible_program(datasets=2)
    services.queue_program(program_id=program.pk, user=inverter, note="next")
    response = client.get(f"{PROGRAMS}/{program.pk}", headers=auth(viewer_token))
    assert response.status_code == 200
    body = response.json()
    (row,) = (row for row in ops_selectors.program_export() if row["program_id"] == program.pk)
    assert {key: body[key] for key in row} == row
    assert body["state"] == "queued"
    assert (
        sorted(dataset["id"] for dataset in body["datasets"]) == body["instrument_programs"][0]["dataset_ids"]
    )
    assert {"instrument_program", "create_date", "bounding_box", "vanished_at"} <= set(body["datasets"][0])
    assert [event["to_state"] for event in body["events"]] == ["queued", "invertible", "discovered"]
    queued = body["events"][0]
    assert (queued["from_state"], queued["actor"], queued["actor_kind"]) == ("invertible", "lead", "inverter")
    assert queued["details"]["note"] == "next" and queued["id"] == events_of(program)[-1].pk
    assert queued["created_at"]


def test_an_unknown_program_is_404(client, viewer_token):
    response = client.get(f"{PROGRAMS}/eid_9_9_nothing", headers=auth(viewer_token))
    assert response.status_code == 404
    assert response.json() == {"detail": "There is no observing program eid_9_9_nothing."}


def test_one_program_says_whether_it_is_stale_and_lists_its_inversions_newest_first(
    client, viewer_token, inverter
):
    program, first = published_and_stale()
    body = client.get(f"{PROGRAMS}/{program.pk}", headers=auth(viewer_token)).json()
    assert body["stale_since"] is not None and "stale" in body["events"][0]["details"]
    (listed,) = body["inversions"]
    assert {key: listed[key] for key in ("id", "software_commit", "end_reason", "dataset_ids")} == {
        "id": first.id,
        "software_commit": "0123abcd",
        "end_reason": "published",
        "dataset_ids": ["AAAAA", "AAAAB"],
    }
    assert listed["archive_folder"] == f"/data/{program.proposal_id}/inv_FIRST1/"
    assert listed["products_folder"] == f"/{program.proposal_id}/inv_X/"
    assert listed["store_record"]["inversionId"] == "inv.FIRST1" and listed["owner"]

    services.queue_program(program_id=program.pk, user=inverter, expected_state=State.PUBLISHED)
    body = client.get(f"{PROGRAMS}/{program.pk}", headers=auth(viewer_token)).json()
    assert body["stale_since"] is None
    assert [inversion["id"] for inversion in body["inversions"]][1:] == [first.id]
    current = body["inversions"][0]
    assert (current["end_reason"], current["ended_at"], current["store_record"]) == ("", None, None)


# --- POST /api/programs/{program_id}/events -----------------------------------------------------


def test_inverting_again_answers_201_naming_the_earlier_inversion(client, inverter_token, viewer_token):
    program, first = published_and_stale()
    refused = post_event(client, program, viewer_token, state="queued", expected_state="published")
    assert refused.status_code == 403
    response = post_event(
        client, program, inverter_token, state="queued", expected_state="published", note="v2"
    )
    assert response.status_code == 201
    details = response.json()["details"]
    assert (details["again_after"], details["note"]) == (first.id, "v2")
    assert details["inversion"] == Inversion.objects.get(program=program, ended_at__isnull=True).id
    again = post_event(client, program, inverter_token, state="queued", expected_state="published")
    assert again.status_code == 409 and again.json()["current"]["state"] == "queued"


def test_queueing_answers_201_with_the_event(client, inverter_token):
    program = invertible_program()
    response = post_event(
        client, program, inverter_token, state="queued", expected_state="invertible", note="after the plage"
    )
    assert response.status_code == 201
    event = events_of(program)[-1]
    inversion = Inversion.objects.get()
    assert response.json() == {
        "id": event.pk,
        "program_id": program.pk,
        "from_state": "invertible",
        "to_state": "queued",
        "actor": "lead",
        "actor_kind": "inverter",
        "created_at": response.json()["created_at"],
        "details": {"inversion": inversion.id, "owner": "lead", "note": "after the plage"},
    }
    assert inversion.owner == inverter_token.user


def working_program(inverter):
    program = invertible_program(datasets=2)
    services.queue_program(program_id=program.pk, user=inverter)
    for state in (State.PREPROCESSING, State.PREPROCESSED):
        record_event(program_id=program.pk, to_state=state, actor=Actor(ActorKind.WORKER))
    services.start_work(program_id=program.pk, user=inverter)
    return program


@pytest.fixture
def result_folder(local_collections):
    """The three result files in the team's collection, at /runs/7/."""
    folder = local_collections / "team" / "runs" / "7"
    folder.mkdir(parents=True)
    for name in ("inv_res_mod.fits", "inv_res_pre.fits", "per_ori.fits"):
        (folder / name).write_bytes(b"SIMPLE  =                    T")
    _backend_for.cache_clear()
    return folder


def test_reporting_done_through_the_api_records_inverted_by_the_api(client, inverter_token, working):
    program = working
    dataset_ids = sorted(program.datasets.values_list("id", flat=True))
    response = post_event(
        client,
        program,
        inverter_token,
        state="inverted",
        expected_state="working",
        software_commit="ABC1234",
        result_collection="team",
        result_path=demo_team.result_path(program.pk).rstrip("/"),
        dataset_ids=dataset_ids,
        notes="SIR, 3 nodes",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["to_state"], body["actor_kind"], body["actor"]) == ("inverted", "api", "lead")
    assert body["details"]["software_commit"] == "abc1234"
    assert body["details"]["result_path"] == demo_team.result_path(program.pk)
    event = events_of(program)[-1]
    assert (event.to_state, event.actor_kind, event.actor_user) == ("inverted", "api", inverter_token.user)
    inversion = Inversion.objects.get()
    assert (inversion.result_collection, inversion.dataset_ids, inversion.notes) == (
        "team",
        dataset_ids,
        "SIR, 3 nodes",
    )


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"result_collection": "level1"}, "result_collection", "level1 is not a result collection"),
        ({"result_path": "/runs/other/"}, "result_path", "do not fit this program's Level 1 data"),
        ({"result_path": "/runs/taken/"}, "result_path", "holds the results of eid_"),
    ],
)
def test_a_report_of_results_from_elsewhere_is_400_naming_why(
    client, inverter_token, working, local_collections, change, field, reason
):
    write_results(
        local_collections / "team" / "runs" / "other", frames=9, slit_bins=12, binning=5, fiducial_arm=1
    )
    shutil.copytree(local_collections / "team" / demo_team.result_path(working.pk).strip("/"),
                    local_collections / "team" / "runs" / "taken")  # fmt: skip
    InversionFactory(program=invertible_program(), result_collection="team", result_path="/runs/taken/")
    body = {
        "state": "inverted",
        "expected_state": "working",
        "software_commit": "abc1234",
        "result_collection": "team",
        "result_path": demo_team.result_path(working.pk),
        "dataset_ids": list(working.datasets.values_list("id", flat=True)),
    }

    response = post_event(client, working, inverter_token, **(body | change))

    assert response.status_code == 400, response.content
    assert reason in response.json()["errors"][field][0]
    working.refresh_from_db()
    assert working.state == State.WORKING


def test_a_bad_report_is_400_with_each_fields_error_and_changes_nothing(
    client, inverter_token, result_folder
):
    program = working_program(inverter_token.user)
    (result_folder / "per_ori.fits").unlink()
    response = post_event(
        client,
        program,
        inverter_token,
        state="inverted",
        expected_state="working",
        software_commit="not-a-commit",
        result_collection="team",
        result_path="/runs/7",
        dataset_ids=["NOT_OF_THIS_OP"],
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"software_commit", "result_path", "dataset_ids"}
    assert "7 to 40 hexadecimal" in errors["software_commit"][0]
    assert "lacks per_ori.fits" in errors["result_path"][0]
    program.refresh_from_db()
    assert program.state == State.WORKING


@pytest.mark.parametrize(
    ("path", "field", "reason"),
    [
        ("//etc/", "result_path", "/etc/ does not exist on collection team"),
        ("/demo/../../..", "result_path", "climbs above the collection's root"),
        # Refused before the form sees it (level2.middleware): the body holds a NUL byte.
        ("/runs/7/\x00", "body", "contains a NUL byte"),
        ("/out/", "result_path", "leaves team/"),
    ],
)
def test_a_result_path_out_of_the_collection_is_a_400_with_the_reason(
    client, inverter_token, result_folder, tmp_path, path, field, reason
):
    program = working_program(inverter_token.user)
    (result_folder.parent.parent / "out").symlink_to(tmp_path)
    response = post_event(
        client,
        program,
        inverter_token,
        state="inverted",
        expected_state="working",
        software_commit="abc1234",
        result_collection="team",
        result_path=path,
        dataset_ids=list(program.datasets.values_list("id", flat=True)),
    )
    assert response.status_code == 400, response.content
    assert reason in response.json()["errors"][field][0]
    program.refresh_from_db()
    assert program.state == State.WORKING


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expected_state": "invertible"}, "state"),
        ({"state": "done", "expected_state": "invertible"}, "state"),
        ({"state": "queued", "expected_state": "invertible", "dataset_ids": "DS1"}, "dataset_ids"),
    ],
)
def test_a_malformed_body_is_400_with_field_errors(client, inverter_token, body, field):
    program = invertible_program()
    response = client.post(
        events_url(program), body, content_type="application/json", headers=auth(inverter_token)
    )
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_a_body_that_is_not_json_is_400(client, inverter_token):
    program = invertible_program()
    response = client.post(
        events_url(program), "{", content_type="application/json", headers=auth(inverter_token)
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Cannot parse request body"}


def test_putting_back_needs_a_reason(client, inverter_token):
    program = invertible_program()
    services.queue_program(program_id=program.pk, user=inverter_token.user)
    response = post_event(client, program, inverter_token, state="invertible", expected_state="queued")
    assert response.status_code == 400
    assert response.json() == {"errors": {"reason": ["This field is required."]}}
    response = post_event(
        client, program, inverter_token, state="invertible", expected_state="queued", reason="wrong OP"
    )
    assert response.status_code == 201
    assert response.json()["details"]["reason"] == "wrong OP"


def test_a_user_without_the_role_is_403_and_nothing_changes(client, viewer_token):
    program = invertible_program()
    response = post_event(client, program, viewer_token, state="queued", expected_state="invertible")
    assert response.status_code == 403
    assert response.json() == {"detail": "Work on this next needs the inverters role."}
    program.refresh_from_db()
    assert program.state == State.INVERTIBLE


def test_an_unknown_program_is_404_for_events(client, inverter_token):
    response = client.post(
        f"{PROGRAMS}/eid_9_9_nothing/events",
        {"state": "queued", "expected_state": "invertible"},
        content_type="application/json",
        headers=auth(inverter_token),
    )
    assert response.status_code == 404


def test_a_move_that_is_not_allowed_is_409(client, inverter_token):
    program = invertible_program()
    response = post_event(client, program, inverter_token, state="published", expected_state="invertible")
    assert response.status_code == 409
    body = response.json()
    assert body["detail"] == "An observing program cannot be moved from invertible to published."
    assert body["current"]["state"] == "invertible" and body["current"]["by"] == "qualifier"


def test_acting_on_an_op_that_moved_first_is_409_naming_who_and_when(client, inverter_token):
    program = invertible_program()
    other = UserFactory(username="second", groups=["inverters"])
    services.queue_program(program_id=program.pk, user=other)
    response = post_event(client, program, inverter_token, state="queued", expected_state="invertible")
    assert response.status_code == 409
    body = response.json()
    assert body["detail"].startswith(f"{program.pk} is no longer invertible: it is queued since ")
    assert body["detail"].endswith(" UTC by second.")
    assert (body["current"]["state"], body["current"]["by"]) == ("queued", "second")
    assert body["current"]["since"].startswith(f"{events_of(program)[-1].created_at:%Y-%m-%dT%H:%M:%S.}")
    assert Inversion.objects.get().owner == other


def test_a_refusal_of_the_service_is_409(client, inverter_token, monkeypatch):
    program = invertible_program()

    def refuse(**kwargs):
        raise publication.PublishRefused("Dataset DS1 is under embargo until 2030-01-01.")

    monkeypatch.setattr(services, "queue_program", refuse)
    response = post_event(client, program, inverter_token, state="queued", expected_state="invertible")
    assert response.status_code == 409
    assert response.json()["detail"] == "Dataset DS1 is under embargo until 2030-01-01."


def test_a_note_is_an_event_in_the_same_state(client, inverter_token):
    program = invertible_program()
    response = post_event(
        client, program, inverter_token, state="invertible", expected_state="invertible", note="nice penumbra"
    )
    assert response.status_code == 201
    assert response.json()["details"] == {"note": "nice penumbra"}
    assert post_event(
        client, program, inverter_token, state="invertible", expected_state="invertible"
    ).json() == {"errors": {"note": ["This field is required."]}}


@pytest.mark.parametrize("state", [State.ERROR, State.ARCHIVED, State.GENERATED])
def test_a_note_is_allowed_in_any_state(client, inverter_token, state):
    program = program_in_state(state)
    response = post_event(client, program, inverter_token, state=state, expected_state=state, note="seen")
    assert response.status_code == 201
    assert (response.json()["from_state"], response.json()["to_state"]) == (state, state)


def test_a_stale_archive_or_note_is_409_naming_who_moved_the_program(client, staff_token, inverter_token):
    program = invertible_program()
    services.queue_program(program_id=program.pk, user=inverter_token.user)
    for token, body in [
        (staff_token, {"state": "archived", "reason": "dup"}),
        (inverter_token, {"state": "invertible", "note": "hm"}),
    ]:
        response = post_event(client, program, token, expected_state="invertible", **body)
        assert response.status_code == 409
        assert response.json()["detail"].startswith(
            f"{program.pk} is no longer invertible: it is queued since "
        )
    assert events_of(program)[-1].to_state == State.QUEUED


def test_staff_archive_and_restore(client, staff_token, inverter_token):
    program = invertible_program()
    assert (
        post_event(
            client, program, inverter_token, state="archived", expected_state="invertible", reason="dup"
        )
    ).status_code == 403
    response = post_event(
        client, program, staff_token, state="archived", expected_state="invertible", reason="dup"
    )
    assert response.status_code == 201
    wrong = post_event(client, program, staff_token, state="queued", expected_state="archived")
    assert wrong.status_code == 409
    assert wrong.json()["detail"] == "An archived program goes back to invertible only."
    response = post_event(client, program, staff_token, state="invertible", expected_state="archived")
    assert response.status_code == 201
    program.refresh_from_db()
    assert program.state == State.INVERTIBLE


def test_retry_goes_back_to_the_state_before_the_failed_step(client, inverter_token):
    program = program_in_state(State.ERROR)  # preprocessing failed
    Inversion.objects.create(program=program, owner=inverter_token.user)
    wrong = post_event(client, program, inverter_token, state="inverted", expected_state="error")
    assert wrong.status_code == 409
    assert wrong.json()["detail"] == "A failed preprocessing step is retried from queued."
    response = post_event(client, program, inverter_token, state="queued", expected_state="error")
    assert response.status_code == 201
    assert response.json()["details"]["retry"] == "preprocessing"


def test_an_unexpected_error_is_500_json_and_logged(client, inverter_token, monkeypatch, caplog):
    program = invertible_program()

    def crash(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "queue_program", crash)
    with caplog.at_level(logging.ERROR, logger="inversions.api"):
        response = post_event(client, program, inverter_token, state="queued", expected_state="invertible")
    assert response.status_code == 500
    assert response.json() == {"detail": "Something went wrong, we logged it."}
    assert "database on fire" not in response.content.decode()
    (record,) = (record for record in caplog.records if record.name == "inversions.api")
    assert f"POST /api/programs/{program.pk}/events by lead" in record.getMessage()
    assert record.exc_info[1].args == ("database on fire",)


# --- the schema and its page --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_schema_and_its_page_are_served_without_a_cdn(viewer_client):
    client = viewer_client
    schema = client.get("/api/openapi.json").json()
    assert {"/api/programs", "/api/programs/{program_id}", "/api/programs/{program_id}/events"} <= set(
        schema["paths"]
    )
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html and "cdn" not in html


# --- 50 at once -------------------------------------------------------------------------------


def test_fifty_clients_queuing_one_op_at_once_one_wins(live_server, committed_db, monkeypatch):
    # The worker's step is only sent, never run: the OP stays queued, as the winner left it.
    sent = []
    monkeypatch.setattr(tasks.preprocess, "apply_async", lambda args, *rest, **options: sent.extend(args))
    program = invertible_program()
    tokens = [
        ApiTokenFactory(user=UserFactory(username=f"inverter{n}", groups=["inverters"])) for n in range(50)
    ]
    url = f"{live_server.url}{events_url(program)}"

    def queue(token):
        body = {"state": "queued", "expected_state": "invertible"}
        return requests.post(url, json=body, headers=auth(token), timeout=60)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(queue, tokens))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 49
    (won,) = (response for response in responses if response.status_code == 201)
    winner = won.json()["actor"]
    for response in responses:
        if response.status_code == 409:
            body = response.json()
            assert body["detail"].endswith(f" UTC by {winner}.")
            assert (body["current"]["state"], body["current"]["by"]) == ("queued", winner)
    inversion = Inversion.objects.get()
    assert inversion.owner.username == winner and sent == [inversion.id]


def test_a_report_for_an_attempt_no_longer_under_way_is_409_and_changes_nothing(
    client, inverter_token, working
):
    under_way = services.open_inversion(program_id=working.pk)
    body = {
        "state": "inverted",
        "expected_state": "working",
        "software_commit": "abc1234",
        "result_collection": "team",
        "result_path": demo_team.result_path(working.pk),
        "dataset_ids": list(working.datasets.values_list("id", flat=True)),
    }

    refused = post_event(client, working, inverter_token, **body, inversion="inv.OLD123")

    assert refused.status_code == 409, refused.content
    assert f"but the attempt under way on {working.pk} is {under_way.id}" in refused.json()["detail"]
    working.refresh_from_db()
    assert working.state == State.WORKING
    assert post_event(client, working, inverter_token, **body, inversion=under_way.id).status_code == 201
