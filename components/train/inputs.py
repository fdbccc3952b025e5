"""tf.data input from the ingest step's TFRecord shards and schema.

Files are interleaved, records parsed a batch at a time with
`tf.io.parse_example`, images decoded, labels mapped to class indices, then
cached (when it fits), shuffled, batched and prefetched, with AUTOTUNE
parallelism throughout. Under MultiWorkerMirroredStrategy the dataset is
sharded by data across workers (tf.data's auto-sharding).
"""

from __future__ import annotations

import tensorflow as tf

from components.common.schema import Schema
from components.train.task import Task, TrainError

AUTOTUNE = tf.data.AUTOTUNE
PARSE_BATCH = 1024
# Cache parsed examples in memory when the split's serialized size is below this.
CACHE_LIMIT_BYTES = 2 << 30


def files_of(examples: str, split: str) -> list[str]:
    files = sorted(tf.io.gfile.glob(f"{examples}/{split}/*.tfrecord.gz"))
    if not files:
        raise TrainError(f"{examples}/{split}: no TFRecord shards; expected {split}/data-*-of-*.tfrecord.gz from ingest")
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
            else:
                parsed[f.name] = tf.reshape(parsed[f.name], [-1, 1])
        if single_input:
            return parsed[schema.inputs[0].name], y
        return parsed, y

    return parse


def dataset(examples: str, split: str, schema: Schema, task: Task, batch_size: int, *, training: bool,
            single_input: bool = False, shuffle_buffer: int = 10000, seed: int = 42,
            input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    files = files_of(examples, split)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None and input_context.num_input_pipelines > 1:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id) \
            if len(files) >= input_context.num_input_pipelines else ds
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
                       cycle_length=min(len(files), 4), num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(PARSE_BATCH).map(parser(schema, task, single_input), num_parallel_calls=AUTOTUNE).unbatch()
    if sum(tf.io.gfile.stat(f).length for f in files) * 8 < CACHE_LIMIT_BYTES:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(AUTOTUNE)
