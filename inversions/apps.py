from django.apps import AppConfig


class InversionsConfig(AppConfig):
    name = "inversions"
    verbose_name = "Inversions"

    def ready(self) -> None:
        # The steps send the worker's tasks by name (inversions.steps): registered in every
        # process, a send runs the task itself where Celery runs tasks eagerly (the tests).
        from inversions import (
            checks,  # noqa: F401  (registers the system checks)
            tasks,  # noqa: F401
        )
