"""Embed phase: one forward pass per (model, task), writing every view the later phases read.

Reads: data/tasks/<rate>/<task>/ and the model's checkpoint (or a stand-in's).
Writes: results/members/<model>/<task>/{last,fusion,layers/NN,groupsNN/...} in heareval's
format, with provenance.json; stand-in checkpoints under data/models/<model>/.
Rules (rules/embed.smk): standin, embed.

- job: embed_task, the job (length batches, chunked streaming, resume).
- views: a batch's views accumulated chunk by chunk; shards: finished batches on disk.
- models/: the HEAR-API model modules (ssl, crepe, logmel, passt, standin), one per file.
"""
