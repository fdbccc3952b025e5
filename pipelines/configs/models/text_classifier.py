"""A bag-of-n-grams text classifier with its own TextVectorization, for tables with a text column.

The module's vectorizer is not tfpipe's default encoding (a mean of token embeddings): it counts the
text's words and pairs of words (`ngrams`), weighted by TF-IDF, so that "not great" is a feature of its
own. It is adapted on `train_data`, the train split tfpipe offers, and lives inside the model, so the
exported SavedModel takes the raw text. Other features join through tfpipe's default encodings
(`encoded`) when `params.other_features` is true.

params: text_feature (default: the schema's first text feature), max_tokens, ngrams, hidden_units,
dropout, other_features.
"""

import keras


def build_model(inputs, encoded, schema, task, params, train_data):
    texts = [f.name for f in schema.inputs if f.type == "text" and f.name in inputs]
    name = params.get("text_feature") or texts[0]
    vectorize = keras.layers.TextVectorization(max_tokens=int(params.get("max_tokens", 5000)),
                                               ngrams=int(params.get("ngrams", 2)), output_mode="tf_idf",
                                               name="vectorize")
    vectorize.adapt(train_data.map(lambda features, _: features[name]))
    parts = [keras.layers.Flatten(name="tf_idf")(vectorize(inputs[name]))]  # [batch, 1, tokens] -> [batch, tokens]
    used = {name: inputs[name]}
    if params.get("other_features", False):
        others = [n for n in encoded if n != name and n != schema.key]
        parts += [encoded[n] for n in others]
        used.update({n: inputs[n] for n in others})
    x = keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
    x = keras.layers.Dropout(float(params.get("dropout", 0.3)), name="dropout")(x)
    x = keras.layers.Dense(int(params.get("hidden_units", 16)), activation="relu", name="hidden")(x)
    if task.kind == "classification":
        output = keras.layers.Dense(len(task.classes), activation="softmax", name="probabilities")(x)
    else:
        output = keras.layers.Dense(1, name="prediction")(x)
    return keras.Model(used, output, name="text_classifier")
