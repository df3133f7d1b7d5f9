from django.apps import AppConfig


class InversionsConfig(AppConfig):
    name = "inversions"
    verbose_name = "Inversions"

    def ready(self) -> None:
        # checks: registers the system checks. tasks: the steps send them by name
        # (inversions.steps); registered in every process, a send runs the task itself where
        # Celery runs tasks eagerly (the tests). stale: receives the scan's datasets_changed,
        # wherever a scan runs (the worker, manage.py scan).
        from inversions import checks, stale, tasks  # noqa: F401
