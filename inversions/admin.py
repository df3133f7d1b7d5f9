from django.contrib import admin, messages
from django.contrib.auth import get_user_model

from inversions.models import ApiToken, Campaign, Inversion, Transfer
from inversions.tokens import assign_secret, revoke_api_tokens


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made here (the secret is shown once, in a message) and revoked, never edited."""

    list_display = ["prefix", "user", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["prefix", "name", "user__username"]
    raw_id_fields = ["user"]
    actions = ["revoke"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            # A token acts as its user: only a superuser may make one for a superuser.
            kwargs["queryset"] = get_user_model().objects.filter(is_superuser=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name"]
        return ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["user", "prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request, obj, form, change):
        secret = None if change else assign_secret(obj)
        super().save_model(request, obj, form, change)
        if secret:
            messages.warning(
                request, f"The new token is {secret} — copy it now: it is not shown again and not stored."
            )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        revoked = revoke_api_tokens(tokens=queryset)
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)


class ViewOnlyAdmin(admin.ModelAdmin):
    """The work's records are written by the services only: admins look, never add, change or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Inversion)
class InversionAdmin(ViewOnlyAdmin):
    list_display = [
        "id",
        "program",
        "owner",
        "created_at",
        "queue_position",
        "reported_at",
        "ended_at",
        "end_reason",
    ]
    list_filter = ["end_reason", ("ended_at", admin.EmptyFieldListFilter)]
    list_select_related = ["owner", "program"]
    search_fields = ["id", "program__id", "owner__username"]


@admin.register(Transfer)
class TransferAdmin(ViewOnlyAdmin):
    list_display = [
        "id",
        "inversion",
        "step",
        "status",
        "backend",
        "task_id",
        "files_done",
        "bytes_done",
        "created_at",
    ]
    list_filter = ["step", "status", "backend"]
    search_fields = ["inversion__id", "task_id", "label"]


@admin.register(Campaign)
class CampaignAdmin(ViewOnlyAdmin):
    """Reprocessing campaigns; each one's page (View on site) lists its programs and outcomes."""

    list_display = ["id", "created_by", "created_at", "description", "status", "queued", "refused"]
    list_filter = ["status"]
    list_select_related = ["created_by"]
    search_fields = ["description", "created_by__username"]
