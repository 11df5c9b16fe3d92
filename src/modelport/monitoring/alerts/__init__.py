"""Alert rules over the prediction log, their states and history, and their actions.

``readings`` computes each signal over a rule's window, ``transitions`` moves a
rule's state (pending → firing → resolved), ``engine`` ties them to the metadata
database, ``actions`` and ``delivery`` notify (signed webhooks, commands, the
retraining trigger's export in ``retrain``), ``loop`` repeats it, ``history`` shows
it and ``prometheus`` writes the equivalent Prometheus alerting rules.
"""
