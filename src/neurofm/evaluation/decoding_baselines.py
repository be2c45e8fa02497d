"""Decoding baselines, fitted on the train split only: :func:`majority_class` (chance) and
:class:`BandPowerLDA` (log band-power features, scikit-learn's shrinkage linear discriminant
analysis, :func:`shrinkage_lda`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from neurofm.evaluation.metrics import _as_numpy
from neurofm.evaluation.realism import band_power


def majority_class(train_labels: Any) -> int:
    """The most frequent train label (ties: the smallest); the chance-level decoder."""
    labels = _as_numpy(train_labels).astype(np.int64)
    values, counts = np.unique(labels, return_counts=True)
    return int(values[np.argmax(counts)])


def shrinkage_lda(*steps: Any) -> Any:
    """A scikit-learn pipeline: ``steps``, then :class:`~sklearn.preprocessing.StandardScaler`
    (features standardised on train), then ``LinearDiscriminantAnalysis(solver="lsqr",
    shrinkage="auto")`` (Ledoit-Wolf shrinkage of the within-class covariances)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    return make_pipeline(*steps, StandardScaler(), lda)


class BandPowerLDA:
    """Log band-power features per channel + shrinkage LDA (:func:`shrinkage_lda`: features
    standardised on train, scikit-learn's LDA with Ledoit-Wolf shrinkage).

    Parameters
    ----------
    sfreq : float
        Sampling frequency (Hz) of the windows.

    Attributes after :meth:`fit`: ``pipeline`` (the fitted scikit-learn pipeline), ``classes``
    (the train classes, sorted) and ``shrinkage`` (the Ledoit-Wolf coefficients the LDA used for
    each class's covariance, averaged with the class frequencies as weights).
    """

    name = "band_power_lda"

    def __init__(self, sfreq: float) -> None:
        self.sfreq = float(sfreq)

    def features(self, x: Any) -> np.ndarray:
        """``(N, C * n_bands)`` log10 band powers of windows ``(N, C, T)``."""
        power, _ = band_power(_as_numpy(x), self.sfreq)
        return np.log10(power + 1e-30).reshape(power.shape[0], -1)

    def fit(self, x: Any, labels: Any) -> BandPowerLDA:
        from sklearn.covariance import ledoit_wolf_shrinkage
        from sklearn.preprocessing import StandardScaler

        feats = self.features(x)
        y = _as_numpy(labels).astype(np.int64)
        if np.unique(y).size < 2:
            raise ValueError("BandPowerLDA: the train labels hold a single class")
        self.pipeline = shrinkage_lda().fit(feats, y)
        self.classes = self.pipeline.classes_
        scaler, lda = self.pipeline[0], self.pipeline[-1]
        z = scaler.transform(feats)
        # LinearDiscriminantAnalysis(shrinkage="auto") shrinks each class's covariance of its
        # standardised features with the Ledoit-Wolf coefficient; report their weighted mean
        per_class = [
            ledoit_wolf_shrinkage(StandardScaler().fit_transform(z[y == k])) for k in self.classes
        ]
        self.shrinkage = float(np.dot(lda.priors_, per_class))
        return self

    def predict(self, x: Any) -> np.ndarray:
        """Predicted class of each window ``(N, C, T)``."""
        return self.pipeline.predict(self.features(x))

    def predict_log_proba(self, x: Any) -> np.ndarray:
        """``(N, n_train_classes)`` natural-log LDA posteriors, columns in ``classes`` order."""
        return self.pipeline.predict_log_proba(self.features(x))
