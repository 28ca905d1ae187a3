"""The OpenAI-compatible backend, against a real local HTTP server standing in for the third-party API."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from transcription.analysis.service import analyze
from transcription.analysis.types import AnalysisContext, SpokenSegment

SEGMENTS = [
    SpokenSegment("Priya", 0, 4, "Can you send the contract by Friday?"),
    SpokenSegment("Ravi", 4, 6, "Yes, I will."),
]
CONTEXT = AnalysisContext(recorded_at=datetime(2026, 5, 29, 13), speakers=("Priya", "Ravi"))


class FakeChatCompletions:
    def __init__(self, content: str, status: int = 200):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                outer.requests.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                body = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def llm(settings):
    servers = []

    def start(content: str, status: int = 200) -> FakeChatCompletions:
        server = FakeChatCompletions(content, status)
        servers.append(server)
        settings.ANALYSIS_BACKEND = "openai"
        settings.ANALYSIS_OPENAI_BASE_URL = server.base_url
        settings.ANALYSIS_OPENAI_API_KEY = "sk-test"
        settings.ANALYSIS_OPENAI_TIMEOUT = 5
        return server

    yield start
    for server in servers:
        server.close()


def test_a_valid_llm_answer_is_used(llm):
    answer = {
        "summary": "Priya asked Ravi for the contract.",
        "action_items": [
            {
                "text": "Send the contract",
                "owner": "Ravi",
                "due_date": "2026-06-05",
                "speaker": "Priya",
                "at_seconds": 0,
            }
        ],
        "key_topics": ["contract"],
        "questions": [{"speaker": "Priya", "text": "Can you send the contract by Friday?", "at_seconds": 0}],
    }
    server = llm(json.dumps(answer))
    analysis = analyze(SEGMENTS, CONTEXT)
    assert analysis.analyzer == "openai"
    assert analysis.action_items[0].owner == "Ravi"
    assert analysis.action_items[0].due_date == date(2026, 6, 5)
    assert analysis.talk_time == {"Priya": 0.667, "Ravi": 0.333}  # measured, not asked
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test"
    assert request["body"]["response_format"] == {"type": "json_object"}
    assert "Priya: Can you send the contract" in request["body"]["messages"][1]["content"]


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ("this is not json", 200),
        (json.dumps({"summary": 42}), 200),
        (json.dumps({"summary": "x", "action_items": [{"text": "t", "due_date": "next friday"}]}), 200),
        ("{}", 500),
    ],
)
def test_a_bad_llm_answer_falls_back_to_the_rules(llm, content, status):
    llm(content, status)
    analysis = analyze(SEGMENTS, CONTEXT)
    assert analysis.analyzer == "rules"
    assert [(i.owner, i.due_date) for i in analysis.action_items] == [("Ravi", date(2026, 6, 5))]


def test_an_unreachable_llm_falls_back_to_the_rules(settings):
    settings.ANALYSIS_BACKEND = "openai"
    settings.ANALYSIS_OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    settings.ANALYSIS_OPENAI_TIMEOUT = 2
    assert analyze(SEGMENTS, CONTEXT).analyzer == "rules"
