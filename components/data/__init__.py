"""Example data that ships with tfpipe, so that `make run` needs no download.

- digits: the UCI optical handwritten digits (1,797 8x8 grayscale images,
  pixels 0-16, 10 classes; the data set the TensorFlow chapter tfpipe grew
  from trains on), stored as `digits.csv.gz` (scikit-learn's copy, byte for
  byte: 64 pixels and the class a row) and written out as PNG files in one
  folder per class, the layout users' own image collections have. Licence:
  CC BY 4.0 (UCI ML Repository). Shipped here rather than read from
  scikit-learn, which is then no dependency of tfpipe's: installed, it is
  imported by every process that imports Keras (0.7 s of CPU of a 3.4 s
  TensorFlow import here), every step's container included.
- penguins: the Palmer Penguins table (344 penguins; numeric measurements,
  categorical island and sex, label species; missing values included), by
  Gorman, Williams and Fraser, Palmer Station LTER, released under CC0 and
  packaged as `palmerpenguins`. Stored here as `penguins.csv`.
- retraining: a subscription-churn table generated reproducibly (`churn.py`),
  one folder a day: two days of one distribution, then a day whose data
  shifted (the example of a retraining run that validation stops); and the
  labels of days 2 and 3, one file a day, each known the day after.
- reviews: short product reviews labelled positive or negative, generated
  reproducibly (`reviews.py`): the text-classification example.
"""

from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path

PENGUINS_CSV = Path(__file__).with_name("penguins.csv")
DIGITS_CSV = Path(__file__).with_name("digits.csv.gz")


def digits():
    """The digits: images (1,797 x 8 x 8, pixels 0-16, float) and their classes (ints)."""
    import numpy as np

    rows = np.loadtxt(DIGITS_CSV, delimiter=",")
    return rows[:, :-1].reshape(-1, 8, 8), rows[:, -1].astype(int)


def write_digits(folder: str | os.PathLike) -> Path:
    """Writes the digits as `<folder>/<class>/<index>.png`; a complete folder is left as it is."""
    import numpy as np
    from PIL import Image

    folder = Path(folder)
    images, targets = digits()
    if folder.is_dir() and sum(1 for _ in folder.glob("*/*.png")) == len(images):
        return folder
    stage = folder.with_name(f".{folder.name}.staging")
    shutil.rmtree(stage, ignore_errors=True)
    for index, (image, target) in enumerate(zip(images, targets, strict=True)):
        pixels = np.round(image * (255 / 16)).astype(np.uint8)  # the file holds 0..16
        path = stage / str(target) / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode="L").save(path)
    shutil.rmtree(folder, ignore_errors=True)
    stage.rename(folder)
    return folder


def write_penguins(path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PENGUINS_CSV, path)
    return path


RETRAINING_DAYS = (datetime.date(2026, 11, 1), datetime.date(2026, 11, 2), datetime.date(2026, 11, 3))


def write_retraining(root: str | os.PathLike) -> Path:
    """`<root>/<YYYY-MM-DD>/churn.csv` for the three example days, the last one shifted; and the labels of the
    days served after the first, each known a day later: `<root>/labels/<YYYY-MM-DD>.csv`."""
    from components.data import churn

    for day in RETRAINING_DAYS:
        churn.write_day(root, day, shift=day == RETRAINING_DAYS[-1])
    for day in RETRAINING_DAYS[1:]:
        churn.write_labels(Path(root) / "labels", day, shift=day == RETRAINING_DAYS[-1])
    return Path(root)


def write_reviews(path: str | os.PathLike) -> Path:
    from components.data import reviews

    return reviews.write(path)


def write_all(root: str | os.PathLike) -> dict[str, Path]:
    root = Path(root)
    return {"digits": write_digits(root / "digits"), "penguins": write_penguins(root / "penguins" / "penguins.csv"),
            "retraining": write_retraining(root / "retraining"),
            "reviews": write_reviews(root / "reviews" / "reviews.csv")}
