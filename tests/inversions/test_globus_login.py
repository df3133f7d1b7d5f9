"""Logging in with Globus, against a local HTTP server standing in for Globus Auth (token
endpoint, OpenID configuration and signing key) through GLOBUS_SDK_SERVICE_URL_AUTH."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.urls import include, path, reverse
from werkzeug import Request, Response

from inversions.globus_identity import GlobusIdentity
from level2.urls import urlpatterns as project_urlpatterns
from tests.factories import UserFactory

# Until level2/urls.py includes them, the Globus URLs beside the project's.
urlpatterns = [path("accounts/globus/", include("inversions.globus_urls")), *project_urlpatterns]
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]

LOGIN_CLIENT_ID = "9b0c3d3e-2222-4b4b-8c8c-000000000002"
LOGIN_CLIENT_SECRET = "the-login-secret"
SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ALICE = {
    "sub": "0d3bd5a4-7e1f-4cc4-b00b-4b4b4b4b4b4b",
    "preferred_username": "alice@nso.edu",
    "email": "alice@nso.edu",
    "name": "Alice Inverter",
}


@dataclass
class FakeGlobusAuth:
    """Globus Auth's side of the authorization-code flow: one ID token per code."""

    base_url: str
    issued_codes: dict[str, dict] = field(default_factory=dict)  # code → the claims of its login

    def handle(self, request: Request) -> Response:
        if request.path == "/auth/.well-known/openid-configuration":
            return _json(
                {
                    "issuer": self.base_url,
                    "jwks_uri": f"{self.base_url}jwk.json",
                    "id_token_signing_alg_values_supported": ["RS512"],
                }
            )
        if request.path == "/auth/jwk.json":
            return _json({"keys": [json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(SIGNING_KEY.public_key()))]})
        if request.path == "/auth/v2/oauth2/token":
            return self._token(request)
        return _json({"error": "not_found"}, 404)

    def _token(self, request: Request) -> Response:
        expected = base64.b64encode(f"{LOGIN_CLIENT_ID}:{LOGIN_CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _json({"error": "invalid_client"}, 401)
        claims = self.issued_codes.pop(request.form.get("code", ""), None)
        if request.form.get("grant_type") != "authorization_code" or claims is None:
            return _json({"error": "invalid_grant"}, 400)
        now = int(time.time())
        id_token = jwt.encode(
            {**claims, "iss": self.base_url, "aud": LOGIN_CLIENT_ID, "iat": now, "exp": now + 600},
            SIGNING_KEY,
            algorithm="RS512",
        )
        return _json(
            {
                "access_token": "user-access-token-never-kept",
                "expires_in": 172800,
                "resource_server": "auth.globus.org",
                "scope": "openid profile email",
                "token_type": "Bearer",
                "id_token": id_token,
                "other_tokens": [],
            }
        )


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


@pytest.fixture
def globus_auth(httpserver, monkeypatch, settings) -> FakeGlobusAuth:
    fake = FakeGlobusAuth(base_url=httpserver.url_for("/auth/"))
    httpserver.expect_request(re.compile(".*")).respond_with_handler(fake.handle)
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", fake.base_url)
    settings.GLOBUS_LOGIN_CLIENT_ID = LOGIN_CLIENT_ID
    settings.GLOBUS_LOGIN_CLIENT_SECRET = LOGIN_CLIENT_SECRET
    settings.LEVEL2_GLOBUS_ALLOWED_DOMAINS = ["nso.edu"]
    settings.LEVEL2_GLOBUS_ALLOWED_IDENTITIES = []
    return fake


def start_login(client, *, next_url: str = "") -> str:
    """Follow "Log in with Globus" up to Globus Auth; returns the state it was sent."""
    response = client.get("/accounts/globus/login/", {"next": next_url} if next_url else {})
    assert response.status_code == 302
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


def log_in(client, globus_auth, claims: dict, *, next_url: str = ""):
    """Log in as Globus would: start, let Globus issue a code, come back with it."""
    state = start_login(client, next_url=next_url)
    code = f"code-{len(globus_auth.issued_codes)}-{claims['sub'][:4]}"
    globus_auth.issued_codes[code] = claims
    return client.get("/accounts/globus/login/callback/", {"code": code, "state": state})


def test_start_sends_the_browser_to_globus_auth(client, globus_auth):
    response = client.get("/accounts/globus/login/")

    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert (
        f"{location.scheme}://{location.netloc}{location.path}"
        == f"{globus_auth.base_url}v2/oauth2/authorize"
    )
    assert query["client_id"] == [LOGIN_CLIENT_ID]
    assert query["redirect_uri"] == ["http://testserver/accounts/globus/login/callback/"]
    assert query["scope"] == ["openid profile email urn:globus:auth:scope:auth.globus.org:view_identity_set"]
    assert query["response_type"] == ["code"]
    assert query["state"] == [client.session["globus_login_state"]]


def test_first_login_creates_a_user_the_next_one_finds_it(client, globus_auth, httpserver):
    response = log_in(client, globus_auth, ALICE, next_url="/work/")

    assert (response.status_code, response["Location"]) == (302, "/work/")
    user = get_user_model().objects.get(globus_identity__sub=ALICE["sub"])
    assert (user.username, user.email, user.has_usable_password()) == (
        "alice@nso.edu",
        "alice@nso.edu",
        False,
    )
    assert not user.groups.exists() and not user.is_staff  # roles are granted by staff
    assert client.session["_auth_user_id"] == str(user.pk)
    assert "user-access-token-never-kept" not in json.dumps(dict(client.session.items()))

    client.logout()
    renamed = {**ALICE, "preferred_username": "alice.inverter@nso.edu"}
    response = log_in(client, globus_auth, renamed)

    assert (response.status_code, response["Location"]) == (302, reverse("board"))
    assert client.session["_auth_user_id"] == str(user.pk)
    assert get_user_model().objects.count() == 1
    assert GlobusIdentity.objects.get().username == "alice.inverter@nso.edu"
    token_requests = [request for request, _ in httpserver.log if request.path == "/auth/v2/oauth2/token"]
    assert [request.form["grant_type"] for request in token_requests] == ["authorization_code"] * 2


def test_a_local_account_with_the_same_name_is_not_taken_over(client, globus_auth):
    local = UserFactory(username="alice@nso.edu")

    log_in(client, globus_auth, ALICE)

    user = GlobusIdentity.objects.get(sub=ALICE["sub"]).user
    assert user != local
    assert user.username == "alice@nso.edu-0d3bd5a4"


def test_state_mismatch_is_refused(client, globus_auth, httpserver):
    start_login(client)
    globus_auth.issued_codes["stolen-code"] = ALICE

    response = client.get("/accounts/globus/login/callback/", {"code": "stolen-code", "state": "forged"})

    assert response.status_code == 403
    assert "could not be checked" in response.text
    assert "_auth_user_id" not in client.session
    assert not get_user_model().objects.exists()
    assert not [request for request, _ in httpserver.log if request.path == "/auth/v2/oauth2/token"]


def test_a_callback_without_a_login_started_is_refused(client, globus_auth):
    response = client.get("/accounts/globus/login/callback/", {"code": "some-code", "state": "some-state"})

    assert response.status_code == 403


def test_identity_from_a_disallowed_domain_is_refused(client, globus_auth, settings):
    settings.LEVEL2_GLOBUS_ALLOWED_DOMAINS = ["nso.edu"]
    outsider = {**ALICE, "sub": "1f1f1f1f-0000-4000-8000-000000000001", "preferred_username": "eve@gmail.com"}

    response = log_in(client, globus_auth, outsider)

    assert response.status_code == 403
    assert "eve@gmail.com is not allowed: Level 2 accepts identities from nso.edu only" in response.text
    assert not get_user_model().objects.exists()


def test_a_linked_identity_from_an_allowed_domain_is_enough(client, globus_auth, settings):
    settings.LEVEL2_GLOBUS_ALLOWED_DOMAINS = ["NSO.edu"]
    linked = {
        **ALICE,
        "preferred_username": "alice@orcid.org",
        "identity_set": [{"sub": ALICE["sub"], "username": "alice@orcid.org"}, {"username": "alice@nso.edu"}],
    }

    response = log_in(client, globus_auth, linked)

    assert response.status_code == 302
    assert GlobusIdentity.objects.get().user.username == "alice@orcid.org"


@pytest.mark.parametrize("allowed", ["alice@orcid.org", "ALICE@ORCID.ORG", ALICE["sub"]])
def test_single_identities_may_be_allowed_by_username_or_id(client, globus_auth, settings, allowed):
    settings.LEVEL2_GLOBUS_ALLOWED_DOMAINS = []
    settings.LEVEL2_GLOBUS_ALLOWED_IDENTITIES = [allowed]
    orcid = {**ALICE, "preferred_username": "alice@orcid.org"}
    assert log_in(client, globus_auth, orcid).status_code == 302
    client.logout()
    other = {**ALICE, "sub": "1f1f1f1f-0000-4000-8000-000000000001", "preferred_username": "bob@orcid.org"}
    response = log_in(client, globus_auth, other)
    assert response.status_code == 403
    assert "accepts the identities its admins named only" in response.text


@pytest.mark.parametrize("setting", ["LEVEL2_GLOBUS_ALLOWED_DOMAINS", "LEVEL2_GLOBUS_ALLOWED_IDENTITIES"])
def test_without_an_allow_list_globus_login_is_off_and_the_checks_say_so(
    client, globus_auth, settings, setting
):
    settings.LEVEL2_GLOBUS_ALLOWED_DOMAINS = []
    assert client.get("/accounts/globus/login/").status_code == 404
    assert client.get("/accounts/globus/login/callback/", {"code": "c", "state": "s"}).status_code == 404
    assert "Log in with Globus" not in client.get("/accounts/login/").text
    (warning,) = [message for message in run_checks() if message.id == "inversions.W001"]
    assert "Globus login is off" in warning.msg and "LEVEL2_GLOBUS_ALLOWED_DOMAINS" in warning.hint
    setattr(settings, setting, ["nso.edu"])
    assert not [message for message in run_checks() if message.id == "inversions.W001"]
    assert client.get("/accounts/globus/login/").status_code == 302


def test_an_account_globus_login_makes_has_no_role_and_sees_whom_to_ask(client, globus_auth):
    response = log_in(client, globus_auth, ALICE)
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 403 and "has no role in Level 2 yet" in page.text


def test_allowed_domains_are_asked_of_globus(client, globus_auth, settings):
    settings.LEVEL2_GLOBUS_ALLOWED_DOMAINS = ["nso.edu"]

    response = client.get("/accounts/globus/login/")

    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["session_required_single_domain"] == ["nso.edu"]
    assert "urn:globus:auth:scope:auth.globus.org:view_identity_set" in query["scope"][0]


def test_login_page_offers_globus_when_configured(client, globus_auth, settings):
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "OPTIONS": {
                "context_processors": [
                    *settings.TEMPLATES[0]["OPTIONS"]["context_processors"],
                    "inversions.globus_login.login_options",
                ]
            },
        }
    ]

    page = client.get("/accounts/login/?next=/work/").text
    assert 'href="/accounts/globus/login/?next=/work/"' in page
    assert 'name="password"' in page  # Django's own form stays

    settings.GLOBUS_LOGIN_CLIENT_ID = ""
    assert "Log in with Globus" not in client.get("/accounts/login/").text
    assert client.get("/accounts/globus/login/").status_code == 404
