from django.contrib import admin

from ops.models import (
    Dataset,
    Experiment,
    InstrumentProgram,
    ObservingProgram,
    ProgramEvent,
    Proposal,
    Scan,
    ScanError,
)
from ops.states import State


@admin.register(Proposal)
class ProposalAdmin(admin.ModelAdmin):
    list_display = ["id", "cycle", "number"]
    search_fields = ["id"]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["id", "cycle", "number"]
    search_fields = ["id", "description"]


class CurrentStateFilter(admin.SimpleListFilter):
    title = "current state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return State.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(state=self.value())
        return queryset


@admin.register(ObservingProgram)
class ObservingProgramAdmin(admin.ModelAdmin):
    list_display = ["id", "proposal", "experiment", "current_state", "dataset_count", "first_seen_at"]
    list_filter = [CurrentStateFilter]
    list_select_related = ["current_event"]
    search_fields = ["id", "proposal__id", "experiment__id"]
    readonly_fields = ["state", "current_event", "first_seen_at"]
    raw_id_fields = ["proposal", "experiment"]
    show_full_result_count = False

    @admin.display(description="state", ordering="state")
    def current_state(self, program: ObservingProgram) -> str:
        return program.state or "—"


@admin.register(InstrumentProgram)
class InstrumentProgramAdmin(admin.ModelAdmin):
    list_display = ["id", "instrument", "program"]
    list_filter = ["instrument"]
    search_fields = ["id", "program__id"]
    raw_id_fields = ["program"]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["id", "instrument_name", "program", "create_date", "update_date", "vanished_at"]
    list_filter = ["instrument_name", "stokes_parameters"]
    search_fields = ["id", "program__id", "instrument_program__id"]
    raw_id_fields = ["instrument_program", "program", "proposal"]
    show_full_result_count = False


class ScanErrorInline(admin.TabularInline):
    model = ScanError
    extra = 0
    can_delete = False
    readonly_fields = ["record", "message", "created_at"]


@admin.register(Scan)
class ScanAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "status",
        "trigger",
        "started_at",
        "finished_at",
        "new_count",
        "changed_count",
        "vanished_count",
        "error_count",
    ]
    list_filter = ["status", "trigger"]
    inlines = [ScanErrorInline]


@admin.register(ProgramEvent)
class ProgramEventAdmin(admin.ModelAdmin):
    """Read-only: the history is append-only and written by ops.history alone."""

    list_display = ["id", "program", "from_state", "to_state", "actor_kind", "actor_user", "created_at"]
    list_filter = ["to_state", "actor_kind"]
    search_fields = ["program__id"]
    list_select_related = ["actor_user"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
