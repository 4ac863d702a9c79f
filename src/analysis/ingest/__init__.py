"""Stage 01: the analyst's files in -- readers, header mapping, validation, tidy tables."""
