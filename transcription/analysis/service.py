"""Pick the analyzer from settings and fall back to the rules when the LLM fails."""

from __future__ import annotations

import logging

from django.conf import settings

from transcription.analysis.llm import AnalyzerUnavailable, analyze_with_llm
from transcription.analysis.rules import analyze_with_rules, talk_time
from transcription.analysis.types import Analysis, AnalysisContext, SpokenSegment

logger = logging.getLogger("scaiwave.analysis")


def analyze(segments: list[SpokenSegment], context: AnalysisContext) -> Analysis:
    """Analyse a transcript. Never raises for a backend failure: the rules analyzer answers instead."""
    if settings.ANALYSIS_BACKEND == "openai" and settings.ANALYSIS_OPENAI_BASE_URL:
        try:
            result = analyze_with_llm(segments, context)
            # Talk time is arithmetic, not opinion: always measured, never asked of the model.
            result.talk_time = talk_time(segments)
            return result
        except AnalyzerUnavailable as exc:
            logger.warning("LLM analyzer failed; using the rules analyzer", extra={"reason": str(exc)})
    return analyze_with_rules(segments, context)
