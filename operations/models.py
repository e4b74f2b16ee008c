"""What the processes leave behind for operators: when each periodic sweep last ran."""

from django.db import models


class Heartbeat(models.Model):
    """One row per periodic task, its time rewritten each time a worker finishes it: the
    web's /readyz and /metrics read it, so it lives in the database every process shares."""

    name = models.CharField(max_length=200, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
