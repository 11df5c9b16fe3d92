"""Drift statistics: live data compared with a package's reference statistics.

``report.drift_report`` runs one test per column (chosen by ``selection``'s default
rule or set per column) and says whether the dataset drifted. The current side is
either raw values or counts over the reference's bins or categories, which is what a
streaming histogram produces.
"""
