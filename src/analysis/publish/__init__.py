"""Stage 05 and publishing: the report's data (:mod:`.data`) and the stage (:mod:`.stage`),
report sections, report folders swapped in whole, provenance."""
