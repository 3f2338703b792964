"""The spoken-language task's recordings: which installed files it reads, and their clips.

klettres-data (letters and syllables said by one native speaker per language folder, Ogg
Vorbis) and asterisk-core-sounds-<lang>-wav (telephone prompts, one speaker per language,
8 kHz PCM) both cover en, es, fr, it and ru. Files are chosen by rule from the sorted lists
(long enough, evenly spaced), decoded by hearflow.data.decode and cut or padded to the clip
length. Part of the `recordings` suite (hearflow.data.recordings).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hearflow.core.hear import ARCHIVE_RATE
from hearflow.data.soundfonts import peak_normalised

SAMPLE_RATE = ARCHIVE_RATE
LANGUAGE_TASK = "rec_language-v1-full"

LANGUAGES = ("en", "es", "fr", "it", "ru")
KLETTRES = "/usr/share/klettres"
# klettres folders per language (en: the US and the British speaker)
KLETTRES_DIRS = {"en": ("en", "en_GB"), "es": ("es",), "fr": ("fr",), "it": ("it",), "ru": ("ru",)}
ASTERISK_VOICES = {
    "en": "en_US_f_Allison",
    "es": "es_MX_f_Allison",
    "fr": "fr_CA_f_June",
    "it": "it_IT_m_Carlo",
    "ru": "ru_RU_f_IvrvoiceRU",
}
ASTERISK = "/usr/share/asterisk/sounds"
LANGUAGE_COUNTS = {"train": 12, "valid": 6, "test": 12}
LANGUAGE_MIN_S = {"klettres": 0.3, "asterisk": 0.8}  # shorter files are left out (asterisk has 0-s ones)


def root_path(root: str | Path, path: str) -> Path:
    """An absolute install path under `root` ("/" but for tests)."""
    return Path(root) / path.lstrip("/")


def _spread(paths: list[Path], count: int) -> list[Path]:
    """`count` of the sorted `paths`, evenly spaced (every content kind, not the first words)."""
    if len(paths) < count:
        raise ValueError(f"{len(paths)} eligible recordings, {count} needed")
    idx = np.linspace(0, len(paths) - 1, count).round().astype(int)
    return [paths[i] for i in idx]


def language_sources(root: str | Path = "/") -> dict[str, dict[str, list[Path]]]:
    """{split: {language: [recording]}}: the files the language task reads, chosen by rule
    from the sorted file lists (durations from the file headers)."""
    import soundfile as sf

    def long_enough(paths, min_s):
        keep = []
        for path in sorted(paths):
            try:
                info = sf.info(path)
            except Exception:  # undecodable: kept, so decoding names it and stops
                keep.append(path)
                continue
            if info.frames >= min_s * info.samplerate:
                keep.append(path)
        return keep

    out = {split: {} for split in LANGUAGE_COUNTS}
    for lang in LANGUAGES:
        kl = [root_path(root, KLETTRES) / d for d in KLETTRES_DIRS[lang]]
        syllab = long_enough([p for d in kl for p in (d / "syllab").glob("*.ogg")], LANGUAGE_MIN_S["klettres"])
        alpha = long_enough([p for d in kl for p in (d / "alpha").glob("*.ogg")], LANGUAGE_MIN_S["klettres"])
        voice = root_path(root, ASTERISK) / ASTERISK_VOICES[lang]
        prompts = [p for p in voice.rglob("*.wav") if "silence" not in p.relative_to(voice).parts]
        prompts = long_enough(prompts, LANGUAGE_MIN_S["asterisk"])
        for split, files in (("train", syllab), ("valid", alpha), ("test", prompts)):
            try:
                out[split][lang] = _spread(files, LANGUAGE_COUNTS[split])
            except ValueError as err:
                raise ValueError(f"recordings suite, rec_language-v1-full, {split}, {lang}: {err}") from None
    return out


def language_clips(duration_s: float, root: str | Path = "/") -> dict[str, dict[str, tuple[np.ndarray, str]]]:
    """{split: {clip name: (audio float32 at 48 kHz, language)}} of the language task."""
    from hearflow.data.decode import decode_mono, fit_length

    n = round(duration_s * SAMPLE_RATE)
    out = {}
    for split, by_lang in language_sources(root).items():
        clips = {}
        for lang, paths in by_lang.items():
            for path in paths:
                source = "klettres" if "klettres" in path.parts else "asterisk"
                package = "klettres-data" if source == "klettres" else f"asterisk-core-sounds-{lang}-wav"
                audio = decode_mono(
                    path, SAMPLE_RATE, what=package, fix=f"reinstall it: apt-get install --reinstall {package}"
                )
                base = root_path(root, KLETTRES if source == "klettres" else f"{ASTERISK}/{ASTERISK_VOICES[lang]}")
                stem = "_".join(path.relative_to(base).with_suffix("").parts)  # e.g. en_GB_syllab_arm
                name = f"{source}-{lang}-{stem}.wav"
                if name in clips:
                    raise ValueError(f"recordings suite, {LANGUAGE_TASK}: two recordings map to clip {name}")
                clips[name] = (fit_length(peak_normalised(audio), n), lang)
        out[split] = clips
    return out
