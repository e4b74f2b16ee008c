"""The portal's settings plus a bare view, for the pages benchmark only (never deployed).

portal/settings.py is read by its path: importing it as portal.settings would first import
the portal package, whose Celery app reads these very settings while they load."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "portal_settings_for_benchmarks", Path(__file__).resolve().parent.parent / "portal/settings.py"
)
_portal = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_portal)
globals().update({name: value for name, value in vars(_portal).items() if name.isupper()})

ROOT_URLCONF = "benchmarks.urls"
