"""Stage 05 and publishing: report sections, report folders swapped in whole, provenance."""
