"""The `state.redis` component: hash {data, version}, Dapr's Lua scripts, TTL rules.

Why exact: kugelpos' idempotency markers and cart cache live here, and drills check what a
lost write, an ETag race or a TTL that did not reset does to them (dapr.md §4). The scripts
below have the same accept/reject rules as components-contrib's `setQuery`/`delQuery`.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.exceptions import ResponseError

from kugeldrill.stack.sidecar.redisconn import describe, make_client, with_retries, wait_for_ping
from kugeldrill.stack.sidecar.resources import StateComponent

SET_SCRIPT = """
local fwr = redis.pcall("HGET", KEYS[1], "first-write")
if type(fwr) == "table" and fwr.err ~= nil then redis.call("DEL", KEYS[1]); fwr = false end
local ver = redis.pcall("HGET", KEYS[1], "version")
if type(ver) == "table" then redis.call("DEL", KEYS[1]); ver = false end
if (not ver) or ver == ARGV[1] or ((not fwr) and ARGV[1] == "0") then
  redis.call("HSET", KEYS[1], "data", ARGV[2])
  if ARGV[3] == "0" then redis.call("HSET", KEYS[1], "first-write", 0) end
  return redis.call("HINCRBY", KEYS[1], "version", 1)
else
  return redis.error_reply("failed to set key " .. KEYS[1])
end
"""

DEL_SCRIPT = """
local var1 = redis.pcall("HGET", KEYS[1], "version")
if (not var1) or type(var1) == "table" or var1 == ARGV[1] or var1 == "" or ARGV[1] == "0" then
  return redis.call("DEL", KEYS[1])
else
  return redis.error_reply("failed to delete " .. KEYS[1])
end
"""


class StateError(Exception):
    """Any store failure (→ 500, or 409 where Dapr reports it as an ETag error)."""


class ETagMismatch(StateError):
    """Dapr `state.ETagMismatch` (→ 409)."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"possible etag mismatch. error from state store: {cause}")


class ETagInvalid(StateError):
    """The ETag is not an integer (→ 400 ERR_STATE_SAVE)."""


@dataclass
class SetRequest:
    key: str
    value: bytes
    etag: str | None = None
    ttl: str | None = None  # metadata.ttlInSeconds as given
    first_write: bool = False
    last_write: bool = False


@dataclass
class GetResult:
    data: bytes | None
    etag: str | None


class RedisStateStore:
    """One state component on one Redis database."""

    def __init__(self, comp: StateComponent) -> None:
        self.comp = comp
        self.name = comp.name
        self.settings = comp.redis
        self.client = make_client(comp.redis)
        self._set = self.client.register_script(SET_SCRIPT)
        self._del = self.client.register_script(DEL_SCRIPT)

    async def init(self, timeout: float = 5.0) -> None:
        """PING like the component's Init (raises after `timeout`)."""
        await wait_for_ping(self.client, timeout)

    async def close(self) -> None:
        await self.client.aclose()

    def redis_key(self, key: str) -> str:
        return f"{self.comp.key_prefix}||{key}" if self.comp.key_prefix else key

    async def get(self, key: str) -> GetResult:
        rkey = self.redis_key(key)
        try:
            fields = await with_retries(self.settings, lambda: self.client.hgetall(rkey))
        except Exception:  # noqa: BLE001 - Dapr falls back to a plain GET on any HGETALL error
            try:
                raw = await with_retries(self.settings, lambda: self.client.get(rkey))
            except Exception as exc:  # noqa: BLE001
                raise StateError(describe(exc)) from None
            return GetResult(raw, None)
        if not fields:
            return GetResult(None, None)
        if b"data" not in fields or b"version" not in fields:
            raise StateError("required hash field 'data' or 'version' was not found")
        return GetResult(fields[b"data"], fields[b"version"].decode())

    def _version_arg(self, req: SetRequest) -> str:
        if not req.etag or req.last_write:
            return "0"
        try:
            return str(int(req.etag))
        except ValueError:
            raise ETagInvalid(f'invalid etag value: strconv.Atoi: parsing "{req.etag}": invalid syntax') from None

    def _ttl(self, req: SetRequest) -> int | None:
        if req.ttl is not None:
            try:
                return int(req.ttl)
            except ValueError:
                raise StateError(
                    f'failed to parse ttl from metadata: strconv.ParseInt: parsing "{req.ttl}": invalid syntax'
                ) from None
        return self.comp.ttl_in_seconds

    async def set(self, req: SetRequest) -> None:
        ver = self._version_arg(req)
        ttl = self._ttl(req)
        rkey = self.redis_key(req.key)
        fw = "0" if req.first_write else "1"
        try:
            await with_retries(self.settings, lambda: self._set(keys=[rkey], args=[ver, req.value, fw]))
        except Exception as exc:  # noqa: BLE001
            if req.etag:
                raise ETagMismatch(describe(exc)) from None
            raise StateError(f"failed to set key {rkey}: {describe(exc)}") from None
        if ttl is None:
            return
        try:
            if ttl > 0:
                await with_retries(self.settings, lambda: self.client.expire(rkey, ttl))
            else:
                await with_retries(self.settings, lambda: self.client.persist(rkey))
        except Exception as exc:  # noqa: BLE001
            raise StateError(f"failed to set key {rkey} ttl: {describe(exc)}") from None

    async def delete(self, key: str, etag: str | None) -> None:
        rkey = self.redis_key(key)
        arg = etag if etag else "0"
        try:
            await with_retries(self.settings, lambda: self._del(keys=[rkey], args=[arg]))
        except Exception as exc:  # noqa: BLE001 - the Redis store reports every delete error as a mismatch
            raise ETagMismatch(describe(exc)) from None

    async def transaction(self, upserts_and_deletes: list[tuple[str, SetRequest | tuple[str, str | None]]]) -> None:
        """MULTI/EXEC with no rollback; the first error is raised after all ran (dapr.md §4.5)."""
        pipe = self.client.pipeline(transaction=True)
        for op, item in upserts_and_deletes:
            if op == "upsert":
                assert isinstance(item, SetRequest)
                rkey = self.redis_key(item.key)
                ttl = self._ttl(item)
                pipe.eval(SET_SCRIPT, 1, rkey, self._version_arg(item), item.value)
                if ttl is not None:
                    if ttl > 0:
                        pipe.expire(rkey, ttl)
                    else:
                        pipe.persist(rkey)
            else:
                key, etag = item  # type: ignore[misc]
                pipe.eval(DEL_SCRIPT, 1, self.redis_key(key), etag or "0")
        try:
            results = await pipe.execute(raise_on_error=False)  # one attempt: a replayed MULTI could apply twice
        except Exception as exc:  # noqa: BLE001
            raise StateError(describe(exc)) from None
        for result in results:
            if isinstance(result, (ResponseError, Exception)):
                raise StateError(str(result))
