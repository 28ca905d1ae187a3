"""Audio decoding memory: peak RSS of a worker decoding a 1-minute and a 2-hour file, as a post-call job does.

    .venv/bin/python bench/audio_memory.py                   # 60 s and 7200 s of FLAC silence
    .venv/bin/python bench/audio_memory.py --seconds 60 600 7200 --whole

Each file is FLAC silence made with ffmpeg (the audio bomb of issue 18: 1.7 MB for 2 hours). Each measurement runs
in its own child process, so its peak (ru_maxrss) is the decoder's alone: Django set up, then what a job does before
the recognizer — `audio_measure` (one streaming pass: duration, channel energy) and a second pass through
`audio_channel` (the blocks handed to the engine). `--whole` also measures `audio_decode` (the whole file in memory,
what jobs did before) for comparison; it needs about 0.5 GB per hour of audio. Target: streaming peaks within 64 MB
of each other from 1 minute to 2 hours.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAT_WITHIN_MB = 64


def silence(path: Path, seconds: int) -> Path:
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", str(seconds),
         "-c:a", "flac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def child(path: str, mode: str) -> None:
    """Runs in the child process: decode `path` and print the peak RSS as JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaiwave.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from transcription.audio import audio_channel, audio_decode, audio_measure

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if mode == "whole":
        seconds = audio_decode(path, max_seconds=None).duration
    else:
        seconds = audio_measure(path, max_seconds=None).duration
        for _block in audio_channel(path, channel=None, max_seconds=None):
            pass
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "baseline_kb": baseline, "peak_kb": peak, "elapsed": elapsed}))


def measure(path: Path, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), mode], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, nargs="+", default=[60, 7200])
    parser.add_argument("--whole", action="store_true", help="also measure the whole-file decode (needs memory)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    modes = ["stream", "whole"] if args.whole else ["stream"]
    peaks: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory(prefix="scaiwave-bench-audio-") as folder:
        for seconds in args.seconds:
            path = silence(Path(folder) / f"silence-{seconds}s.flac", seconds)
            size = path.stat().st_size
            for mode in modes:
                result = measure(path, mode)
                peak_mb = result["peak_kb"] / 1024
                peaks[mode].append(peak_mb)
                print(
                    f"{mode:6} {seconds:>6} s of audio ({size / 1e6:.2f} MB FLAC): decoded {result['seconds']:.0f} s "
                    f"in {result['elapsed']:.1f} s, peak RSS {peak_mb:.0f} MB "
                    f"(after Django setup {result['baseline_kb'] / 1024:.0f} MB)"
                )
    spread = max(peaks["stream"]) - min(peaks["stream"])
    verdict = "flat" if spread <= FLAT_WITHIN_MB else "NOT flat"
    print(f"streaming peak spread {spread:.0f} MB across {args.seconds} s: {verdict} (target <= {FLAT_WITHIN_MB} MB)")


if __name__ == "__main__":
    main()
