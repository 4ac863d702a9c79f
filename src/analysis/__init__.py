"""school-context: schools in their social context.

The library behind the pipeline's notebooks: each stage's logic as plain, typed functions
on DataFrames, grouped by what it does.  Each stage's subpackage has a ``stage`` module,
what its notebook calls: ``run_*(root, **parameters)`` reads the processed files, computes
and writes the stage's outputs, and ``run(root, params)`` does the same with a
params.yaml-shaped dict.  A stage module imports the shared modules and libraries, never
another stage's module.

- :mod:`analysis.ingest` -- stage 01 (:mod:`.stage`): read the analyst's files (CSV,
  XLSX, Parquet), map headers, validate against the data contract, tidy, the quality index;
- :mod:`analysis.context` -- stage 02 (:mod:`.stage`): the social well-being index
  (:mod:`.index`), quality groups, clusters of schools by context (:mod:`.clusters`),
  similar schools (:mod:`.similar`);
- :mod:`analysis.models` -- stage 03 (:mod:`.stage`): the link between social status and
  results (:mod:`.link`, :mod:`.gradients`, :mod:`.expected`, :mod:`.mixed`);
- :mod:`analysis.flags` -- stage 04 (:mod:`.stage`): resilient schools, ШНОР, ШНСУ,
  objectivity, typology;
- :mod:`analysis.publish` -- stage 05 (:mod:`.stage`, the report's data :mod:`.data`):
  report sections (:mod:`.report`, :mod:`.context_report`, :mod:`.ses_report`,
  :mod:`.flags_report`) built from shared HTML pieces (:mod:`.html`), municipal pages and
  downloads (:mod:`.site`), report folders published whole (:mod:`.folders`), what a report
  was built from (:mod:`.provenance`);
- :mod:`analysis.pipeline` -- orchestration only: the five stages in order
  (:mod:`.flow`), the notebook runner (:mod:`.nbrun`), ``make report DATA=…``
  (:mod:`.run`), pre-run checks (:mod:`.preflight`), each stage's DVC deps from its
  imports (:mod:`.deps`);
- :mod:`analysis.demo` -- the synthetic region with planted truth, real public data;
- shared: :mod:`.files` (the processed files by name, read and written), :mod:`.config`
  (params.yaml), :mod:`.errors`, :mod:`.i18n` (the one catalogue, ``labels.yaml``),
  :mod:`.ledger` (nothing is dropped silently), :mod:`.outputs` (every file written
  atomically, rounded, strict), :mod:`.vcs` (git).
"""

__version__ = "0.1.0"
