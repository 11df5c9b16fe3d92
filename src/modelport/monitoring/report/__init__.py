"""Monitoring reports: one self-contained HTML page (or JSON) of a model's window.

``build.build_report`` assembles the plain data (``model``) from the prediction log's
aggregates (``aggregates``), drift, live performance and alert history; ``render``
writes it as HTML (a Jinja2 template, CSS inline, charts as inline SVG from
``charts``) or JSON. Aggregates only: no logged row reaches a report.
"""

from modelport.monitoring.report.build import Sources, Subject, build_report
from modelport.monitoring.report.model import MonitoringReport
from modelport.monitoring.report.render import FORMATS, render

__all__ = ["FORMATS", "MonitoringReport", "Sources", "Subject", "build_report", "render"]
