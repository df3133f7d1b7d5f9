"""The Scans pages: list with live progress, "Scan now" for staff, detail with errors."""

import datetime as dt

import pytest
from django.urls import reverse

from level2.celery import app as celery_app
from ops.models import Scan, ScanError
from tests.factories import ScanFactory
from tests.ops.metadata.store import dataset_record

SCANS = reverse("ops:scan-list")
START = reverse("ops:scan-start")


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_pages_need_a_login(client, db):
    scan = ScanFactory()
    for url in [SCANS, reverse("ops:scan-detail", args=[scan.pk])]:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"]
    assert client.post(START).status_code == 302
    assert not Scan.objects.exclude(pk=scan.pk).exists()


def test_the_list_shows_each_scan_with_its_counts(viewer_client, db):
    ScanFactory(
        status=Scan.Status.SUCCEEDED, new_count=7, changed_count=3, unchanged_count=90, vanished_count=2
    )
    ScanFactory(status=Scan.Status.FAILED, message="The scan stopped: HTTP 503")

    response = viewer_client.get(SCANS)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<td>7</td>" in html and "<td>3</td>" in html and "<td>90</td>" in html and "<td>2</td>" in html
    assert "The scan stopped: HTTP 503" in html
    assert 'hx-trigger="every 2s"' not in html  # nothing runs: no polling
    assert "Scan now" not in html  # viewers cannot start scans
    assert f'href="{SCANS}"' in html  # the nav link


def test_a_running_scan_shows_progress_and_the_table_polls_until_it_finishes(viewer_client, db):
    scan = ScanFactory(status=Scan.Status.RUNNING, proposals_total=40, proposals_done=10)

    page = viewer_client.get(SCANS).content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert '<progress value="10" max="40">' in page and "10 of 40 proposals" in page

    partial = viewer_client.get(SCANS, headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith("<div") and "<html" not in partial
    assert 'hx-trigger="every 2s"' in partial

    Scan.objects.filter(pk=scan.pk).update(status=Scan.Status.SUCCEEDED, proposals_done=40)
    partial = viewer_client.get(SCANS, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 2s"' not in partial and "<progress" not in partial


def test_the_detail_page_lists_errors_with_their_records(viewer_client, db):
    scan = ScanFactory(status=Scan.Status.SUCCEEDED, error_count=2)
    ScanError.objects.create(
        scan=scan, record="AAAAB", message="dataset AAAAB: frameCount is 'many', not a count"
    )
    ScanError.objects.create(scan=scan, record="pid_2_7", message="HTTP 500")

    response = viewer_client.get(reverse("ops:scan-detail", args=[scan.pk]))

    html = response.content.decode()
    assert "<code>AAAAB</code>" in html and "frameCount is &#x27;many&#x27;, not a count" in html
    assert "<code>pid_2_7</code>" in html
    assert viewer_client.get(reverse("ops:scan-detail", args=[scan.pk + 1])).status_code == 404


def test_the_detail_page_says_what_the_scan_listed(viewer_client, db):
    full = ScanFactory(status=Scan.Status.SUCCEEDED)
    changes = ScanFactory(
        status=Scan.Status.SUCCEEDED, listed_since=dt.datetime(2026, 12, 6, 13, 16, 14, 500, tzinfo=dt.UTC)
    )

    def listed(scan):
        html = viewer_client.get(reverse("ops:scan-detail", args=[scan.pk])).content.decode()
        return html.split("<dt>Listed</dt><dd>")[1].split("</dd>")[0]

    assert listed(full) == "Every dataset"
    assert listed(changes) == (
        "The datasets created or updated since 2026-12-06 13:16:14 UTC, and earlier errors"
    )


def test_the_detail_summary_polls_while_running(viewer_client, db):
    scan = ScanFactory(status=Scan.Status.RUNNING, proposals_total=4, proposals_done=1)
    url = reverse("ops:scan-detail", args=[scan.pk])

    partial = viewer_client.get(url, headers={"HX-Request": "true"}).content.decode()

    assert partial.lstrip().startswith('<div id="scan-summary"') and 'hx-trigger="every 2s"' in partial
    assert "1 of 4 proposals" in partial


def test_staff_scan_now_runs_a_scan(
    staff_client, staff_user, metadata_store, eager_celery, django_capture_on_commit_callbacks
):
    metadata_store.add(dataset_record("AAAAA"))
    assert "Scan now" in staff_client.get(SCANS).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(START, follow=True)

    (scan,) = Scan.objects.all()
    assert (scan.trigger, scan.triggered_by, scan.status, scan.new_count) == (
        "button",
        staff_user,
        "succeeded",
        1,
    )
    assert f"Scan {scan.pk} started." in response.content.decode()


def test_scan_now_while_a_scan_runs_says_so(staff_client, db, django_capture_on_commit_callbacks):
    ScanFactory(status=Scan.Status.RUNNING)

    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_client.post(START, follow=True)

    assert "A scan is already running" in response.content.decode()
    assert Scan.objects.count() == 1 and callbacks == []


def test_viewers_cannot_start_a_scan(viewer_client, db):
    assert viewer_client.post(START).status_code == 403
    assert not Scan.objects.exists()


def test_scan_now_is_post_only(staff_client, db):
    assert staff_client.get(START).status_code == 405
