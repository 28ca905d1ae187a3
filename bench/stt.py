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

Targets (issue 10, on the 2-core machine): post-call RTF <= 0.10 with base (longRTF: a recording), WER <= 6 %,
worker memory <= 1 GiB.

Live latency (`--live`, see live_measure below): speech end to final segment, p50/p95, on the live recognizer.
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
RECORDING_PASSES = 4
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
    # The post-call figure. A call recording is long, so Whisper's 30 s windows are full; a 3 s clip alone pays
    # for a whole window. The recording here is the clip set played back to back RECORDING_PASSES times with
    # half a second of silence between clips (about 1.8 minutes of speech).
    gap = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    one_pass = [part for path, _ in clips() for part in (audio_decode(path).mono(), gap)]
    joined = np.concatenate(one_pass * RECORDING_PASSES)
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
        "long_wer": round(float(jiwer.wer(" ".join(references * RECORDING_PASSES), normalise(long_result.text))), 4),
        "recording_seconds": round(len(joined) / SAMPLE_RATE, 1),
        "wer": round(float(jiwer.wer(references, hypotheses)), 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average": round(os.getloadavg()[0], 2),
        "settings": {
            "compute_type": settings.STT_COMPUTE_TYPE,
            "beam_size": settings.STT_BEAM_SIZE,
            "vad_filter": settings.STT_VAD_FILTER,
            "word_timestamps": settings.STT_WORD_TIMESTAMPS,
            "threads": settings.STT_THREADS,
            "temperatures": list(settings.STT_TEMPERATURES),
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
        "longRTF (the post-call figure): a recording, the clip set back to back "
        f"{RECORDING_PASSES} times ({results[0]['recording_seconds'] if results else '?'} s); "
        "RTF: each 3-7 s clip alone (each pays a whole 30 s Whisper window); "
        "cpu*: CPU seconds / audio seconds (all threads)."
    )
    for r in results:
        for error in r["errors"]:
            print(
                f"  {r['model']}: ref: {error['reference']}\n  {' ' * len(str(r['model']))}  hyp: {error['hypothesis']}"
            )
    print("targets: RTF <= 0.10 (base), WER <= 6%, worker memory <= 1024 MiB; live latency: run with --live")


# --- Live latency ------------------------------------------------------------------------------------------
#
#     .venv/bin/python bench/stt.py --live                       # tiny.en and base, 1 and 3 speakers
#     .venv/bin/python bench/stt.py --live --model tiny.en --speakers 1 --speakers 4
#
# The live recognizer (transcription/live/recognizer.py: utterance cutting + one decoding thread) is fed the LibriVox
# clips as LiveKit's track egress would: 48 kHz s16le in 20 ms frames, paced in real time, the clips back to back
# with LIVE_GAP seconds of silence between them. With N speakers, N tracks carry the same clips, each started
# LIVE_STAGGER seconds after the previous one, all sharing the one recognizer (as tracks of one process do).
# Latency of a clip = wall time its last final segment was delivered - wall time its last voiced frame was fed.
# Utterances the recognizer dropped because it fell behind (TRANSCRIPTION_LIVE_MAX_BACKLOG_SECONDS) are counted:
# a run with drops reports them rather than hiding them in the latency.

LIVE_GAP = 1.5
LIVE_STAGGER = 0.7
LIVE_PASSES = 2  # the clip set is streamed twice: 10 utterances per speaker
FRAME_SECONDS = 0.02


def _speech_end(samples: object, rate: int) -> float:
    """Seconds from the clip's start to its last 30 ms frame above the utterance buffer's voice threshold."""
    import numpy as np

    data = np.asarray(samples, dtype=np.float32)
    frame = int(rate * 0.03)
    frames = len(data) // frame
    rms = np.sqrt(np.mean(np.square(data[: frames * frame].reshape(frames, frame)), axis=1))
    voiced = np.nonzero(rms >= 0.01)[0]
    return float((voiced[-1] + 1) * frame / rate) if len(voiced) else 0.0


def live_measure(model: str, speakers: int) -> dict[str, object]:
    """Runs inside the child process: stream the clips through the live recognizer in real time."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scaiwave.settings")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    import threading

    import jiwer
    import numpy as np
    from django.conf import settings

    from transcription.audio import SAMPLE_RATE, audio_decode
    from transcription.engine import engine_get
    from transcription.live.recognizer import Dropped, Heard, LiveRecognizer, TrackStream

    settings.TRANSCRIPTION_LIVE_MODEL = model
    engine_get(model)  # loaded before the clock starts, as a running server has it
    items = clips() * LIVE_PASSES
    pcm_parts: list[bytes] = []
    spans: list[tuple[float, float]] = []  # (clip start, speech end) on the stream clock
    at = 1.0
    pcm_parts.append(b"\0\0" * int(48_000 * at))
    for path, _ in items:
        mono = audio_decode(path).mono()
        spans.append((at, at + _speech_end(mono, SAMPLE_RATE)))
        upsampled = np.repeat(mono, 3)  # 16 -> 48 kHz
        pcm_parts.append((np.clip(upsampled, -1, 1) * 32767).astype("<i2").tobytes())
        at += len(mono) / SAMPLE_RATE
        pcm_parts.append(b"\0\0" * int(48_000 * LIVE_GAP))
        at += LIVE_GAP
    stream_pcm = b"".join(pcm_parts)
    frame_bytes = int(48_000 * FRAME_SECONDS) * 2

    recognizer = LiveRecognizer()
    lock = threading.Lock()
    heard: list[tuple[int, float, Heard]] = []
    dropped: list[tuple[int, Dropped]] = []
    streams = []
    for speaker in range(speakers):

        def on_heard(item: Heard, speaker: int = speaker) -> None:
            with lock:
                heard.append((speaker, time.monotonic(), item))

        def on_drop(item: Dropped, speaker: int = speaker) -> None:
            with lock:
                dropped.append((speaker, item))

        streams.append(
            TrackStream(
                track_sid=f"TR_{speaker}",
                language="en",
                offset=0.0,
                on_heard=on_heard,
                on_drop=on_drop,
                recognizer=recognizer,
                model=model,
            )
        )
    offsets = [speaker * LIVE_STAGGER for speaker in range(speakers)]
    total = len(stream_pcm) // frame_bytes
    t0 = time.monotonic()
    cpu0 = time.process_time()
    for index in range(total + int(max(offsets) / FRAME_SECONDS) + 1):
        now_stream = index * FRAME_SECONDS
        for speaker, stream in enumerate(streams):
            own = round((now_stream - offsets[speaker]) / FRAME_SECONDS)
            if 0 <= own < total:
                stream.feed(stream_pcm[own * frame_bytes : (own + 1) * frame_bytes])
        delay = t0 + (index + 1) * FRAME_SECONDS - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    for stream in streams:
        stream.flush()
    for stream in streams:
        stream.wait(timeout=120)
    cpu = time.process_time() - cpu0

    latencies: list[float] = []
    texts: dict[int, list[str]] = {speaker: [] for speaker in range(speakers)}
    for speaker in range(speakers):
        finals = sorted((h.end, when, h.text) for s, when, h in heard if s == speaker and h.final)
        for _, _, text in finals:
            texts[speaker].append(text)
        for clip_start, speech_end in spans:
            window_end = speech_end + LIVE_GAP
            mine = [when for end, when, _ in finals if clip_start <= end <= window_end + 0.5]
            if mine:
                fed_at = t0 + offsets[speaker] + speech_end
                latencies.append(max(mine) - fed_at)
    references = " ".join(normalise(ref) for _, ref in items)
    wers = [float(jiwer.wer(references, normalise(" ".join(texts[s])))) for s in range(speakers)]
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return round(float(np.percentile(ordered, q)), 3) if ordered else float("nan")

    return {
        "model": model,
        "speakers": speakers,
        "utterances": len(spans) * speakers,
        "measured": len(ordered),
        "p50": pct(50),
        "p95": pct(95),
        "max": round(max(ordered), 3) if ordered else float("nan"),
        "dropped": len(dropped),
        "dropped_seconds": round(sum(d.seconds for _, d in dropped), 1),
        "wer": round(sum(wers) / len(wers), 4),
        "cpu_per_audio_second": round(cpu / (len(stream_pcm) / 2 / 48_000 * speakers), 3),
        "load_average": round(os.getloadavg()[0], 2),
    }


def live_main(models: list[str], speaker_counts: list[int]) -> None:
    results = []
    for model in models:
        for speakers in speaker_counts:
            child = subprocess.run(
                [sys.executable, __file__, "--child-live", "--model", model, "--speakers", str(speakers)],
                capture_output=True,
                text=True,
                check=False,
            )
            if child.returncode != 0:
                print(f"{model} x{speakers}: failed\n{child.stderr[-2000:]}", file=sys.stderr)
                continue
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(f"live latency: speech end -> final segment; machine: {os.cpu_count()} cores; real-time paced")
    print(
        f"{'model':<8} {'spk':>3} {'utts':>4} {'p50 s':>6} {'p95 s':>6} {'max s':>6} {'dropped':>7} {'WER':>6} "
        f"{'cpu/s':>6} {'loadavg':>7}"
    )
    for r in results:
        print(
            f"{r['model']:<8} {r['speakers']:>3} {r['measured']:>4} {r['p50']:>6} {r['p95']:>6} {r['max']:>6} "
            f"{r['dropped']:>7} {float(str(r['wer'])) * 100:>5.1f}% {r['cpu_per_audio_second']:>6} "
            f"{r['load_average']:>7}"
        )
    print("target: p95 <= 2 s after the speaker pauses (the pause itself, TRANSCRIPTION_LIVE_MIN_SILENCE, included)")


def live_cli() -> bool:
    """Handle --live / --child-live; True if this run was a live one."""
    # allow_abbrev=False: otherwise the post-call child's `--child` would be read as `--child-live`.
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--live", action="store_true")
    parser.add_argument("--child-live", action="store_true")
    parser.add_argument("--model", action="append")
    parser.add_argument("--speakers", action="append", type=int)
    args, _ = parser.parse_known_args()
    if not (args.live or args.child_live):
        return False
    if not LIBRIVOX.exists():
        sys.exit("pocketsphinx-testdata is not installed: apt-get install -y pocketsphinx-testdata")
    if args.child_live:
        print(json.dumps(live_measure(args.model[0], (args.speakers or [1])[0])))
    else:
        live_main(args.model or list(MODELS), args.speakers or [1, 3])
    return True


if __name__ == "__main__":
    if not live_cli():
        main()
