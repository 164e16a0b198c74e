"""LLMs: a small protocol and a client for any OpenAI-compatible chat endpoint.

Ollama, vLLM, llama.cpp's server, LM Studio and hosted APIs all speak `/v1/chat/completions`.
Output is asked for as JSON constrained by a JSON schema (`response_format`), then parsed
leniently (`repair_json`: code fences, prose around the object, trailing commas), validated with
pydantic and, when that fails, asked for once more with the error shown to the model
(`structured`). Every call's prompt and completion tokens are counted, so the cost per `add` can
be published.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from engramdb.errors import InvalidInput, ModelError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "LLM",
    "Attempt",
    "Completion",
    "OpenAIChat",
    "Usage",
    "ask_structured",
    "repair_json",
    "structured",
]

ChatMessage = dict[str, str]
Model = TypeVar("Model", bound=BaseModel)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


@dataclass(frozen=True)
class Usage:
    """Tokens spent, as the endpoint reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.calls + other.calls,
        )


@dataclass(frozen=True)
class Completion:
    """One answer: its text and what it cost."""

    text: str
    usage: Usage


class LLM(Protocol):
    """A chat model that can be asked for JSON matching a schema."""

    @property
    def model_id(self) -> str: ...

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 1024,
    ) -> Completion: ...


class OpenAIChat:
    """A client for an OpenAI-compatible `/chat/completions` endpoint.

    Args:
        base_url: the API root, e.g. `http://localhost:11434/v1` (Ollama),
            `http://localhost:8000/v1` (vLLM, llama.cpp server).
        model: the model name the server knows.
        api_key: sent as a bearer token; default: `$ENGRAMDB_LLM_API_KEY`, then
            `$OPENAI_API_KEY`, then none.
        json_mode: "schema" sends `response_format: {"type": "json_schema", ...}` (OpenAI,
            vLLM, Ollama, LM Studio); "llama-cpp" sends `{"type": "json_object", "schema": ...}`
            (llama-cpp-python's server, grammar-constrained); "object" sends
            `{"type": "json_object"}`; "none" relies on the prompt alone.
        timeout_s: per request.
        temperature: sampling temperature (0 for extraction).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        json_mode: Literal["schema", "llama-cpp", "object", "none"] = "schema",
        timeout_s: float = 120.0,
        temperature: float = 0.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidInput("base_url", f"expected an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.json_mode = json_mode
        self.temperature = temperature
        self.api_key = (
            api_key or os.environ.get("ENGRAMDB_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        )
        self.timeout_s = timeout_s
        self._client = client
        self._lock = threading.Lock()
        self.usage = Usage()

    @property
    def model_id(self) -> str:
        return f"openai-chat:{self.model}"

    def _http(self) -> httpx.Client:
        if self._client is None:
            try:
                import httpx
            except ImportError as exc:  # pragma: no cover - httpx ships with the llm extra
                raise ModelError("the LLM client needs httpx: pip install 'engramdb[llm]'") from exc
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.Client(timeout=self.timeout_s, headers=headers)
        return self._client

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 1024,
    ) -> Completion:
        """One chat completion; JSON-constrained when a schema is given.

        Raises:
            ModelError: the endpoint cannot be reached or answered with an error or no text.
        """
        import httpx

        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": self.temperature,
            "max_tokens": max_tokens,
        }
        if schema is not None and self.json_mode == "schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema, "strict": True},
            }
        elif schema is not None and self.json_mode == "llama-cpp":
            body["response_format"] = {"type": "json_object", "schema": schema}
        elif schema is not None and self.json_mode == "object":
            body["response_format"] = {"type": "json_object"}
        try:
            response = self._http().post(f"{self.base_url}/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise ModelError(f"LLM endpoint {self.base_url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise ModelError(f"LLM endpoint answered {response.status_code}: {response.text[:300]}")
        try:
            payload = response.json()
            text = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ModelError(f"LLM endpoint answered without a message: {exc}") from exc
        if not isinstance(text, str):
            raise ModelError("LLM endpoint answered with an empty message")
        raw_usage = payload.get("usage") or {}
        usage = Usage(
            int(raw_usage.get("prompt_tokens") or 0),
            int(raw_usage.get("completion_tokens") or 0),
            1,
        )
        with self._lock:
            self.usage = self.usage + usage
        return Completion(text, usage)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            self._client.close()


def _balanced_object(text: str) -> str | None:
    """The first balanced {...} in `text`, skipping braces inside strings."""
    start = text.find("{")
    while start != -1:
        depth, in_string, escaped = 0, False, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_string:
                escaped = ch == "\\" and not escaped
                if ch == '"' and not escaped:
                    in_string = False
                continue
            if ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start : i + 1]
        start = text.find("{", start + 1)
    return None


def repair_json(text: str) -> Any:
    """Parse a model's JSON leniently: fences, prose around it, trailing commas.

    Raises:
        ValueError: no JSON object can be recovered.
    """
    candidates = [text.strip()]
    fenced = _FENCE.search(text)
    if fenced:
        candidates.append(fenced.group(1).strip())
    found = _balanced_object(text)
    if found:
        candidates.append(found)
    for candidate in candidates:
        for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
            try:
                return json.loads(attempt)
            except ValueError:
                continue
    raise ValueError(f"no JSON object in the model's answer: {text[:200]!r}")


@dataclass(frozen=True)
class Attempt(Generic[Model]):
    """What asking for structured output gave: the object (None when every try failed), the
    tokens spent over all tries, and the last problem."""

    value: Model | None
    usage: Usage
    problem: str = ""


def ask_structured(
    llm: LLM,
    messages: Sequence[ChatMessage],
    model: type[Model],
    *,
    retries: int = 1,
    max_tokens: int = 1024,
) -> Attempt[Model]:
    """Ask for JSON matching `model`'s schema; repair, validate, and retry with the error.

    Never raises for a model's failure (unreachable, an error status, invalid output): the
    answer says so, with what the failed tries cost.
    """
    schema = model.model_json_schema()
    history = list(messages)
    spent = Usage()
    problem = ""
    for _ in range(retries + 1):
        try:
            answer = llm.complete(history, schema=schema, max_tokens=max_tokens)
        except ModelError as exc:
            return Attempt(None, spent, str(exc))
        spent = spent + answer.usage
        try:
            return Attempt(model.model_validate(repair_json(answer.text)), spent)
        except (ValueError, ValidationError) as exc:
            problem = str(exc)[:500]
            history = [
                *messages,
                {"role": "assistant", "content": answer.text[:2000]},
                {
                    "role": "user",
                    "content": "That was not valid JSON for the schema: "
                    f"{problem}\nAnswer again with only the JSON object.",
                },
            ]
    return Attempt(None, spent, f"no valid output after {retries + 1} attempts: {problem}")


def structured(
    llm: LLM,
    messages: Sequence[ChatMessage],
    model: type[Model],
    *,
    retries: int = 1,
    max_tokens: int = 1024,
) -> tuple[Model, Usage]:
    """Ask for JSON matching `model`'s schema (`ask_structured`).

    Returns:
        The validated object and the tokens spent over all attempts.

    Raises:
        ModelError: the endpoint failed, or no attempt produced valid output.
    """
    attempt = ask_structured(llm, messages, model, retries=retries, max_tokens=max_tokens)
    if attempt.value is None:
        raise ModelError(f"the LLM gave no valid output: {attempt.problem}")
    return attempt.value, attempt.usage
