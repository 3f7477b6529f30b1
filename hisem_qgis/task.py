"""The dock's background task: ``workflow.run_caption`` in a QgsTask, layers added in ``finished()``.

``run()`` works in QGIS's task thread and touches neither the project nor any widget; ``finished()``
runs on the main thread and is the only place where layers are added, and only for a run that
succeeded. The caller gets the outcome through callbacks, so nobody needs to touch the task object
after it completed (QGIS deletes it).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from qgis.core import Qgis, QgsFeedback, QgsMessageLog, QgsProject, QgsTask
from qgis.PyQt.QtCore import Qt

from .backend import BackendError
from .layers import ResultError, add_result_layers
from .pairing import PairingError
from .workflow import CaptionOutcome, CaptionRequest, RunCancelled, run_caption

LOG_TAG = "HiSem"
EXPECTED_ERRORS = (BackendError, PairingError, ResultError, OSError, ValueError)


class CaptionTask(QgsTask):
    """Pair → submit → poll → GeoPackage in the background; styled layers added when it succeeded."""

    def __init__(self, request: CaptionRequest, group_name: str,
                 on_success: Callable[[CaptionOutcome], None], on_failure: Callable[[str, bool], None],
                 project: QgsProject | None = None) -> None:
        """``on_failure(message, cancelled)``; both callbacks run on the main thread."""
        super().__init__(f"HiSem: caption changes → {request.output.name}", QgsTask.Flag.CanCancel)
        self.request = request
        self.group_name = group_name
        self._on_success, self._on_failure = on_success, on_failure
        self._project = project
        self._feedback = QgsFeedback()
        self._feedback.progressChanged.connect(self.setProgress, Qt.ConnectionType.DirectConnection)
        self.outcome: CaptionOutcome | None = None
        self.error: str | None = None
        self.was_cancelled = False

    def cancel(self) -> None:
        self._feedback.cancel()  # reaches the HTTP polling loop: it sends DELETE to the backend
        super().cancel()

    def run(self) -> bool:
        try:
            self.outcome = run_caption(self.request, self._feedback)
            return True
        except RunCancelled:
            self.was_cancelled = True
        except EXPECTED_ERRORS as exc:
            self.error = str(exc)
        except Exception as exc:  # a bug must reach the user as a message, never crash QGIS
            self.error = f"unexpected error: {type(exc).__name__}: {exc}"
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.MessageLevel.Critical)
        return False

    def finished(self, result: bool) -> None:
        if result and self.outcome is not None:
            try:
                add_result_layers(self.outcome.gpkg, self._project or QgsProject.instance(), self.group_name,
                                  self.outcome.provenance)
            except Exception as exc:  # the GeoPackage is saved; say so rather than lose it
                self._on_failure(f"the result is saved in {self.outcome.gpkg} but could not be loaded: {exc}", False)
                return
            self._on_success(self.outcome)
        elif self.was_cancelled or self.isCanceled():
            self._on_failure("cancelled: nothing was added to the project", True)
        else:
            self._on_failure(self.error or "the run failed", False)
