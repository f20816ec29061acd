"""The classical method for the digits: a support-vector machine with a Gaussian (RBF) kernel on
the raw pixels, scaled to 0-1 (Cortes and Vapnik 1995; the classifier of scikit-learn's own digits
example, and among the best non-network results on these images). The kernel compares whole
images pixel by pixel, so, like the fully connected network, it has no notion of a shift."""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import SVC

#: C of the soft margin; gamma is scikit-learn's "scale", 1 / (pixels x variance of the pixels).
C = 10.0


def fit_predict(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int = 10
) -> np.ndarray:
    """Class probabilities (N, 10) of ``test_x`` from an SVM fitted on ``train_x`` (images
    (N, 1, H, W) in 0-1); Platt scaling (a sigmoid of the SVM's decision values, fitted in
    five unshuffled folds) gives the probabilities, so the result is deterministic."""
    counts = np.bincount(train_y)
    folds = min(5, max(2, int(counts[counts > 0].min())))  # fewer for a tiny training set
    svm = CalibratedClassifierCV(SVC(C=C, gamma="scale"), ensemble=False, cv=folds)
    svm.fit(train_x.reshape(len(train_x), -1), train_y)
    probs = np.zeros((len(test_x), num_classes))
    probs[:, svm.classes_] = svm.predict_proba(test_x.reshape(len(test_x), -1))  # a class absent from
    return probs  # a small training set keeps probability 0
