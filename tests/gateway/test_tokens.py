import base64
import hashlib
import hmac
import json
import time
import uuid

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.accounts.keys import KeyFileError, load_signing_keys
from gateway.accounts.tokens import RevocationUnavailableError, TokenError, TokenService, token_service
from gateway.http.principal import Principal, Role
from gateway.middleware.authentication import authentication_middleware
from jobstream.errors import SettingsError
from jobstream.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def tokens(settings, async_redis):
    return token_service(settings.accounts, async_redis)


def _unreachable_redis() -> aioredis.Redis:
    return aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unverified_parts(token: str) -> tuple[dict, dict]:
    header, payload, _ = token.split(".")
    pad = lambda part: part + "=" * (-len(part) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(base64.urlsafe_b64decode(pad(payload)))


def _issue(tokens: TokenService, role: Role = Role.CANDIDATE, company_id: str | None = None):
    return tokens.issue(str(uuid.uuid4()), role, company_id, session_id=str(uuid.uuid4()))


async def test_an_issued_token_verifies_into_its_claims_and_principal(tokens):
    company = str(uuid.uuid4())
    issued = _issue(tokens, Role.EMPLOYER, company)
    claims = await tokens.verify(issued.token)
    assert claims == issued.claims
    assert claims.principal() == Principal(issued.claims.user_id, Role.EMPLOYER, company, issued.claims.token_id)
    header, payload = _unverified_parts(issued.token)
    assert header["alg"] == "EdDSA"
    assert {"sub", "role", "company_id", "jti", "exp", "iat", "iss"} <= payload.keys()
    assert payload["exp"] - payload["iat"] == tokens.access_ttl_s == 15 * 60


async def test_an_expired_token_is_refused_as_expired(settings, async_redis):
    keys = load_signing_keys(settings.accounts)
    past = TokenService(
        keys.private_key,
        keys.public_key,
        issuer="jobstream",
        access_ttl_s=60,
        redis=async_redis,
        clock=lambda: time.time() - 3600,
    )
    with pytest.raises(TokenError) as refused:
        await past.verify(_issue(past).token)
    assert refused.value.code == "token_expired"


async def test_a_tampered_payload_is_refused(tokens):
    issued = _issue(tokens)
    header, _, signature = issued.token.split(".")
    _, claims = _unverified_parts(issued.token)
    forged = _b64(json.dumps({**claims, "role": "admin"}).encode())
    with pytest.raises(TokenError) as refused:
        await tokens.verify(f"{header}.{forged}.{signature}")
    assert refused.value.code == "invalid_token"


async def test_an_alg_none_token_is_refused(tokens):
    _, claims = _unverified_parts(_issue(tokens, Role.ADMIN).token)
    unsigned = f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}."
    with pytest.raises(TokenError) as refused:
        await tokens.verify(unsigned)
    assert refused.value.code == "invalid_token"


async def test_hs256_signed_with_the_public_key_is_refused(settings, tokens):
    _, claims = _unverified_parts(_issue(tokens, Role.ADMIN).token)
    public_pem = settings.accounts.jwt_public_key_file.read_bytes()
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenError) as refused:
        await tokens.verify(f"{signing_input}.{_b64(signature)}")
    assert refused.value.code == "invalid_token"


async def test_a_token_signed_by_another_key_or_issuer_is_refused(settings, tokens):
    issued = _issue(tokens)
    _, claims = _unverified_parts(issued.token)
    other_key = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")
    keys = load_signing_keys(settings.accounts)
    other_issuer = jwt.encode({**claims, "iss": "someone-else"}, keys.private_key, algorithm="EdDSA")
    for token in (other_key, other_issuer):
        with pytest.raises(TokenError) as refused:
            await tokens.verify(token)
        assert refused.value.code == "invalid_token"


async def test_a_token_missing_a_required_claim_is_refused(settings, tokens):
    _, claims = _unverified_parts(_issue(tokens).token)
    keys = load_signing_keys(settings.accounts)
    without_jti = jwt.encode({k: v for k, v in claims.items() if k != "jti"}, keys.private_key, algorithm="EdDSA")
    with pytest.raises(TokenError, match="jti"):
        await tokens.verify(without_jti)


async def test_a_revoked_token_is_refused_while_another_still_passes(tokens, async_redis):
    revoked, kept = _issue(tokens), _issue(tokens)
    await tokens.revoke(revoked.claims)
    with pytest.raises(TokenError) as refused:
        await tokens.verify(revoked.token)
    assert refused.value.code == "token_revoked"
    assert await tokens.verify(kept.token) == kept.claims
    # The blacklist entry lives only as long as the token could.
    assert 0 < await async_redis.ttl(f"jobstream:auth:revoked:jti:{revoked.claims.token_id}") <= 15 * 60 + 1


async def test_a_revoked_session_refuses_every_token_issued_in_it(tokens):
    session = str(uuid.uuid4())
    first = tokens.issue(str(uuid.uuid4()), Role.CANDIDATE, None, session)
    second = tokens.issue(first.claims.user_id, Role.CANDIDATE, None, session)
    await tokens.revoke_session(session)
    for issued in (first, second):
        with pytest.raises(TokenError, match="revoked"):
            await tokens.verify(issued.token)


