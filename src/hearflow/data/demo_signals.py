"""The sounds of the `demo` suite (hearflow.data.demo): signal helpers and one clip maker per task.

A clip maker takes a split's random stream and the class index the clip must contain
(None: any, possibly none) and returns (audio [n_samples] float64 in (-1, 1), labels):

- tone_clip: a harmonic note of one of PITCHES (MIDI 48..71), labels [str(pitch)];
- vowel_clip: a formant vowel of VOWELS (a e i o u), labels [vowel];
- mixture_clip: 0..3 of SOURCE_NAMES (chirp clicks hiss hum), labels the names in that order;
- event_clip: 1..3 of EVENT_NAMES (beep knock whistle), labels [{"label", "start", "end"}] (ms) by start.

Each clip has a random timbre, a random peak level (-20..0 dBFS) and background noise of
random colour at a random SNR. Every draw comes from the stream passed in, in a fixed order,
so a clip depends only on that stream's state.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hearflow.core.hear import ARCHIVE_RATE

SAMPLE_RATE = ARCHIVE_RATE  # demo archives are packed like the public ones

# ------------------------------------------------------------------------------ signal helpers


def _time(n: int) -> np.ndarray:
    """Sample times [n] in seconds."""
    return np.arange(n) / SAMPLE_RATE


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def _sin(cycles: np.ndarray) -> np.ndarray:
    """sin(2 pi cycles), same shape, as float32.

    The phase is wrapped to one cycle in float64 first, so it stays exact (error < 1e-6)
    over long clips; float32 makes numpy's sine several times faster.
    """
    return np.sin((2 * np.pi * (cycles - np.floor(cycles))).astype(np.float32))


def _db(gain_db: float) -> float:
    return 10.0 ** (gain_db / 20.0)


def _fft_filter(x: np.ndarray, response: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Filter `x` [n] by the frequency response `response(f_hz)` (zero-padded, no wrap-around)."""
    n_fft = 2 * len(x)
    f_hz = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    return np.fft.irfft(np.fft.rfft(x, n_fft) * response(f_hz), n_fft)[: len(x)]


def _resonator(z1: np.ndarray, centre_hz: float, bandwidth_hz: float) -> np.ndarray:
    """Complex response of a 2-pole digital resonator with unit gain at DC.

    `z1` is exp(-2j pi f / SAMPLE_RATE) at the frequencies f of interest (Hz).
    """
    r = np.exp(-np.pi * bandwidth_hz / SAMPLE_RATE)
    a1, a2 = -2.0 * r * np.cos(2.0 * np.pi * centre_hz / SAMPLE_RATE), r * r
    return (1.0 + a1 + a2) / (1.0 + z1 * (a1 + a2 * z1))


def _colored_noise(rng: np.random.Generator, n: int, slope: float) -> np.ndarray:
    """Unit-RMS noise [n] whose power falls as f**-slope (0 white, 1 pink, 2 brown)."""
    f_hz = np.maximum(np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE), 20.0)
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * f_hz ** (-slope / 2.0), n)
    return x / _rms(x)


def _fades(n: int, fade_s: float) -> np.ndarray:
    """Envelope [n]: linear fade-in and fade-out of `fade_s` seconds around a flat top."""
    t, end = _time(n), n / SAMPLE_RATE
    fade_s = min(fade_s, end / 2)
    return np.interp(t, [0.0, fade_s, end - fade_s, end], [0.0, 1.0, 1.0, 0.0])


def _finish(rng: np.random.Generator, signal: np.ndarray, snr_db: tuple[float, float]) -> np.ndarray:
    """Add background noise of random colour and SNR, then scale to a random peak level.

    The SNR (dB, drawn from `snr_db`) is relative to the RMS of the audible part of `signal`;
    the peak is 0.99 * (-20..0 dBFS), so the clip never clips.
    """
    peak = np.max(np.abs(signal))
    audible = signal[np.abs(signal) > 1e-3 * peak] if peak > 0 else signal[:0]
    level = _rms(audible) if audible.size else 1.0  # an empty clip is noise alone
    noise = _colored_noise(rng, signal.size, rng.uniform(0.0, 2.0))
    mix = signal + noise * level * _db(-rng.uniform(*snr_db))
    return mix * (0.99 * _db(rng.uniform(-20.0, 0.0)) / np.max(np.abs(mix)))


