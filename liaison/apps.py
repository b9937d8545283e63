from django.apps import AppConfig


class LiaisonConfig(AppConfig):
    name = "liaison"
    verbose_name = "Liaison"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from liaison import metrics, signals  # noqa: F401  (audit hooks; metric counters)
