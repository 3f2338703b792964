"""The shared core every phase may import, and nothing else of hearflow does.

- hear: the HEAR task and embedding formats (task_metadata.json, split files, heareval's
  raw memmaps), read and written.
- audio: one clip as a file: read (rate, mono, finite checked), its length, write.
- io: atomic writes and JSON.
- pooling: time groups and the reference frame grid shared by embed and ensemble.
- numerics, devices, provenance: the CPU kernel and thread settings, the torch device, and
  the run record every result file carries.
- smk: the glue a Snakemake `script:` job calls (logging, threads, numerics).
- codedeps: the hearflow modules a script imports (dvc.yaml's code deps, cache keys).

Imports only the standard library and numpy at module level; no rule runs it on its own.
"""