# ------------------------------------------------------------------------------ tones


TONE_S = 1.0
PITCHES = tuple(range(48, 72))  # MIDI; 48 is a C, so vocabulary idx % 12 is the chroma


def tone_clip(rng: np.random.Generator, cls: int | None) -> tuple[np.ndarray, list]:
    """A 1 s harmonic note of pitch `PITCHES[cls]` with a random timbre and ADSR envelope."""
    pitch = PITCHES[cls if cls is not None else rng.integers(len(PITCHES))]
    t = _time(round(TONE_S * SAMPLE_RATE))
    vibrato = rng.integers(2) * rng.uniform(0.0, 0.006)  # relative depth, at most 1/10 tone
    rel_freq = 1.0 + vibrato * _sin(rng.uniform(4.0, 7.0) * t + rng.uniform())
    cycles = 440.0 * 2.0 ** ((pitch - 69) / 12) * np.cumsum(rel_freq) / SAMPLE_RATE
    harmonic = np.arange(1, rng.integers(1, 13) + 1)
    stretch = rng.integers(2) * rng.uniform(0.0, 4e-4)  # piano-like inharmonicity
    ratios = harmonic * np.sqrt(1.0 + stretch * harmonic**2)
    amps = rng.uniform(0.1, 1.0, harmonic.size) * harmonic ** -rng.uniform(0.0, 2.0)
    offsets = rng.uniform(0.0, 1.0, (harmonic.size, 1))  # cycles
    tone = amps @ _sin(ratios[:, None] * cycles + offsets)  # [H] @ [H, n] -> [n]
    attack, decay, hold, release = rng.uniform([0.003, 0.03, 0.2, 0.03], [0.08, 0.3, 0.6, 0.2])
    knots = rng.uniform(0.0, 0.1) + np.cumsum([0.0, attack, decay, hold, release])
    sustain = rng.uniform(0.3, 1.0)
    envelope = np.interp(t, knots, [0.0, 1.0, sustain, sustain, 0.0])
    return _finish(rng, tone * envelope, (0.0, 30.0)), [str(pitch)]


# ------------------------------------------------------------------------------ vowels


VOWEL_S = 1.0
_FORMANTS_HZ = {  # F1, F2, F3 of an adult male speaker (Peterson & Barney)
    "a": (730.0, 1090.0, 2440.0),
    "e": (530.0, 1840.0, 2480.0),
    "i": (270.0, 2290.0, 3010.0),
    "o": (570.0, 840.0, 2410.0),
    "u": (300.0, 870.0, 2240.0),
}
VOWELS = tuple(sorted(_FORMANTS_HZ))


def vowel_clip(rng: np.random.Generator, cls: int | None) -> tuple[np.ndarray, list]:
    """A 1 s vowel: a gliding, jittered glottal pulse train through a formant cascade."""
    vowel = VOWELS[cls if cls is not None else rng.integers(len(VOWELS))]
    n = round(VOWEL_S * SAMPLE_RATE)
    t = _time(n)
    glide = rng.uniform(-3.0, 3.0) * t / t[-1]  # semitones
    jitter = np.interp(t, np.linspace(0.0, 1.0, 21), rng.normal(0.0, 0.01, 21))  # relative
    f0 = np.exp(rng.uniform(np.log(80.0), np.log(300.0))) * 2.0 ** (glide / 12) * (1.0 + jitter)
    pulses = np.flatnonzero(np.diff(np.floor(np.cumsum(f0) / SAMPLE_RATE), prepend=0.0))
    onset, length = rng.uniform([0.0, 0.5], [0.15, 0.85])
    voicing = np.interp(t, onset + np.array([0.0, 0.03, length - 0.03, length]), [0, 1, 1, 0])
    voiced = np.zeros(n)
    voiced[pulses] = 1.0 + rng.normal(0.0, 0.05, pulses.size)  # shimmer
    voiced *= voicing
    breath = rng.uniform(0.0, 0.5) * _rms(voiced) * rng.standard_normal(n) * voicing
    speaker = rng.uniform(0.9, 1.1)  # vocal-tract length, shifts every formant together
    centres = np.array([*_FORMANTS_HZ[vowel], 3500.0, 4500.0]) * speaker
    centres *= 1.0 + rng.normal(0.0, 0.03, centres.size)
    bandwidths = rng.uniform([50, 60, 100, 200, 250], [110, 150, 250, 350, 400])
    tilt_hz = rng.uniform(150.0, 600.0)

    def tract(f_hz: np.ndarray) -> np.ndarray:
        response = 1.0 / (1.0 + f_hz / tilt_hz)  # glottal roll-off with lip radiation
        z1 = np.exp(-2j * np.pi * f_hz / SAMPLE_RATE)
        for centre, bandwidth in zip(centres, bandwidths):
            response = response * _resonator(z1, centre, bandwidth)
        return response

    return _finish(rng, _fft_filter(voiced + breath, tract), (0.0, 30.0)), [vowel]


