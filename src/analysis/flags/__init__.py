"""Stage 04: the flags -- resilient schools, ШНОР, ШНСУ, the risk zone, signs of
non-objectivity, the typology -- each accounting for school size and saying how sure it is.

Modules, one job each:

- :mod:`~analysis.flags.effects`: school effects, shrunk empirical-Bayes over years and
  outcomes;
- :mod:`~analysis.flags.rules`: resilience, the PISA quadrant, the typology, ШНСУ on the
  anchored index, the risk zone, changes since last year;
- :mod:`~analysis.flags.shnor`: the ШНОР rule, exact and probabilistic (beta-binomial);
- :mod:`~analysis.flags.objectivity`: objectivity screens with honest intervals;
- :mod:`~analysis.flags.stage`: stage 04 in memory and on the processed files.
"""
