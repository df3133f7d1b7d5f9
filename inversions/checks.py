"""System checks (``manage.py check``) of the inversions app's settings."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

from inversions.globus_login import allowed_domains, allowed_identities


@register(Tags.security)
def globus_login_needs_an_allow_list(app_configs, **kwargs):
    configured = settings.GLOBUS_LOGIN_CLIENT_ID and settings.GLOBUS_LOGIN_CLIENT_SECRET
    if configured and not (allowed_domains() or allowed_identities()):
        return [
            Warning(
                "Globus login is off: GLOBUS_LOGIN_CLIENT_ID is set but no allow-list is, and without "
                "one any Globus account could log in.",
                hint="Set LEVEL2_GLOBUS_ALLOWED_DOMAINS (e.g. nso.edu) and/or "
                "LEVEL2_GLOBUS_ALLOWED_IDENTITIES (Globus usernames or identity ids), comma-separated.",
                id="inversions.W001",
            )
        ]
    return []