# ------------------------------------------------------------------------------ mixtures


MIXTURE_S = 1.5


def _hum(rng: np.random.Generator, n: int) -> np.ndarray:
    """Low harmonic drone (40..120 Hz) with slow amplitude modulation."""
    t = _time(n)
    harmonic = np.arange(1, rng.integers(3, 11) + 1)
    amps = rng.uniform(0.2, 1.0, harmonic.size) / harmonic
    offsets = rng.uniform(0.0, 1.0, (harmonic.size, 1))  # cycles
    cycle = np.linspace(0.0, 1.0, 4097)  # one period, read as a wavetable
    table = amps @ _sin(harmonic[:, None] * cycle + offsets)
    drone = np.interp((rng.uniform(40.0, 120.0) * t) % 1.0, cycle, table)
    return drone * (1.0 + 0.3 * _sin(rng.uniform(0.2, 2.0) * t))


def _hiss(rng: np.random.Generator, n: int) -> np.ndarray:
    """White noise through a band 0.3..1.5 octaves wide centred at 1.5..12 kHz."""
    centre = np.exp(rng.uniform(np.log(1500.0), np.log(12000.0)))
    half_width = rng.uniform(0.15, 0.75)  # octaves

    def band(f_hz: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * (np.log2(np.maximum(f_hz, 1.0) / centre) / half_width) ** 2)

    return _fft_filter(rng.standard_normal(n), band)


def _clicks(rng: np.random.Generator, n: int) -> np.ndarray:
    """Irregular train (3..25 per s) of short decaying noise bursts."""
    period = 1.0 / rng.uniform(3.0, 25.0)
    times = np.arange(rng.uniform(0.0, period), n / SAMPLE_RATE, period)
    times += rng.uniform(-0.2, 0.2, times.size) * period
    starts = np.clip(np.round(times * SAMPLE_RATE).astype(int), 0, n - 1)
    tau = rng.uniform(0.5e-3, 3e-3) * SAMPLE_RATE  # samples
    k = np.arange(int(6 * tau))
    bursts = rng.standard_normal((times.size, k.size)) * np.exp(-k / tau)  # [clicks, len]
    out = np.zeros(n + k.size)
    np.add.at(out, starts[:, None] + k, rng.uniform(0.3, 1.0, (times.size, 1)) * bursts)
    return out[:n]


def _chirp(rng: np.random.Generator, n: int) -> np.ndarray:
    """Repeated sweeps of 0.6..3 octaves, up or down, every 0.15..0.5 s."""
    t = _time(n)
    octaves = rng.uniform(0.6, 3.0) * rng.choice([-1.0, 1.0])
    sweep = (t / rng.uniform(0.15, 0.5) + rng.uniform()) % 1.0
    f_hz = np.exp(rng.uniform(np.log(300.0), np.log(6000.0))) * 2.0 ** (octaves * sweep)
    return _sin(np.cumsum(np.clip(f_hz, 100.0, 16000.0)) / SAMPLE_RATE)


_SOURCES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "chirp": _chirp,
    "clicks": _clicks,
    "hiss": _hiss,
    "hum": _hum,
}
SOURCE_NAMES = tuple(_SOURCES)


