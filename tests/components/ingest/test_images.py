"""Image folders: class sub-folders of PNG / JPEG files -> PNG bytes of one shape, class-name labels."""


import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.common.config import ImageOptions, IngestConfig
from components.common.schema import Schema
from components.data import digits, write_digits
from components.ingest import run
from tests.conftest import read_examples


def save(path, array, fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def test_digits_folder_round_trip(tmp_path):
    folder = write_digits(tmp_path / "digits")
    out = tmp_path / "out"
    result = run(IngestConfig(source=str(folder)), str(out))
    assert result.rows == 1797
    assert result.rejected == 0
    schema = Schema.read(str(out))
    image = schema.feature("image")
    assert (image.type, image.image.height, image.image.width, image.image.channels) == ("image", 8, 8, 1)
    assert schema.label_feature.type == "string"
    assert sorted(schema.label_feature.vocabulary) == [str(i) for i in range(10)]
    examples = read_examples(out)
    first = examples["train"]
    decoded = tf.io.decode_png(first["image"][0]).numpy()
    assert decoded.shape == (8, 8, 1)
    # Pixels are the files' pixels.
    from sklearn.datasets import load_digits  # the file tfpipe ships is scikit-learn's copy

    images, targets = digits()
    reference = load_digits()
    assert (images == reference.images).all()
    assert (targets == reference.target).all()
    label = int(first["label"][0])
    candidates = np.round(images[targets == label] * 255 / 16).astype(np.uint8)
    assert any((c == decoded[..., 0]).all() for c in candidates)


def test_rgb_jpeg_resize_and_grayscale(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        for i in range(6):
            save(tmp_path / "img" / cls / f"{i}.jpg", rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8), "JPEG")
    out = tmp_path / "out"
    run(IngestConfig(source=str(tmp_path / "img"), image=ImageOptions(size=(16, 12))), str(out))
    image = Schema.read(str(out)).feature("image").image
    assert (image.height, image.width, image.channels) == (16, 12, 3)
    run(IngestConfig(source=str(tmp_path / "img"), image=ImageOptions(size=(16, 12), grayscale=True)), str(out))
    assert Schema.read(str(out)).feature("image").image.channels == 1
    decoded = tf.io.decode_png(read_examples(out)["train"]["image"][0]).numpy()
    assert decoded.shape == (16, 12, 1)


def test_unreadable_and_odd_sized_images_are_rejected(tmp_path):
    for i in range(20):
        save(tmp_path / "img" / "a" / f"{i}.png", np.full((8, 8), i, dtype=np.uint8))
    save(tmp_path / "img" / "b" / "big.png", np.zeros((9, 8), dtype=np.uint8))
    (tmp_path / "img" / "b" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    result = run(IngestConfig(source=str(tmp_path / "img"), max_rejected_fraction=0.2), str(out))
    assert result.rows == 20
    assert result.rejected == 2
    import json

    rows = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    reasons = {row["raw"]: row["reason"] for row in rows}
    assert reasons["b/big.png"] == "image is 9x8, expected 8x8 (set ingest.image.size to resize every image)"
    assert reasons["b/broken.png"].startswith("unreadable image")


def test_folder_without_classes(tmp_path):
    (tmp_path / "img").mkdir()
    from components.ingest.sources import SourceError

    with pytest.raises(SourceError, match="holds no data files"):
        run(IngestConfig(source=str(tmp_path / "img")), str(tmp_path / "out"))
    with pytest.raises(SourceError, match="has no class sub-folders"):
        run(IngestConfig(source=str(tmp_path / "img"), format="images"), str(tmp_path / "out"))
