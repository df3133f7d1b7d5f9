"""The Content-Security-Policy header (level2/settings.py SECURE_CSP) on every answer."""

import pytest

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/programs/", "/api/docs"])
def test_no_inline_script_no_eval_no_javascript_urls(viewer_client, path):
    policy = directives(viewer_client.get(path))
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline': no inline script, no javascript: URL
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["style-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]


def test_the_layout_loads_its_scripts_from_files(viewer_client):
    html = viewer_client.get("/").content.decode()
    assert "<script>" not in html and " hx-on" not in html and "javascript:" not in html
    assert '"allowEval": false' in html and '"includeIndicatorStyles": false' in html
