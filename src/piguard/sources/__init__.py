"""Where personal information is read from: text files (``files``) and tables (``tables`` dispatches to one
reader a format: ``csvfile``, ``jsonfile``, ``parquet``, ``excel``, ``sql``, ``spark``; ``datamap`` is the
model they fill). Shared: ``encoding`` (sniffing), ``limits`` (bounds), ``redact`` (what messages may say),
``paths`` (names that are not UTF-8), ``selection`` (--include / --exclude). Nothing here imports
``tables``, the orchestrator, and nothing is imported by this file: each user loads only what it reads.
"""
