"""The `recordings` suite: four HEAR-format tasks built from recorded audio that Debian packages
install, so that the pipeline meets real recordings (and the real CREPE weights) offline.

Sources (Debian 12 "bookworm"; what each package ships was read from its file list,
`dpkg -L <package>`, and its licence from /usr/share/doc/<package>/copyright):

| source | package | what is read | licence |
|---|---|---|---|
| FluidR3Mono | `fluidr3mono-gm-soundfont` | /usr/share/sounds/sf3/FluidR3Mono_GM.sf3: recorded instrument samples, rendered by fluidsynth | MIT |
| TimGM6mb | `timgm6mb-soundfont` | /usr/share/sounds/sf2/TimGM6mb.sf2, rendered by fluidsynth | GPL-2 |
| BlackPearl, RedZeppelin | `avldrums.lv2-soundfont` | /usr/share/sounds/sf2/{Black_Pearl,Red_Zeppelin}_4_LV2.sf2: two acoustic kits, one preset each (bank 0, program 0), GM drum notes | GPL-2+ |
| klettres | `klettres-data` | /usr/share/klettres/<lang>/{alpha,syllab}/*.ogg: letters and syllables said by native speakers (Ogg Vorbis, 22.05 to 128 kHz, mono and stereo) | GPL-2+ |
| asterisk | `asterisk-core-sounds-<lang>-wav` | /usr/share/asterisk/sounds/<voice>/**/*.wav: telephone prompts, one speaker per language (8 kHz PCM) | CC-BY-SA-3.0 |

Only acoustic General MIDI programs are rendered (the synth leads, pads and effects, programs
80-103 and 120-127, are synthetic and left out). fluidsynth renders the same
MIDI file to the same bytes on every run, busy machine or not (checked: renders with and
without load, one md5); each render switches reverb and chorus off, so a clip is the
samples themselves. timidity with the `freepats` patches was tried as a third bank and left
out: two renders of one MIDI file differ (by up to 0.07 of full scale, from the fifth note
on, with voice reduction off and under `faketime`), so a build would not repeat.

The tasks (a *source* is held out, never a random draw: neighbouring notes of one soundfont
share a sample, and one speaker says every clip of a language in a source):

- `rec_pitch-v1-full` (like NSynth pitch; pitch_acc, chroma_acc): 24 MIDI notes 48-71 (C3-B4),
  1 s each. train: FluidR3Mono, programs 0 piano, 24 nylon guitar, 42 cello; valid:
  FluidR3Mono, program 70 bassoon (a held-out instrument); test: TimGM6mb, all four programs
  (a held-out soundfont). Each instrument's real range covers
  C3-B4 (violin and clarinet, tried first, do not: FluidR3Mono plays their lowest notes an
  octave or more off, as torchcrepe's pitch tracker showed). torchcrepe's tracker finds the
  labelled pitch within 50 cents in all but a few clips (octave errors of the tracker on the
  bassoon; tests/test_recordings.py).
- `rec_family-v1-full` (instrument family, like NSynth's family labels; top1_acc): 8 families
  x 5 notes (G3, C4, E4, G4, C5), 1 s. train: FluidR3Mono, the first program of each family;
  valid: FluidR3Mono, the second (held-out instruments); test: TimGM6mb, both (a held-out
  soundfont).
- `rec_drums-v1-full` (like Mridangam stroke; top1_acc): 9 GM drum strokes x 2 velocities (70, 127),
  1 s; 4 folds, one per kit (BlackPearl, RedZeppelin, FluidR3Mono's and TimGM6mb's standard
  kits).
- `rec_language-v1-full` (like VoxLingua107 top 10; top1_acc): en, es, fr, it, ru, 1.5 s
  clips cut or zero-padded. train: klettres syllables (12 per language); valid: klettres
  letters (6 per language; the same speakers as train, so validation only ranks the grid);
  test: asterisk prompts (12 per language, other speakers, other words, telephone band).

Clips are peak-normalised to 0.5 (renderers and recordings differ in level), made mono,
resampled to 48 kHz (soxr VHQ) and written as 16-bit PCM, as the public HEAR archives are.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hearflow.core.hear import ARCHIVE_RATE
from hearflow.data.soundfonts import Note, drum, melodic, render
from hearflow.data.spoken import (  # noqa: F401 (the language task's sources, re-exported)
    ASTERISK,
    ASTERISK_VOICES,
    KLETTRES,
    KLETTRES_DIRS,
    LANGUAGE_COUNTS,
    LANGUAGE_TASK,
    LANGUAGES,
    language_clips,
    language_sources,
    root_path,
)

SAMPLE_RATE = ARCHIVE_RATE

# ------------------------------------------------------------------------------ sources

# package -> a file or folder it installs that the suite reads (its presence means installed)
PACKAGE_FILES: dict[str, str] = {
    "fluidsynth": "/usr/bin/fluidsynth",
    "fluidr3mono-gm-soundfont": "/usr/share/sounds/sf3/FluidR3Mono_GM.sf3",
    "timgm6mb-soundfont": "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "avldrums.lv2-soundfont": "/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2",
    "klettres-data": "/usr/share/klettres",
    "asterisk-core-sounds-en-wav": "/usr/share/asterisk/sounds/en_US_f_Allison",
    "asterisk-core-sounds-es-wav": "/usr/share/asterisk/sounds/es_MX_f_Allison",
    "asterisk-core-sounds-fr-wav": "/usr/share/asterisk/sounds/fr_CA_f_June",
    "asterisk-core-sounds-it-wav": "/usr/share/asterisk/sounds/it_IT_m_Carlo",
    "asterisk-core-sounds-ru-wav": "/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU",
}


# ------------------------------------------------------------------------------ tasks

PITCH_NOTES = tuple(range(48, 72))
PITCH_SPLITS = {
    "train": ("FluidR3Mono", (0, 24, 42)),
    "valid": ("FluidR3Mono", (70,)),
    "test": ("TimGM6mb", (0, 24, 42, 70)),
}
# NSynth's family names; two acoustic GM programs each (0-based program numbers)
FAMILIES = {
    "keyboard": (0, 6),  # acoustic grand piano, harpsichord
    "mallet": (9, 13),  # glockenspiel, xylophone
    "organ": (16, 19),  # drawbar organ, church organ
    "guitar": (24, 25),  # nylon, steel
    "string": (40, 42),  # violin, cello
    "brass": (56, 57),  # trumpet, trombone
    "reed": (65, 71),  # alto sax, clarinet
    "flute": (73, 74),  # flute, recorder
}
FAMILY_NOTES = (55, 60, 64, 67, 72)
# split -> (bank, which program of each family: 0 first, 1 second)
FAMILY_SPLITS = {"train": ("FluidR3Mono", (0,)), "valid": ("FluidR3Mono", (1,)), "test": ("TimGM6mb", (0, 1))}
# GM percussion key map (General MIDI 1, "GM Percussion Key Map"): note -> stroke
DRUM_STROKES = {
    36: "bass_drum",
    37: "side_stick",
    38: "snare",
    42: "hihat_closed",
    43: "tom_floor",
    46: "hihat_open",
    48: "tom_high",
    49: "crash",
    51: "ride",
}
DRUM_VELOCITIES = (70, 127)
DRUM_FOLDS = ("BlackPearl", "RedZeppelin", "FluidR3Mono", "TimGM6mb")


@dataclass(frozen=True)
class TaskSpec:
    split_mode: str
    splits: tuple[str, ...]
    duration_s: float
    evaluation: tuple[str, ...]
    vocabulary: tuple[str, ...]
    packages: tuple[str, ...]


def _folds(n: int) -> tuple[str, ...]:
    return tuple(f"fold{i:02d}" for i in range(n))


TASKS: dict[str, TaskSpec] = {
    "rec_pitch-v1-full": TaskSpec(
        "trainvaltest",
        ("train", "valid", "test"),
        1.0,
        ("pitch_acc", "chroma_acc"),
        tuple(str(n) for n in PITCH_NOTES),
        ("fluidsynth", "fluidr3mono-gm-soundfont", "timgm6mb-soundfont"),
    ),
    "rec_family-v1-full": TaskSpec(
        "trainvaltest",
        ("train", "valid", "test"),
        1.0,
        ("top1_acc",),
        tuple(FAMILIES),
        ("fluidsynth", "fluidr3mono-gm-soundfont", "timgm6mb-soundfont"),
    ),
    "rec_drums-v1-full": TaskSpec(
        "presplit_kfold",
        _folds(len(DRUM_FOLDS)),
        1.0,
        ("top1_acc",),
        tuple(DRUM_STROKES.values()),
        ("fluidsynth", "fluidr3mono-gm-soundfont", "timgm6mb-soundfont", "avldrums.lv2-soundfont"),
    ),
    "rec_language-v1-full": TaskSpec(
        "trainvaltest",
        ("train", "valid", "test"),
        1.5,
        ("top1_acc",),
        LANGUAGES,
        ("klettres-data", *(f"asterisk-core-sounds-{lang}-wav" for lang in LANGUAGES)),
    ),
}
CATEGORIES = {
    "rec_pitch-v1-full": "music",
    "rec_family-v1-full": "music",
    "rec_drums-v1-full": "music",
    "rec_language-v1-full": "speech",
}


class MissingPackageError(RuntimeError):
    """A Debian package the suite reads is not installed."""


def _spec(task: str) -> TaskSpec:
    if task not in TASKS:
        raise ValueError(f"unknown recordings task {task!r}; expected one of {sorted(TASKS)}")
    return TASKS[task]


def check_packages(task: str, root: str | Path = "/") -> None:
    """Stop, naming every missing package and the apt command, unless all that `task` reads
    is installed (under `root`: "/" but for tests)."""
    missing = []
    for package in _spec(task).packages:
        path = PACKAGE_FILES[package]
        found = shutil.which(Path(path).name) if path.startswith("/usr/bin/") else None
        if not (found or root_path(root, path).exists()):
            missing.append((package, path))
    if missing:
        names = " ".join(p for p, _ in missing)
        listed = "; ".join(f"{p} ({path} not found)" for p, path in missing)
        raise MissingPackageError(
            f"recordings suite, task {task}: missing Debian packages: {listed}. "
            f"Install them: apt-get install {names} (docs/suites.md, `recordings`)"
        )


@functools.cache
def _installed_versions() -> dict[str, str]:
    """{package: version} of every package the suite reads that dpkg knows as installed."""
    try:
        res = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package} ${Version} ${db:Status-Abbrev}\n", *PACKAGE_FILES],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:  # not Debian: versions unknown
        return {}
    rows = (line.split() for line in res.stdout.splitlines())
    return {row[0]: row[1] for row in rows if len(row) >= 3 and row[2].startswith("ii")}


def package_versions(packages) -> dict[str, str]:
    """{package: installed version} from dpkg ("unknown" where dpkg does not say)."""
    installed = _installed_versions()
    return {package: installed.get(package, "unknown") for package in packages}


def lock_key(task: str, name: str) -> str:
    """Checksum-lock entry of a task's archive: its name and the versions of the packages it is
    built from, so that a newer package adds an entry instead of failing the check."""
    versions = package_versions(_spec(task).packages)
    return f"{name} ({', '.join(f'{p}={v}' for p, v in versions.items())})"


# ------------------------------------------------------------------------------ task contents


def _clip_name(*parts) -> str:
    return "-".join(str(p) for p in parts) + ".wav"


def _rendered_split(bank: str, items: list[tuple[Note, str, str]], clip_s: float) -> dict[str, tuple[np.ndarray, str]]:
    """{clip name: (audio, label)} for (note, clip name, label) items of one bank."""
    audio = render(bank, [note for note, _, _ in items], clip_s=clip_s)
    return {name: (a, label) for a, (_, name, label) in zip(audio, items)}


def _pitch(spec: TaskSpec) -> dict[str, dict[str, tuple[np.ndarray, str]]]:
    out = {}
    for split, (bank, programs) in PITCH_SPLITS.items():
        items = [
            (melodic(p, key), _clip_name(bank, f"p{p:03d}", f"n{key:03d}"), str(key))
            for p in programs
            for key in PITCH_NOTES
        ]
        out[split] = _rendered_split(bank, items, spec.duration_s)
    return out


def _family(spec: TaskSpec) -> dict[str, dict[str, tuple[np.ndarray, str]]]:
    out = {}
    for split, (bank, which) in FAMILY_SPLITS.items():
        items = [
            (melodic(programs[i], key), _clip_name(bank, f"p{programs[i]:03d}", f"n{key:03d}"), family)
            for family, programs in FAMILIES.items()
            for i in which
            for key in FAMILY_NOTES
        ]
        out[split] = _rendered_split(bank, items, spec.duration_s)
    return out


def _drums(spec: TaskSpec) -> dict[str, dict[str, tuple[np.ndarray, str]]]:
    out = {}
    for fold, bank in zip(spec.splits, DRUM_FOLDS):
        items = [
            (drum(bank, key, vel), _clip_name(bank, f"k{key:03d}", f"v{vel:03d}"), stroke)
            for key, stroke in DRUM_STROKES.items()
            for vel in DRUM_VELOCITIES
        ]
        out[fold] = _rendered_split(bank, items, spec.duration_s)
    return out


def task_audio(task: str, root: str | Path = "/") -> dict[str, dict[str, tuple[np.ndarray, str]]]:
    """{split: {clip name: (audio float32 at SAMPLE_RATE, label)}} of one task."""
    spec = _spec(task)
    check_packages(task, root)
    if task == LANGUAGE_TASK:
        return language_clips(spec.duration_s, root)
    return {"rec_pitch-v1-full": _pitch, "rec_family-v1-full": _family, "rec_drums-v1-full": _drums}[task](spec)


def metadata(task: str, versions: dict[str, str]) -> dict:
    """task_metadata.json as hear-preprocess writes it (see hearflow.data.demo), plus the
    packages and versions the task was built from (extra keys are kept and ignored)."""
    spec = _spec(task)
    task_name, version, mode = task.rsplit("-", 2)
    meta = {
        "task_name": task_name,
        "version": version,
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "split_mode": spec.split_mode,
        "sample_duration": spec.duration_s,
        "evaluation": list(spec.evaluation),
    }
    if spec.split_mode == "presplit_kfold":
        meta["nfolds"] = len(spec.splits)
    meta["default_mode"] = mode
    meta["debian_packages"] = versions
    meta["splits"] = list(spec.splits)
    meta["mode"] = mode
    return meta


def task_files(task: str, root: str | Path = "/") -> dict[str, bytes]:
    """Every file of the task directory, {relative path: bytes}: metadata, vocabulary, split
    label files and 48000/<split>/*.wav."""
    from hearflow.data.simtask import wav_bytes

    spec = _spec(task)
    audio = task_audio(task, root)
    meta = metadata(task, package_versions(spec.packages))
    files = {"task_metadata.json": (json.dumps(meta, indent=2) + "\n").encode()}
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["idx", "label"])
    writer.writerows(enumerate(spec.vocabulary))
    files["labelvocabulary.csv"] = out.getvalue().encode()
    for split in spec.splits:
        clips = audio[split]
        labels = {name: [label] for name, (_, label) in sorted(clips.items())}
        files[f"{split}.json"] = json.dumps(labels, indent=1, sort_keys=True).encode()
        files.update({f"{SAMPLE_RATE}/{split}/{name}": wav_bytes(a, SAMPLE_RATE) for name, (a, _) in clips.items()})
    return files


def build_archive(task: str, archive: Path, root: str | Path = "/") -> Path:
    """Build `task` from the installed packages and pack it as `archive` (members
    tasks/<task>/..., as the public archives), atomically; return archive."""
    from hearflow.data.simtask import pack_files

    return pack_files(task, task_files(task, root), archive)
