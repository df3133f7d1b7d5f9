"""Errors in the layout, and each traceback written to the log once."""

from __future__ import annotations

import io
import sys

import pytest
from django.conf import settings as django_settings
from django.utils.log import configure_logging

from ops import selectors as ops_selectors


def boom(*args, **kwargs):
    raise RuntimeError("a bug of ours")


@pytest.fixture
def failing_reads(monkeypatch):
    """The proposals page and the API's list fail as a bug would."""
    monkeypatch.setattr(ops_selectors, "proposal_page", boom)
    monkeypatch.setattr(ops_selectors, "program_export", boom)


@pytest.fixture
def log_output(monkeypatch):
    """What the configured log handlers write, from Django's defaults plus LOGGING, as at startup."""
    output = io.StringIO()
    monkeypatch.setattr(sys, "stderr", output)
    configure_logging(django_settings.LOGGING_CONFIG, django_settings.LOGGING)
    yield output
    monkeypatch.undo()
    configure_logging(django_settings.LOGGING_CONFIG, django_settings.LOGGING)


def test_an_unknown_page_is_a_404_in_the_layout(staff_client):
    response = staff_client.get("/no-such-page/")
    assert response.status_code == 404
    assert "There is nothing at <code>/no-such-page/</code>" in response.text
    assert 'class="site-header"' in response.text


def test_a_bug_is_a_500_page_in_the_layout_without_details(staff_client, failing_reads):
    staff_client.raise_request_exception = False
    response = staff_client.get("/proposals/")
    assert response.status_code == 500
    assert "Something went wrong on our side, and we logged it." in response.text
    assert 'class="site-header"' in response.text
    assert "a bug of ours" not in response.text


@pytest.mark.parametrize("url", ["/proposals/", "/api/programs"])
@pytest.mark.parametrize("debug", [True, False])
def test_each_traceback_is_logged_once(staff_client, failing_reads, log_output, settings, url, debug):
    settings.DEBUG = debug  # Django's own console handler writes only with DEBUG on
    staff_client.raise_request_exception = False
    assert staff_client.get(url).status_code == 500
    assert log_output.getvalue().count("Traceback (most recent call last)") == 1
    assert "RuntimeError: a bug of ours" in log_output.getvalue()
