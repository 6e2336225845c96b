"""hpstudy: Optuna-driven hyperparameter studies for YOLO detectors, image classifiers and your own model.

One import namespace: ``hpstudy.studies`` (spec -> study -> worker, inspection), ``hpstudy.objectives``
(training backends, one descriptor each) and ``hpstudy.storage`` (where studies live). Importing this
package imports no training library.
"""

from __future__ import annotations

__version__ = "0.2.0"

__all__ = ["__version__"]
