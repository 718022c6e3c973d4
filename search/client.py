"""The Python client of the HTTP API (``bertsearch serve``).

>>> with Client("http://127.0.0.1:8000") as client:
...     answers = client.ask("How long are logs kept?").answers
...     print(answers[0].text, answers[0].score, answers[0].path)

It returns the same result types as the embedded :class:`~bertsearch.search.searcher.Searcher`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from bertsearch.indexer.common.errors import BertsearchError
from bertsearch.indexer.records import DocumentRecord
from bertsearch.search.limits import InputType
from bertsearch.search.types import AskResult, Embeddings, SearchResult


class ClientError(BertsearchError):
    """A request to the server failed.

    Attributes:
        status_code: The HTTP status of the answer, or ``None`` when no answer came
            (timeout, connection refused).
        detail: The server's ``detail`` (a message, or FastAPI's list of validation errors),
            or a description of the transport failure.
    """

    def __init__(self, message: str, status_code: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code  # type: ignore[assignment]
        self.detail = detail if detail is not None else message


class Client:
    """Search and ask a bertsearch server over HTTP.

    Args:
        base_url: The server's address, e.g. ``http://127.0.0.1:8000``.
        timeout: Seconds to wait for each answer before raising :class:`ClientError`.
        api_key: The server's API key, sent as ``Authorization: Bearer <key>`` (needed when the
            server has keys).
    """

    def __init__(self, base_url: str, timeout: float = 30.0, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def search(self, query: str, top_k: int = 5, path_glob: str | None = None,
               mode: str | None = None, where: dict[str, Any] | None = None) -> SearchResult:
        """The ``top_k`` passages that best match ``query``, best first (``mode``: hybrid, dense, lexical;
        ``where``: a metadata filter, as :meth:`Searcher.search` takes it).

        Raises:
            ClientError: The server refused the request (e.g. 422 for an empty query) or did not answer.
        """
        body: dict[str, Any] = {"query": query, "top_k": top_k, "path_glob": path_glob}
        if mode is not None:
            body["mode"] = mode
        if where is not None:
            body["where"] = where
        return SearchResult.from_dict(self._request("POST", "/search", json=body))

    def ask(
        self,
        question: str,
        top_k: int = 5,
        passages: int | None = None,
        path_glob: str | None = None,
        threshold: float | None = None,
        mode: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> AskResult:
        """Answers to ``question``, best first, as :meth:`Searcher.ask` returns them.

        Raises:
            ClientError: The server refused the request or did not answer.
        """
        body: dict[str, Any] = {"question": question, "top_k": top_k, "path_glob": path_glob}
        if passages is not None:
            body["passages"] = passages
        if threshold is not None:
            body["threshold"] = threshold
        if mode is not None:
            body["mode"] = mode
        if where is not None:
            body["where"] = where
        return AskResult.from_dict(self._request("POST", "/ask", json=body))

    def embed(self, texts: list[str], normalize: bool = True, input_type: InputType = "passage") -> Embeddings:
        """Vectors of ``texts`` from the server's encoder, as :meth:`Searcher.embed` returns them
        (``input_type``: ``"passage"`` or ``"query"``, as there).

        Raises:
            ClientError: The server refused the request (e.g. 422 for an empty text) or did not answer.
        """
        body = {"texts": list(texts), "normalize": normalize, "input_type": input_type}
        data = self._request("POST", "/embed", json=body)
        vectors = np.asarray(data["embeddings"], dtype=np.float32).reshape(len(texts), data["dimension"])
        return Embeddings(model=data["model"], vectors=vectors, tokens=data["tokens"], precision=data["precision"])

    def health(self) -> dict[str, Any]:
        """The server's health (``status`` is ``"ok"`` when it can answer)."""
        return self._request("GET", "/health")

    def stats(self) -> dict[str, Any]:
        """What the served index holds and how it was built."""
        return self._request("GET", "/stats")

    def document(self, document_id: int) -> DocumentRecord:
        """The document with id ``document_id`` (the same record as :meth:`Searcher.document`).

        Raises:
            ClientError: With ``status_code`` 404 when there is no such document.
        """
        return DocumentRecord.from_dict(self._request("GET", f"/documents/{int(document_id)}"))

    def document_by_key(self, key: str, source: str = "api") -> DocumentRecord:
        """The document put under ``key`` (``source="folder"``: the folder file at that relative path).

        Raises:
            ClientError: With ``status_code`` 404 when there is no such document.
        """
        return DocumentRecord.from_dict(self._request("GET", f"/documents/by-key/{_quote(key)}",
                                                      params={"source": source}))

    def put(self, key: str, text: str | None = None, *, file: str | Path | None = None, title: str | None = None,
            metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Put a document under ``key``: ``text``, or a ``file`` the server reads as ``bertsearch
        index`` would (txt, md, rst, html, pdf). Returns once it is committed: the server's
        answer, ``{"generation", "results": [{"key", "op", "status", "id", "chunks"}], ...}``
        (``status`` created, replaced or unchanged). Needs a key of scope ``write``.

        Raises:
            ClientError: The server refused it (403 without the scope, 413 too large, 422 malformed).
        """
        if (text is None) == (file is None):
            raise ValueError("give text or file, one of them")
        url = f"/documents/by-key/{_quote(key)}"
        if file is None:
            return self._request("PUT", url, json={"text": text, "title": title, "metadata": metadata})
        path = Path(file)
        form = {k: v for k, v in (("title", title), ("metadata", json.dumps(metadata) if metadata else None)) if v}
        with open(path, "rb") as fh:
            return self._request("PUT", url, files={"file": (path.name, fh)}, data=form)

    def delete(self, key: str) -> dict[str, Any]:
        """Delete the document put under ``key``; returns once it is committed.

        Raises:
            ClientError: With ``status_code`` 404 when there is none.
        """
        return self._request("DELETE", f"/documents/by-key/{_quote(key)}")

    def batch(self, put: list[dict[str, Any]] = (), delete: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        """Put (``{"key", "text", "title"?, "metadata"?}`` each) and delete documents in one commit."""
        return self._request("POST", "/documents:batch", json={"put": list(put), "delete": list(delete)})

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise ClientError(f"{self.base_url}{url} did not answer in time ({exc})") from exc
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.base_url}{url}: {exc}") from exc
        if response.is_success:
            return response.json()
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise ClientError(
            f"{method} {url} failed with HTTP {response.status_code}: {_describe(detail)}",
            status_code=response.status_code, detail=detail,
        )


def _quote(key: str) -> str:
    """A key as one URL path segment, everything encoded (dot segments and slashes too: no client rewrites it)."""
    return quote(key, safe="")


def _describe(detail: Any) -> str:
    """A one-line message for a ``detail`` (FastAPI's validation errors are a list of dicts)."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{where}: {item.get('msg', item)}" if where else str(item.get("msg", item)))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)
