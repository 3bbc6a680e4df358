"""Where a job's results page lives: ``/r/<job key>``, signed like the downloads, with the
language it is shown in (``lang``, not signed: shared.links)."""

from __future__ import annotations

from shared import links
from shared.config import Settings
from shared.i18n import DEFAULT
from shared.links import PAGE_PREFIX
from shared.schemas import JobResult
from shared.storage import check_name


def page_path(job_key: str) -> str:
    """The URL path of a job's results page, as signed in its link (unquoted)."""
    return f"{PAGE_PREFIX}/{check_name(job_key)}"


def page_url(settings: Settings, result: JobResult, lang: str | None = DEFAULT) -> str:
    """The signed link to the results page of ``result``, valid as long as its files, shown
    in ``lang`` (the requester's language; None: the browser's)."""
    page_path(result.key)  # checks the key is a safe name
    key = settings.storage.signing_key_bytes()
    return links.page_url(settings.storage.public_url, key, result.key, result.expires_at, lang)
