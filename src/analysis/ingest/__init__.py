"""Stage 01: the analyst's files in -- readers, header mapping, validation, tidy tables;
:mod:`.stage` runs the stage on the files."""
