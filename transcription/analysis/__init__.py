"""Call analysis: summary, action items, key topics, talk time, questions.

`analyze(segments, context)` picks the configured analyzer: the embedded rules analyzer
(no model, no network) or an OpenAI-compatible chat-completions backend, which falls
back to the rules analyzer whenever its answer is missing or malformed.
"""

from transcription.analysis.types import ActionItem, Analysis, AnalysisContext, Question, SpokenSegment

__all__ = ["ActionItem", "Analysis", "AnalysisContext", "Question", "SpokenSegment"]
