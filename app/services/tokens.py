"""Signed links: one serializer per purpose, key rotation via fallbacks."""
from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import LinkExpired, LinkInvalid

VERIFY_EMAIL = "verify-email"
REVIEW_REQUEST = "review-request"
RESET_PASSWORD = "reset-password"
REACTIVATE = "reactivate"
PURPOSES = (VERIFY_EMAIL, REVIEW_REQUEST, RESET_PASSWORD, REACTIVATE)


class LinkTokens:
    def __init__(self, secret_key: str, fallback_keys: tuple[str, ...], max_age_seconds: int):
        # itsdangerous signs with the last key and accepts every key.
        self._keys = [*fallback_keys, secret_key]
        self.max_age_seconds = max_age_seconds
        self._serializers = {
            purpose: URLSafeTimedSerializer(self._keys, salt=f"portal.link.{purpose}")
            for purpose in PURPOSES
        }

    def issue(self, purpose: str, payload: dict) -> str:
        return self._serializers[purpose].dumps(payload)

    def load(self, purpose: str, token: str, max_age: int | None = None) -> dict:
        """The payload of a genuine, unexpired link for ``purpose``."""
        try:
            payload = self._serializers[purpose].loads(
                token, max_age=max_age if max_age is not None else self.max_age_seconds)
        except SignatureExpired as exc:
            raise LinkExpired("link expired") from exc
        except BadSignature as exc:
            raise LinkInvalid("link invalid") from exc
        if not isinstance(payload, dict):
            raise LinkInvalid("link invalid")
        return payload
