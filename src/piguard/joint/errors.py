"""Named errors of joint computations. Messages name the input or the peer, never an identifier or a key."""

from __future__ import annotations


class JointError(Exception):
    """Base class: a joint computation that cannot go on. ``code`` travels on the wire as the error's name."""

    code = "joint_error"
    http_status = 400


class InputError(JointError):
    """A file, column or option the user gave cannot be used."""

    code = "bad_input"


class NotLawfulError(JointError):
    """No declared purpose or legal basis, or the rule engine denies the flow."""

    code = "not_lawful"
    http_status = 403


class AuthenticationError(JointError):
    """The peer's key is not trusted, or a signature or message tag does not verify."""

    code = "authentication_failed"
    http_status = 401


class ReplayError(JointError):
    """A message was seen before (same nonce or sequence number), or its time is outside the window."""

    code = "replayed_message"
    http_status = 409


class ProtocolVersionError(JointError):
    code = "wrong_protocol_version"
    http_status = 426


class MalformedMessageError(JointError):
    code = "malformed_message"


class LimitExceededError(JointError):
    """The partner's query holds more identifiers, or it made more queries today, than its limit allows."""

    code = "limit_exceeded"
    http_status = 429


class PeerError(JointError):
    """The peer went away mid-protocol, answered with an error, or could not be reached."""

    code = "peer_error"
    http_status = 502


class SessionError(JointError):
    """Unknown, expired or already finished session."""

    code = "unknown_session"
    http_status = 404


ERRORS_BY_CODE: dict[str, type[JointError]] = {
    cls.code: cls
    for cls in (
        JointError,
        InputError,
        NotLawfulError,
        AuthenticationError,
        ReplayError,
        ProtocolVersionError,
        MalformedMessageError,
        LimitExceededError,
        PeerError,
        SessionError,
    )
}
