"""tfpipe's runtime library: one sub-package per pipeline step, plain TensorFlow and Python, no kfp."""
