"""Ground truth: labels sent for logged predictions, stored beside the prediction log.

``store`` holds the label segments and their layout, ``logdb`` the DuckDB views over a
model's predictions and labels, ``intake`` what receiving a batch does (store every
label, count unknown keys and corrections) and ``items`` the parsing of the JSON items
``POST /api/feedback`` and the upload command accept.
"""
