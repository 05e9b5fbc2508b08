"""bench/run.py's sections, one module each, named as --only names them; each module's
`rows(bench)` measures its rows (bench/context.py's Bench)."""
