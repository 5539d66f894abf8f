"""The bench station: several readers, one worker each, a PASS or FAIL per card.

:mod:`simtool.bench.station` runs the readers; :mod:`simtool.bench.view` draws
the operator's screen and writes the event lines. The business rules are in
:mod:`provisioning.bench`.
"""
