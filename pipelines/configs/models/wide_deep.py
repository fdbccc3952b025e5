"""A wide & deep classifier with a deep & cross tower, for tables of numbers and categories.

Wide (Cheng et al. 2016): hashed crosses of pairs of categorical features, one-hot, straight to the
output, to memorise combinations. Deep: tfpipe's default encodings (standardised numbers, embedded
categories) through `CrossLayer`s (Wang et al. 2017: feature crosses of bounded degree) and dense layers,
to generalise. `CrossLayer` is this module's own layer, registered with Keras, so every step that loads the
model finds it; the exported SavedModel serves without this file.

params: deep_units (list of widths), cross_layers (count), cross_bins (hash bins per crossed pair), dropout.
"""

import itertools

import keras


@keras.saving.register_keras_serializable(package="wide_deep")
class CrossLayer(keras.layers.Layer):
    """x0 * (x W + b) + x: one more degree of feature crossing, with a residual."""

    def build(self, input_shape):
        x0_shape, _ = input_shape
        width = x0_shape[-1]
        self.kernel = self.add_weight(shape=(width, width), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(width,), initializer="zeros", name="bias")

    def call(self, inputs):
        x0, x = inputs
        return x0 * (keras.ops.matmul(x, self.kernel) + self.bias) + x


def build_model(inputs, encoded, schema, task, params):
    categories = [f.name for f in schema.inputs if f.type == "string" and f.name in inputs]
    numbers = [name for name in encoded if name not in categories]
    deep_in = keras.layers.Concatenate(name="deep_in")([encoded[n] for n in numbers + categories])
    x = deep_in
    for i in range(int(params.get("cross_layers", 2))):
        x = CrossLayer(name=f"cross_{i}")([deep_in, x])
    for i, units in enumerate(params.get("deep_units", [32, 16])):
        x = keras.layers.Dense(units, activation="relu", name=f"deep_{i}")(x)
        x = keras.layers.Dropout(float(params.get("dropout", 0.1)), name=f"deep_dropout_{i}")(x)
    wide = [keras.layers.HashedCrossing(int(params.get("cross_bins", 32)), output_mode="one_hot",
                                        name=f"wide_{a}_x_{b}")((inputs[a], inputs[b]))
            for a, b in itertools.combinations(categories, 2)]
    both = keras.layers.Concatenate(name="wide_and_deep")([x, *wide]) if wide else x
    if task.kind == "classification":
        output = keras.layers.Dense(len(task.classes), activation="softmax", name="probabilities")(both)
    else:
        output = keras.layers.Dense(1, name="prediction")(both)
    return keras.Model(inputs, output, name="wide_deep")
