from django.apps import AppConfig


class InversionsConfig(AppConfig):
    name = "inversions"
    verbose_name = "Inversions"
