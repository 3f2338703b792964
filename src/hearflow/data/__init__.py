"""Data phase: from a task's archive to its audio at every sample rate the models need.

Reads: catalog/<suite>.yaml, checksums/<suite>.lock, the mirror or the public archives
(demo and hear2021-sim archives are synthesised by demo and sim/simtask; the recordings
suite's are built from installed Debian packages by recordings).
Writes: data/archives/, data/tasks/48000/<task>/ (hear-preprocess's layout) and
data/tasks/<rate>/<task>/ resampled with soxr.
Rules (rules/data.smk): demo_archive, sim_archive, recordings_archive, download, extract, resample.

- catalog: a suite's task catalog and task selection.
- archives: downloads (resume, backoff, sha256 lock) and safe extraction.
- mirror: the local HTTP mirror the download jobs fetch from.
- resample: a task folder at another rate, and the seeded clip cap.
- demo, demo_signals: the four offline demo tasks and their clip makers.
- sim, simtask: hear2021-sim, the 20 real task directories at small scale.
- recordings: the recordings suite, four tasks from recorded audio in Debian packages.
- decode: raw recordings in any format (WAV, GSM in WAV, FLAC, Ogg Vorbis, MP3) to mono.
"""
