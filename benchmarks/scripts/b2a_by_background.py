"""Why does a digits-m CycleGAN lose the digit B→A? Split digits-m's test B by background brightness.

digits-m's B images are |photo patch − digit|: on a dark patch the digit is
light, on a bright patch it is dark. A→B maps a plain digit to one image, so
it cannot say which kind of background the B image had; the B→A→B cycle then
rewards B→A for hiding the background in its output instead of drawing the
digit. This reads each B→A translation with the bundled digits classifier and
reports the share kept for bright and for dark backgrounds apart.

    python benchmarks/scripts/b2a_by_background.py runs/cg [--backend torch]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gantool.benchmarks.quality.digits_extractor import DigitsExtractor
from gantool.data import digits_labels, digits_m_indices, load_digits_m
from gantool.runtime.translator import Translator

BORDER = 3  # pixels of each image's top and bottom rows read as its background
BRIGHT = 127.5  # mean border level above which a background counts as bright


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a digits-m CycleGAN run dir")
    parser.add_argument("--backend", default="torch")
    args = parser.parse_args()
    translator = Translator.open(args.run, args.backend, direction="b2a", device="cpu")
    _, test_b = load_digits_m(translator.spec.height, "test")
    labels = digits_labels()[digits_m_indices(len(digits_labels()), "test")[1]]
    kept = DigitsExtractor().predict(translator.translate(test_b)) == labels
    border = np.concatenate([test_b[:, :BORDER], test_b[:, -BORDER:]], axis=1).reshape(len(test_b), -1).mean(axis=1)
    bright = border > BRIGHT
    found = {
        "run": str(args.run), "images": len(test_b), "bright_share": float(bright.mean()),
        "kept_bright": float(kept[bright].mean()), "kept_dark": float(kept[~bright].mean()), "kept": float(kept.mean()),
    }  # fmt: skip
    print(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