def mixture_clip(rng: np.random.Generator, cls: int | None) -> tuple[np.ndarray, list]:
    """A 1.5 s mixture of 0..3 sources (1..3 including `cls`), each over a random segment."""
    n, k = round(MIXTURE_S * SAMPLE_RATE), len(SOURCE_NAMES)
    if cls is None:
        present = rng.choice(k, rng.choice(4, p=[0.1, 0.3, 0.35, 0.25]), replace=False)
    else:
        n_others = rng.choice(3, p=[0.35, 0.4, 0.25])
        others = rng.choice(np.delete(np.arange(k), cls), n_others, replace=False)
        present = np.array([cls, *others])
    signal = np.zeros(n)
    for i in sorted(present.tolist()):
        length = rng.uniform(0.5, MIXTURE_S)  # s
        start = rng.uniform(0.0, MIXTURE_S - length)
        segment = np.interp(_time(n) - start, [0.0, 0.02, length - 0.02, length], [0, 1, 1, 0])
        source = _SOURCES[SOURCE_NAMES[i]](rng, n) * segment
        signal += source / _rms(source) * _db(rng.uniform(-10.0, 0.0))
    return _finish(rng, signal, (5.0, 30.0)), [SOURCE_NAMES[i] for i in sorted(present.tolist())]


# ------------------------------------------------------------------------------ events


EVENT_S = 3.0


def _beep(rng: np.random.Generator, n: int) -> np.ndarray:
    """Steady tone burst at 0.6..3 kHz, with a weak second harmonic."""
    cycles = rng.uniform(600.0, 3000.0) * _time(n)
    return (_sin(cycles) + rng.uniform(0.0, 0.5) * _sin(2 * cycles)) * _fades(n, 0.005)


def _knock(rng: np.random.Generator, n: int) -> np.ndarray:
    """A few damped modes at 0.1..1.5 kHz plus a short noise transient."""
    t = _time(n)
    modes = rng.integers(2, 6)
    freqs = rng.uniform(100.0, 1500.0, (modes, 1))
    taus = rng.uniform(0.08, 0.3, (modes, 1)) * n / SAMPLE_RATE
    offsets = rng.uniform(0.0, 1.0, (modes, 1))  # cycles
    ringing = _sin(freqs * t + offsets) * np.exp(-t / taus)  # [modes, n]
    body = rng.uniform(0.3, 1.0, modes) @ ringing
    transient = rng.uniform(0.2, 1.0) * rng.standard_normal(n) * np.exp(-t / 0.005)
    return (body + transient) * _fades(n, 0.001)


def _whistle(rng: np.random.Generator, n: int) -> np.ndarray:
    """Tone gliding up to an octave up or down from 0.8..3 kHz, with vibrato."""
    t = _time(n)
    glide = rng.uniform(-1.0, 1.0) * t / t[-1]  # octaves
    vibrato = 0.01 * _sin(rng.uniform(5.0, 8.0) * t)
    f_hz = rng.uniform(800.0, 3000.0) * 2.0**glide * (1.0 + vibrato)
    return _sin(np.cumsum(f_hz) / SAMPLE_RATE) * _fades(n, 0.03)


_EVENTS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "beep": _beep,
    "knock": _knock,
    "whistle": _whistle,
}
EVENT_NAMES = tuple(_EVENTS)


def event_clip(rng: np.random.Generator, cls: int | None) -> tuple[np.ndarray, list]:
    """A 3 s clip of 1..3 possibly overlapping events (the first of class `cls`) in noise.

    Labels are [{"label", "start", "end"}] in ms, multiples of 0.1 ms, sorted by start.
    """
    duration = round(EVENT_S * 10000)  # in 0.1 ms, so that label times are exact
    signal = np.zeros(duration * SAMPLE_RATE // 10000)
    classes = rng.integers(0, len(EVENT_NAMES), rng.integers(1, 4))
    if cls is not None:
        classes[0] = cls
    events = []
    for c in classes.tolist():
        length = int(rng.integers(1500, 8001))
        start = int(rng.integers(0, duration - length + 1))
        first = round(start * SAMPLE_RATE / 10000)
        stop = round((start + length) * SAMPLE_RATE / 10000)
        sound = _EVENTS[EVENT_NAMES[c]](rng, stop - first)
        signal[first:stop] += sound / _rms(sound) * _db(rng.uniform(-10.0, 0.0))
        events.append({"label": EVENT_NAMES[c], "start": start / 10, "end": (start + length) / 10})
    events.sort(key=lambda e: (e["start"], e["label"]))
    return _finish(rng, signal, (5.0, 30.0)), events
