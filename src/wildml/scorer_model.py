"""The MLflow "models from code" file of the scoring package.

``wildml export`` passes this file to ``mlflow.pyfunc.save_model(python_model=...)``; MLflow
copies it into the package and runs it on load, so nothing is pickled. Loading checks the
package against its manifest before any model file is read.

Works with ``mlflow.pyfunc.load_model(path).predict(frame)`` and
``mlflow models predict -m <path> --env-manager local``. Parameters (declared in the package's
signature): ``images_root`` resolves relative photo paths inside a folder, and
``mark_duplicates=False`` scores repeated listings each on its own.
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

        # Known limitation: MLflow runs this file from the package itself, so the check below
        # catches damaged or edited model files and sources, but not someone who rewrites this
        # file (or its bytecode cache) to skip it. `wildml score` and `wildml.load_scorer`
        # verify with the installed wildml instead: use one of them on a package from elsewhere.
        artifacts_dir = Path(context.artifacts["fuse"]).resolve().parent
        record = verify_package(artifacts_dir.parent)
        self.scorer = Scorer(artifacts_dir, digest=package_digest(record))

    # No type hints on purpose: MLflow 3 turns predict's hints into an input schema, and the
    # listing frame has optional columns that a fixed schema would reject.
    def predict(self, context, model_input, params=None):
        """Score a DataFrame of listings; returns the scored frame in input order."""
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        params = params or {}
        return self.scorer.score(
            frame,
            images_root=params.get("images_root") or None,
            mark_duplicates=bool(params.get("mark_duplicates", True)),
        )


mlflow.models.set_model(WildmlScorerModel())
