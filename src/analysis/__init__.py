"""school-context: schools in their social context.

The library behind the pipeline's notebooks: each stage's logic as plain, typed functions
on DataFrames, grouped by what it does.

- :mod:`analysis.ingest` -- stage 01: read the analyst's files (CSV, XLSX, Parquet),
  map headers, validate against the data contract, tidy, the quality index;
- :mod:`analysis.context` -- stage 02: the social well-being index (:mod:`.index`) and
  clusters of schools by context (:mod:`.clusters`);
- :mod:`analysis.models` -- stage 03: the link between social status and results
  (:mod:`.gradient`);
- :mod:`analysis.flags` -- stage 04: resilient schools, ШНОР, ШНСУ, objectivity, typology;
- :mod:`analysis.publish` -- stage 05: report sections (:mod:`.report`,
  :mod:`.context_report`, :mod:`.ses_report`, :mod:`.flags_report`) built from shared HTML
  pieces (:mod:`.html`), municipal pages and downloads (:mod:`.site`), report folders
  published whole (:mod:`.folders`), what a report was built from (:mod:`.provenance`);
- :mod:`analysis.pipeline` -- the stages as functions (:mod:`.stages`), the notebook
  runner (:mod:`.nbrun`), ``make report DATA=…`` (:mod:`.run`), pre-run checks
  (:mod:`.preflight`);
- :mod:`analysis.demo` -- the synthetic region with planted truth, real public data;
- shared: :mod:`.config` (params.yaml), :mod:`.errors`, :mod:`.i18n` (the one catalogue,
  ``labels.yaml``), :mod:`.ledger` (nothing is dropped silently), :mod:`.outputs` (every
  file written atomically, rounded, strict), :mod:`.vcs` (git).
"""

__version__ = "0.1.0"
