"""Ensemble phase: a configuration's embedding from its members' views, on the CPU.

Reads: results/members/<model>/<task>/<view>/ of the configuration's members.
Writes: results/configs/<config>/<task>/ in heareval's format, with config.json.
Rule (rules/ensemble.smk): ensemble.

- derive: avg / cat / single combinations of last, fusion, layer and time-group views, as
  the GURA authors combine them.
"""
