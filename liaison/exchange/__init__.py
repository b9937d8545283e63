"""Exercise data exchange, pure: reading officers' spreadsheets and comparing them.

Nothing here touches the database, the store or the keys. ``parsing`` turns the bytes of a CSV
or XLSX file into checked rows (every bad row reported with its row, column and reason), with
``csv_input``, ``xlsx_input``, ``columns``, ``rows`` and ``dataset`` as its steps and types;
``comparison`` compares HS-code lists and mirrors exports against imports, ``export`` writes
results back out with formulas neutralised; ``hs_codes`` and ``containers`` hold the rules for
the two identifiers everything is keyed on. The services (``liaison/services/exchange/``)
store, seal, audit and announce what these compute.
"""
