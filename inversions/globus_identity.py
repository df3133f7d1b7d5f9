"""Which user a Globus identity logs in as (imported by inversions.models)."""

from django.conf import settings
from django.db import models


class GlobusIdentity(models.Model):
    """A user who logs in with Globus, keyed by Globus Auth's ``sub``: the account's primary
    identity id, which never changes (its username may)."""

    sub = models.UUIDField(unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="globus_identity"
    )
    # Globus's preferred_username as of the last login, for admins to recognise the person.
    username = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "inversions"
        verbose_name = "Globus identity"
        verbose_name_plural = "Globus identities"

    def __str__(self) -> str:
        return self.username
