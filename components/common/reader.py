"""The examples reader every step shares: tf.data input from the ingest step's TFRecord shards and schema.

Files are interleaved, records parsed a batch at a time with
`tf.io.parse_example`, images decoded, labels mapped to class indices, then
cached (when it fits), shuffled, batched and prefetched, with AUTOTUNE
parallelism throughout. Under MultiWorkerMirroredStrategy tf.data's
auto-sharding splits the batches by data across workers, so every worker runs
the same number of steps however many shards ingest wrote.

`check_examples` reads the first records against the schema before training,
so a mismatch is a clear error naming the file and feature, not a failed op
in the middle of an epoch.
"""

from __future__ import annotations

import math

import tensorflow as tf

from components.common.errors import ExamplesError
from components.common.schema import Schema, with_lists
from components.common.task import Task

AUTOTUNE = tf.data.AUTOTUNE
PARSE_BATCH = 1024
# Cache parsed examples in memory when the split's serialized size is below this.
CACHE_LIMIT_BYTES = 2 << 30


def files_of(examples: str, split: str) -> list[str]:
    files = sorted(tf.io.gfile.glob(f"{examples}/{split}/*.tfrecord.gz"))
    if not files:
        raise ExamplesError(f"{examples}/{split}: no TFRecord shards; expected {split}/data-*-of-*.tfrecord.gz "
                            "from ingest")
    return files


def label_lookup(task: Task) -> tf.lookup.StaticHashTable | None:
    if task.kind != "classification":
        return None
    keys = tf.constant(list(task.classes))
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, tf.range(len(task.classes), dtype=tf.int64)), default_value=-1)


def parser(schema: Schema, task: Task, single_input: bool):
    """A function from serialized examples to (features, label index) for a batch."""
    spec = schema.parse_spec()
    table = label_lookup(task)
    label = schema.label_feature

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        y = parsed.pop(schema.label)
        if table is not None:
            text = tf.strings.as_string(y) if label.type == "int" else y
            y = table.lookup(text)
            tf.debugging.assert_non_negative(
                y, message=f"label {schema.label!r} has a value outside the schema's classes {list(task.classes)}")
        else:
            y = tf.cast(y, tf.float32)
        for f in schema.inputs:
            if f.type == "image":
                shape = (f.image.height, f.image.width, f.image.channels)
                parsed[f.name] = tf.map_fn(
                    lambda png, c=shape[2]: tf.io.decode_png(png, channels=c), parsed[f.name],
                    fn_output_signature=tf.TensorSpec([None, None, shape[2]], tf.uint8))
                parsed[f.name] = tf.ensure_shape(parsed[f.name], (None, *shape))
            elif not f.is_list:
                parsed[f.name] = tf.reshape(parsed[f.name], [-1, 1])
        if single_input:
            return parsed[schema.inputs[0].name], y
        return parsed, y

    return parse


def dataset(examples: str, split: str, schema: Schema, task: Task, batch_size: int, *, training: bool,
            single_input: bool = False, shuffle_buffer: int = 10000, seed: int = 42) -> tf.data.Dataset:
    files = files_of(examples, split)
    ds = tf.data.Dataset.from_tensor_slices(files)
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
                       cycle_length=min(len(files), 4), num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(PARSE_BATCH).map(parser(schema, task, single_input), num_parallel_calls=AUTOTUNE).unbatch()
    if sum(tf.io.gfile.stat(f).length for f in files) * 8 < CACHE_LIMIT_BYTES:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    # Lists come out of `unbatch` as rows of different lengths, which only a ragged batch holds.
    ds = ds.ragged_batch(batch_size) if schema.has_lists else ds.batch(batch_size)
    if schema.splits.get(split):
        # Known from ingest: progress bars show the epoch's length from the start.
        ds = ds.apply(tf.data.experimental.assert_cardinality(math.ceil(schema.splits[split] / batch_size)))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.prefetch(AUTOTUNE).with_options(options)


KINDS = with_lists({"int": "int64_list", "float": "float_list", "string": "bytes_list", "text": "bytes_list",
                    "image": "bytes_list"})


def check_examples(examples: str, schema: Schema, task: Task, records: int = 64) -> None:
    """The first records of the train and eval splits against the schema: kinds, value counts, image shapes, labels."""
    for split in ("train", "eval"):
        file = files_of(examples, split)[0]
        for i, record in enumerate(tf.data.TFRecordDataset(file, compression_type="GZIP").take(records)):
            example = tf.train.Example.FromString(record.numpy())
            where = f"{file}: record {i + 1}"
            for feature in schema.features:
                if feature.name in example.features.feature:
                    _check_value(example.features.feature[feature.name], feature, where)
            _check_label(example, schema, task, where)


def _check_value(value: tf.train.Feature, feature, where: str) -> None:
    kind = value.WhichOneof("kind")
    values = getattr(value, kind).value if kind else []
    if kind != KINDS[feature.type] or (len(values) > 1 and not feature.is_list):
        expected = f"a list of {feature.element_type}" if feature.is_list else f"one {feature.type}"
        raise ExamplesError(f"{where}: feature {feature.name!r} holds {len(values)} value(s) of {kind}; the schema "
                         f"expects {expected} ({KINDS[feature.type]}); ingest again or fix schema.json")
    if feature.type == "image" and values:
        shape = tuple(tf.io.decode_image(values[0], expand_animations=False).shape)
        expected = (feature.image.height, feature.image.width, feature.image.channels)
        if shape != expected:
            raise ExamplesError(f"{where}: image {feature.name!r} is {'x'.join(map(str, shape))} (height x width x "
                             f"channels); the schema expects {'x'.join(map(str, expected))}")


def _check_label(example: tf.train.Example, schema: Schema, task: Task, where: str) -> None:
    if task.kind != "classification":
        return
    value = example.features.feature[schema.label]
    kind = value.WhichOneof("kind")
    label = getattr(value, kind).value[0] if kind and getattr(value, kind).value else None
    text = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
    if text not in task.classes:
        raise ExamplesError(f"{where}: label {schema.label!r} is {text!r}, not one of the schema's classes "
                         f"{list(task.classes)}")
