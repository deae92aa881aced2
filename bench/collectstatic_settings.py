"""Settings for the harness's collectstatic step only: the app's settings, with a manifest storage
that does not follow `sourceMappingURL` comments in JavaScript.

Why: static/vendor/chartjs-4.5.1/chart.umd.min.js ends with `//# sourceMappingURL=chart.umd.min.js.map`
and the .map is not vendored, so the production storage's `collectstatic` fails (MissingFileError).
The bench runs with DEBUG=false and needs the manifest; the files and the manifest written here are
exactly what the production storage reads at run time. Remove this module once the app is fixed.
"""

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage

from config.settings import *  # noqa: F403
from config.settings import STORAGES


class LenientManifestStorage(CompressedManifestStaticFilesStorage):
    patterns = tuple((ext, pats) for ext, pats in ManifestStaticFilesStorage.patterns if ext != "*.js")


STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "bench.collectstatic_settings.LenientManifestStorage"}}
