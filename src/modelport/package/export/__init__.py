"""Exporting a package's model as a standalone ONNX file for edge runtimes.

The graph is the one acceleration makes and verifies (``package.acceleration``): the
package's verified ``accelerated/model.onnx`` when it has one, else converted now by the
flavor's ``to_onnx`` hook and verified against the native model; an ONNX-flavor model is
already a graph. It may then be dynamically quantized to int8 (``quantization``), is
checked against the native model on the input example and on rows drawn from the
reference statistics (``rows``, ``accuracy``), and carries the signature in its
``metadata_props`` (``metadata``). ``exporter`` puts the steps together.
"""
