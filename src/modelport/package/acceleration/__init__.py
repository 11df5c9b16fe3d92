"""Automatic acceleration: an ONNX graph, stored in the package, that serves a model in
place of the native one.

For a flavor that converts its models (one with a ``to_onnx`` hook: scikit-learn,
XGBoost, LightGBM), the graph is made in three steps: convert (the flavor's hook,
``conversion``), verify against the native model's predictions and probabilities on the
sample (``verification``), record (``accelerator``: the file ``accelerated/model.onnx``
and the manifest's ``AccelerationSection``). A graph that does not match is not stored,
the native model serves, and the manifest says why. ``package.onnx_predictor`` serves a
stored graph.
"""
