from django.apps import AppConfig


class InversionsConfig(AppConfig):
    name = "inversions"
    verbose_name = "Inversions"

    def ready(self):
        from inversions import checks  # noqa: F401  (registers the system checks)
