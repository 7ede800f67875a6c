"""The MLflow "models from code" file of the scoring package.

``wildml export`` passes this file to ``mlflow.pyfunc.save_model(python_model=...)``; MLflow
copies it into the package and runs it on load, so nothing is pickled. Loading checks the
package against its manifest before any model file is read.

Works with ``mlflow.pyfunc.load_model(path).predict(frame)`` and
``mlflow models predict -m <path> --env-manager local``; pass ``params={"images_root": DIR}``
to resolve relative photo paths inside a folder.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.pyfunc import PythonModel


class WildmlScorerModel(PythonModel):
    """pyfunc wrapper around :class:`wildml.score.Scorer`."""

    def load_context(self, context) -> None:
        """Verify the package's manifest, then load its models."""
        from wildml.score import Scorer
        from wildml.score_manifest import package_digest, verify_package

        artifacts_dir = Path(context.artifacts["fuse"]).resolve().parent
        record = verify_package(artifacts_dir.parent)
        self.scorer = Scorer(artifacts_dir, digest=package_digest(record))

    # No type hints on purpose: MLflow 3 turns predict's hints into an input schema, and the
    # listing frame has optional columns that a fixed schema would reject.
    def predict(self, context, model_input, params=None):
        """Score a DataFrame of listings; returns the scored frame in input order."""
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        images_root = (params or {}).get("images_root")
        return self.scorer.score(frame, images_root=images_root)


mlflow.models.set_model(WildmlScorerModel())
