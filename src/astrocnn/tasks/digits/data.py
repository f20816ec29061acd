"""scikit-learn's handwritten digits, padded so that a shift moves the digit inside the frame.

The images are the UCI optical-recognition digits (Alpaydin and Kaynak 1998) that scikit-learn
ships inside the package (``sklearn.datasets.load_digits``, nothing downloaded): 1797 digits
written by 43 people, scanned, and block-summed to 8 x 8 pixels of 17 grey levels (0-16). Each
digit fills its 8 x 8 box, so a shifted digit would leave it: here every image sits in the middle
of a zero-padded ``SIZE`` x ``SIZE`` frame with ``MARGIN`` pixels of blank paper on each side, and
a shift of up to ``MARGIN`` pixels keeps the whole digit in view.

The train / validation / test partition is one permutation of the 1797 images drawn from
``split_seed``: fixed, whatever seed a run trains with, so that runs and ``astrocnn compare``'s
seeds share one test set.
"""

from __future__ import annotations

import functools

import numpy as np

SIZE = 16  # pixels per side of the padded frame
DIGIT = 8  # pixels per side of the scanned digit
MARGIN = (SIZE - DIGIT) // 2
LEVELS = 16  # the brightest grey level
#: Images in the training, validation and test parts (the test part takes the rest).
PARTS = {"train": 1000, "val": 250, "test": 547}


@functools.cache
def load() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits, padded: images (N, 1, SIZE, SIZE) float32 in grey levels 0-16, and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.zeros((len(digits.images), 1, SIZE, SIZE), dtype=np.float32)
    images[:, 0, MARGIN : MARGIN + DIGIT, MARGIN : MARGIN + DIGIT] = digits.images
    images.flags.writeable = False  # cached: shared by every caller
    return images, digits.target.astype(np.int64)


def partition(split_seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of the images in each part: disjoint, covering all of them, fixed by ``split_seed``."""
    order = np.random.default_rng(split_seed).permutation(sum(PARTS.values()))
    bounds = np.cumsum(list(PARTS.values()))[:-1]
    return dict(zip(PARTS, np.split(order, bounds), strict=True))