async def test_an_unreachable_blacklist_refuses_the_token_instead_of_trusting_it(settings, tokens):
    unreachable = _unreachable_redis()
    keys = load_signing_keys(settings.accounts)
    blind = TokenService(keys.private_key, keys.public_key, issuer="jobstream", access_ttl_s=60, redis=unreachable)
    with pytest.raises(RevocationUnavailableError):
        await blind.verify(_issue(blind).token)
    await unreachable.aclose()


@pytest.mark.unit
def test_dev_keys_are_generated_once_and_reused(tmp_path):
    settings = Settings.from_env({"JOBSTREAM_LOCAL_DIR": str(tmp_path)}).accounts
    assert settings.jwt_dev_keys
    first = load_signing_keys(settings)
    assert settings.jwt_private_key_file == tmp_path / "jwt" / "private.pem"
    assert settings.jwt_private_key_file.stat().st_mode & 0o077 == 0
    second = load_signing_keys(settings)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert first.public_key.public_bytes(*raw) == second.public_key.public_bytes(*raw)


@pytest.mark.unit
def test_key_files_that_are_not_one_pair_are_refused(tmp_path):
    for name in ("a", "b"):
        pem = Ed25519PrivateKey.generate()
        (tmp_path / f"{name}.key").write_bytes(
            pem.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (tmp_path / f"{name}.pub").write_bytes(
            pem.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    env = {"JOBSTREAM_JWT_PRIVATE_KEY_FILE": str(tmp_path / "a.key"), "JOBSTREAM_JWT_PUBLIC_KEY_FILE": ""}
    with pytest.raises(SettingsError, match="JOBSTREAM_JWT_PUBLIC_KEY_FILE"):
        Settings.from_env(env)
    env["JOBSTREAM_JWT_PUBLIC_KEY_FILE"] = str(tmp_path / "a.pub")
    assert not Settings.from_env(env).accounts.jwt_dev_keys
    load_signing_keys(Settings.from_env(env).accounts)
    env["JOBSTREAM_JWT_PUBLIC_KEY_FILE"] = str(tmp_path / "b.pub")
    with pytest.raises(KeyFileError, match="not the public half"):
        load_signing_keys(Settings.from_env(env).accounts)
    env["JOBSTREAM_JWT_PUBLIC_KEY_FILE"] = str(tmp_path / "missing.pub")
    with pytest.raises(KeyFileError, match=r"missing\.pub"):
        load_signing_keys(Settings.from_env(env).accounts)


async def _whoami(request: Request) -> JSONResponse:
    user = request.user
    if not isinstance(user, Principal):
        return JSONResponse({"anonymous": True})
    return JSONResponse({"user_id": user.user_id, "role": user.role.value, "scopes": request.auth.scopes})


def _client(tokens: TokenService) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/whoami", _whoami)], middleware=[authentication_middleware(tokens)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_the_middleware_puts_the_principal_and_role_on_the_request(tokens):
    issued = _issue(tokens, Role.ANALYST)
    async with _client(tokens) as client:
        authenticated = await client.get("/whoami", headers={"Authorization": f"Bearer {issued.token}"})
        anonymous = await client.get("/whoami")
    assert authenticated.status_code == 200
    assert authenticated.json() == {"user_id": issued.claims.user_id, "role": "analyst", "scopes": ["analyst"]}
    assert anonymous.json() == {"anonymous": True}


async def test_the_middleware_answers_a_bad_token_with_a_401_json_error(tokens):
    revoked = _issue(tokens)
    await tokens.revoke(revoked.claims)
    cases = {
        "Bearer not.a.jwt": "invalid_token",
        "Basic dXNlcjpwYXNz": "invalid_token",
        "Bearer ": "invalid_token",
        f"Bearer {revoked.token}": "token_revoked",
    }
    async with _client(tokens) as client:
        for header, code in cases.items():
            response = await client.get("/whoami", headers={"Authorization": header})
            assert response.status_code == 401, header
            assert response.json()["error"]["code"] == code
            assert set(response.json()["error"]) == {"code", "message", "field"}
            assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.unit
async def test_the_middleware_answers_503_when_the_blacklist_is_unreachable(settings):
    unreachable = _unreachable_redis()
    blind = token_service(settings.accounts, unreachable)
    async with _client(blind) as client:
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {_issue(blind).token}"})
    await unreachable.aclose()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "auth_unavailable"
    assert response.headers["retry-after"] == "1"


@pytest.mark.unit
def test_token_lifetimes_default_to_15_minutes_and_14_days_and_refresh_must_outlive_access():
    defaults = Settings.from_env({}).accounts
    assert (defaults.access_token_ttl_s, defaults.refresh_token_ttl_s) == (15 * 60, 14 * 24 * 3600)
    with pytest.raises(SettingsError, match="JOBSTREAM_REFRESH_TOKEN_TTL_S"):
        Settings.from_env({"JOBSTREAM_ACCESS_TOKEN_TTL_S": "3600", "JOBSTREAM_REFRESH_TOKEN_TTL_S": "600"})
