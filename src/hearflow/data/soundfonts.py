"""Recorded instrument samples in soundfonts, rendered note by note to clips by fluidsynth.

    notes = [Note(bank=0, program=0, channel=0, key=60, velocity=100)]
    [clip] = render("FluidR3Mono", notes, clip_s=1.0)   # float32 mono, 48 kHz, peak 0.5

One Standard MIDI File holds every note (one `slot_s` apart), one fluidsynth call renders it
with reverb and chorus off, and each clip is cut from its note's slot. fluidsynth renders the
same file to the same bytes every time, busy machine or not. Used by the `recordings` suite
(hearflow.data.recordings), which documents the soundfonts and their packages.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hearflow.core.hear import ARCHIVE_RATE

SAMPLE_RATE = ARCHIVE_RATE
PEAK = 0.5  # clips are peak-normalised to this (renderings and recordings differ in level)


@dataclass(frozen=True)
class Bank:
    """A set of recorded samples and the program that renders MIDI with it."""

    package: str
    path: str  # the soundfont
    drum_bank: int  # the MIDI bank of its drum kit (fluidsynth: 128 on channel 10)
    drum_channel: int  # 0-based


BANKS: dict[str, Bank] = {
    "FluidR3Mono": Bank("fluidr3mono-gm-soundfont", "/usr/share/sounds/sf3/FluidR3Mono_GM.sf3", 128, 9),
    "TimGM6mb": Bank("timgm6mb-soundfont", "/usr/share/sounds/sf2/TimGM6mb.sf2", 128, 9),
    # avldrums: one preset per file, bank 0 program 0, played on a melodic channel
    "BlackPearl": Bank("avldrums.lv2-soundfont", "/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2", 0, 0),
    "RedZeppelin": Bank("avldrums.lv2-soundfont", "/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2", 0, 0),
}


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


@dataclass(frozen=True)
class Note:
    bank: int
    program: int
    channel: int
    key: int
    velocity: int


def midi_file(notes: list[Note], *, slot_ms: int, hold_ms: int) -> bytes:
    """A type-0 Standard MIDI File: note k sounds at k * slot_ms (+10 ms after its bank and
    program change) for hold_ms; 1 tick = 1 ms (1000 ticks per quarter at 60 bpm); a final
    all-notes-off at len(notes) * slot_ms keeps renderers going to the end of the last slot."""
    events = [(0, b"\xff\x51\x03" + (1_000_000).to_bytes(3, "big"))]
    for k, n in enumerate(notes):
        t = k * slot_ms
        events += [
            (t, bytes([0xB0 | n.channel, 0, n.bank])),
            (t, bytes([0xC0 | n.channel, n.program])),
            (t + 10, bytes([0x90 | n.channel, n.key, n.velocity])),
            (t + 10 + hold_ms, bytes([0x80 | n.channel, n.key, 0])),
        ]
    events.append((len(notes) * slot_ms, bytes([0xB0, 123, 0])))
    track, now = b"", 0
    for t, data in sorted(events, key=lambda e: e[0]):  # stable: same-time events keep their order
        track += _vlq(t - now) + data
        now = t
    track += _vlq(0) + b"\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1000) + b"MTrk" + struct.pack(">I", len(track)) + track


def render(
    bank: str, notes: list[Note], *, clip_s: float, slot_s: float = 3.0, hold_s: float = 0.8
) -> list[np.ndarray]:
    """Render `notes` with one bank, one clip per note: float32 mono at SAMPLE_RATE, clip_s
    long from the note's start. One renderer call for all notes (a soundfont loads once)."""
    from hearflow.data.decode import decode, to_mono

    spec = BANKS[bank]
    fix = f"reinstall {spec.package} and fluidsynth: apt-get install --reinstall {spec.package} fluidsynth"
    with tempfile.TemporaryDirectory(prefix="hearflow-render-") as work:
        mid, wav = Path(work) / "notes.mid", Path(work) / "notes.wav"
        mid.write_bytes(midi_file(notes, slot_ms=round(slot_s * 1000), hold_ms=round(hold_s * 1000)))
        cmd = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(SAMPLE_RATE)]
        cmd += ["-F", str(wav), spec.path, str(mid)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0 or not wav.exists():
            raise RuntimeError(f"fluidsynth failed on {spec.path} ({res.stderr.strip()[-500:]}); {fix}")
        audio, rate = decode(wav, what=f"{bank} (fluidsynth)", fix=fix)
    audio = to_mono(audio)
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, asked for {SAMPLE_RATE}")
    n, slot = round(clip_s * SAMPLE_RATE), round(slot_s * SAMPLE_RATE)
    audio = np.concatenate([audio, np.zeros(max(0, len(notes) * slot - len(audio)), np.float32)])
    clips = []
    for k, note in enumerate(notes):
        clip = audio[k * slot : k * slot + n]
        if not np.any(clip):
            raise RuntimeError(
                f"{bank}: program {note.program} (bank {note.bank}) key {note.key} rendered silence; "
                f"the {spec.package} package lacks it or is damaged; {fix}"
            )
        clips.append(peak_normalised(clip))
    return clips


def peak_normalised(audio: np.ndarray) -> np.ndarray:
    """`audio` (not silent) scaled to peak PEAK, float32."""
    return (audio * (PEAK / float(np.abs(audio).max()))).astype(np.float32)


def melodic(program: int, key: int, velocity: int = 100) -> Note:
    """A note of GM program `program` (bank 0, channel 1)."""
    return Note(0, program, 0, key, velocity)


def drum(bank: str, key: int, velocity: int) -> Note:
    """A GM drum note (`key`: the GM percussion key) on `bank`'s drum kit."""
    spec = BANKS[bank]
    return Note(spec.drum_bank, 0, spec.drum_channel, key, velocity)
