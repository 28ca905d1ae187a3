"""Speech-to-text benchmark: real-time factor, peak memory and word error rate per model.

    .venv/bin/python bench/stt.py                 # every packaged model
    .venv/bin/python bench/stt.py --model base --repeat 3
    STT_WORD_TIMESTAMPS=false .venv/bin/python bench/stt.py     # any STT_* setting applies

Data: the LibriVox clips (human speech, with reference text) in Debian's `pocketsphinx-testdata`
(/usr/share/pocketsphinx/test/data/librivox). Each model runs in its own child process so that its peak memory
(ru_maxrss: the model, CTranslate2's buffers, the decoded audio) is measured alone, as a transcription worker
would hold it. RTF = seconds spent transcribing / seconds of audio (decoding the file included, model load not).
WER is computed with jiwer over all clips after normalising both sides (lower case, no punctuation, hyphens
split, "Mr." -> "mister").

Targets (issue 10, on the 2-core machine): RTF <= 0.10 with base, WER <= 6 %, worker memory <= 1 GiB.
Live-segment latency is not measured here yet: live transcription is not built.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
MODELS = ("tiny.en", "base")
ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}


def normalise(text: str) -> str:
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(ABBREVIATIONS.get(word, word) for word in text.split())


def clips() -> list[tuple[Path, str]]:
    references = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        text, _, stem = line.rpartition("(")
        references[stem.rstrip(")").strip()] = text.replace("<s>", "").replace("</s>", "").strip()
    return [(LIBRIVOX / f"{stem}.wav", ref) for stem, ref in sorted(references.items())]


def measure(model: str, repeat: int) -> dict[str, object]:
    """Runs inside the child process: load the model, transcribe every clip `repeat` times."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaiwave.settings")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    import jiwer
    import numpy as np
    from django.conf import settings

    from transcription.audio import SAMPLE_RATE, audio_decode
    from transcription.engine import engine_get

    started = time.perf_counter()
    engine = engine_get(model)
    load_seconds = time.perf_counter() - started
    references, hypotheses = [], []
    audio_seconds = work_seconds = cpu_seconds = 0.0
    for run in range(repeat):
        for path, reference in clips():
            started, cpu_started = time.perf_counter(), time.process_time()
            (result,) = engine.transcribe_file(path, language="en")
            work_seconds += time.perf_counter() - started
            cpu_seconds += time.process_time() - cpu_started
            audio_seconds += result.duration
            if run == 0:
                references.append(normalise(reference))
                hypotheses.append(normalise(result.text))
    # A call recording is long: Whisper's 30 s windows are full. Measure that too, on the clips played back to
    # back with half a second of silence between them.
    gap = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    joined = np.concatenate([part for path, _ in clips() for part in (audio_decode(path).mono(), gap)])
    long_work = long_cpu = 0.0
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        long_result = engine.transcribe_samples(joined, language="en")
        long_work += time.perf_counter() - started
        long_cpu += time.process_time() - cpu_started
    long_seconds = len(joined) / SAMPLE_RATE * repeat
    return {
        "model": model,
        "clips": len(references),
        "audio_seconds": round(audio_seconds / repeat, 2),
        "load_seconds": round(load_seconds, 2),
        "rtf": round(work_seconds / audio_seconds, 3),
        "cpu_rtf": round(cpu_seconds / audio_seconds, 3),
        "long_rtf": round(long_work / long_seconds, 3),
        "long_cpu_rtf": round(long_cpu / long_seconds, 3),
        "long_wer": round(float(jiwer.wer(" ".join(references), normalise(long_result.text))), 4),
        "wer": round(float(jiwer.wer(references, hypotheses)), 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average": round(os.getloadavg()[0], 2),
        "settings": {
            "compute_type": settings.STT_COMPUTE_TYPE,
            "beam_size": settings.STT_BEAM_SIZE,
            "vad_filter": settings.STT_VAD_FILTER,
            "word_timestamps": settings.STT_WORD_TIMESTAMPS,
            "threads": settings.STT_THREADS,
        },
        "errors": [
            {"reference": ref, "hypothesis": hyp} for ref, hyp in zip(references, hypotheses, strict=True) if ref != hyp
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model to measure (repeatable); default: all packaged")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the clip set (RTF averages them)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not LIBRIVOX.exists():
        sys.exit("pocketsphinx-testdata is not installed: apt-get install -y pocketsphinx-testdata")
    if args.child:
        print(json.dumps(measure(args.model[0], args.repeat)))
        return
    results = []
    for model in args.model or MODELS:
        child = subprocess.run(
            [sys.executable, __file__, "--child", "--model", model, "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            print(f"{model}: failed\n{child.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(f"machine: {os.cpu_count()} cores; 1-minute load average at the end of each run in the last column")
    if results:
        print(f"engine settings: {results[0]['settings']}")
    print(
        f"{'model':<8} {'audio s':>7} {'load s':>6} {'RTF':>6} {'cpuRTF':>6} {'longRTF':>7} {'longCPU':>7} "
        f"{'WER':>6} {'longWER':>7} {'peakMiB':>7} {'loadavg':>7}"
    )
    for r in results:
        print(
            f"{r['model']:<8} {r['audio_seconds']:>7} {r['load_seconds']:>6} {r['rtf']:>6} {r['cpu_rtf']:>6} "
            f"{r['long_rtf']:>7} {r['long_cpu_rtf']:>7} {float(str(r['wer'])) * 100:>5.1f}% "
            f"{float(str(r['long_wer'])) * 100:>6.1f}% {r['peak_rss_mib']:>7} {r['load_average']:>7}"
        )
    print(
        "RTF: wall seconds / audio seconds per clip (3-7 s clips: each pays a whole 30 s Whisper window); "
        "longRTF: the clips back to back (a recording); cpu*: CPU seconds / audio seconds (all threads)."
    )
    for r in results:
        for error in r["errors"]:
            print(
                f"  {r['model']}: ref: {error['reference']}\n  {' ' * len(str(r['model']))}  hyp: {error['hypothesis']}"
            )
    print("targets: RTF <= 0.10 (base), WER <= 6%, worker memory <= 1024 MiB; live latency: not measured (not built)")


if __name__ == "__main__":
    main()
