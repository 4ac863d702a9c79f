"""school-context: schools in their social context.

The library behind the pipeline's notebooks.  Each module is a stage's logic as plain,
typed functions on DataFrames:

- :mod:`analysis.io`, :mod:`analysis.prepare` -- read the raw contract tables and tidy them;
- :mod:`analysis.context` -- the social well-being index and context clusters;
- :mod:`analysis.ses_link` -- the link between social status and results (the gradient);
- :mod:`analysis.flags` -- resilient schools, ШНОР, ШНСУ and the typology;
- :mod:`analysis.report` -- tables and figures of the annual report;
- :mod:`analysis.ledger` -- the exclusions ledger (nothing is dropped silently);
- :mod:`analysis.synth` -- the embedded synthetic demo region with planted ground truth;
- :mod:`analysis.nbrun` -- runs a pipeline notebook with its params.yaml sections.
"""

__version__ = "0.1.0"
