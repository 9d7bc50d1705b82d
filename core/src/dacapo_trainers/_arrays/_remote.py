"""fsspec file systems for remote containers: bounded timeouts and retries, one-line errors.

Credentials and endpoints are found the standard way of each file system (s3fs through
botocore: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``~/.aws``; gcsfs through Google's default credentials); a dataset's ``storage_options`` are
passed to the file system on top of the defaults below (nested dicts merged key by key).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

#: The package each URL scheme needs, all installed by the ``remote`` extra.
SCHEME_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "http": "aiohttp",
    "https": "aiohttp",
}
#: Seconds to open a connection and to wait for an answer; attempts per request. Without
#: bounds an unreachable endpoint keeps a run waiting for minutes before it says anything.
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
ATTEMPTS = 3


class RemoteAccessError(ValueError):
    """A remote container could not be read: unreachable, missing, or access denied."""


def default_options(scheme: str) -> dict[str, Any]:
    """The storage options every ``scheme`` file system starts from (the bounds above)."""
    if scheme in ("s3", "s3a"):
        return {
            "config_kwargs": {
                "connect_timeout": CONNECT_TIMEOUT_S,
                "read_timeout": READ_TIMEOUT_S,
                "retries": {"max_attempts": ATTEMPTS, "mode": "standard"},
            },
        }
    if scheme in ("gs", "gcs"):
        return {"retries": ATTEMPTS, "timeout": READ_TIMEOUT_S}
    if scheme in ("http", "https"):
        import aiohttp

        timeout = aiohttp.ClientTimeout(connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S)
        return {"client_kwargs": {"timeout": timeout}}
    return {}


def merged(defaults: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated by ``options``; nested dicts merged key by key."""
    result = dict(defaults)
    for key, value in options.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def require_packages(scheme: str, url: str) -> None:
    """Raise RemoteAccessError naming the extra when ``scheme`` needs a package not installed."""
    needed = ["fsspec", SCHEME_PACKAGES[scheme]] if scheme in SCHEME_PACKAGES else ["fsspec"]
    missing = [name for name in needed if not _importable(name)]
    if missing:
        install = (
            "'dacapo-trainers[remote]' gcsfs" if "gcsfs" in missing else "'dacapo-trainers[remote]'"
        )
        raise RemoteAccessError(
            f"reading {url!r} needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: pip install {install}"
        )


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def filesystem(url: str, storage_options: Mapping[str, Any] | None) -> Any:
    """The fsspec file system for ``url``: this process's, shared by its containers.

    fsspec caches instances per process (and forgets them in a forked child, whose event loop
    is new), so each data worker makes its own on first use.
    """
    scheme = url.split("://", 1)[0].lower()
    require_packages(scheme, url)
    import fsspec

    options = merged(default_options(scheme), storage_options or {})
    try:
        return fsspec.filesystem(scheme, **options)
    except ValueError as error:  # e.g. an unknown protocol
        raise RemoteAccessError(f"cannot read {url!r}: {_first_line(error)}") from None
    except Exception as error:  # bad storage_options, a broken credentials file
        raise RemoteAccessError(
            f"cannot read {url!r}: its file system refused the storage options "
            f"({type(error).__name__}: {_first_line(error)}); check storage_options"
        ) from None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _names(error: BaseException) -> set[str]:
    return {cls.__name__ for e in _chain(error) for cls in type(e).__mro__}


_CONNECTION_FAILURES = {"EndpointConnectionError", "ClientConnectorError", "ConnectionError"}
_TIMEOUTS = {"TimeoutError", "ConnectTimeoutError", "ReadTimeoutError", "ServerTimeoutError"}


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or its cause) says the server could not be reached or did not answer
    (fsspec's HTTP file system reports a refused connection as a missing file, caused by it)."""
    return bool(_names(error) & (_CONNECTION_FAILURES | _TIMEOUTS))


_CREDENTIALS_FIX = (
    "give credentials the standard way (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "AWS_PROFILE, ~/.aws; gcloud auth for gs://) or, for a public bucket, storage_options "
    "{anon: true} (s3) or {token: anon} (gs)"
)


def described_failure(url: str, error: BaseException) -> str:
    """One line saying why ``url`` could not be read and what to do."""
    names = _names(error)
    text = " ".join(_first_line(e) for e in _chain(error))
    if names & {"NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError"}:
        return f"cannot read {url!r}: no credentials were found; {_CREDENTIALS_FIX}"
    if "NoSuchBucket" in text or "bucket does not exist" in text:
        return f"cannot read {url!r}: the bucket does not exist; check the URL"
    if names & {"PermissionError", "ClientAuthenticationError"} or any(
        marker in text
        for marker in ("AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch")
    ):
        return f"cannot read {url!r}: access denied ({_first_line(error)}); {_CREDENTIALS_FIX}"
    if names & _CONNECTION_FAILURES:
        endpoint = (
            ", the endpoint (AWS_ENDPOINT_URL or storage_options endpoint_url)"
            if url.lower().startswith("s3")
            else ""
        )
        return (
            f"cannot read {url!r}: cannot connect to the server ({_first_line(error)}); check "
            f"the URL{endpoint} and the network"
        )
    if names & _TIMEOUTS:
        return (
            f"cannot read {url!r}: the server did not answer in time (connect "
            f"{CONNECT_TIMEOUT_S} s, read {READ_TIMEOUT_S} s, {ATTEMPTS} attempts); check the "
            "endpoint and the network"
        )
    return f"cannot read {url!r}: {type(error).__name__}: {_first_line(error)}"
