"""Ingest job records in Redis, so every replica answers every poll and a record outlives
the replica that ran it.

One hash per job (``<prefix>job:<id>``: counts, state, timestamps, owner) plus a list of
its first errors (``...:errors``), both expiring ``ttl_s`` after the last write. Progress
is ``HINCRBY`` in a MULTI, so writes never lose counts. A sorted set of job ids by
creation time keeps the number of jobs bounded (``keep``): older ones are deleted.
Unlike the cache, an outage is not hidden: it raises ``DependencyUnavailable`` (503).
"""

from __future__ import annotations

import json

import redis.asyncio as redis
from redis.exceptions import RedisError

from gateway.domain.job_record import HEARTBEAT, MAX_ERRORS, Job, JobUpdate
from gateway.errors import DependencyUnavailable


class RedisJobStore:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "fashionrec:gw:",
        ttl_s: int = 7 * 24 * 3600,
        keep: int = 10_000,
        timeout_s: float = 1.0,
        pool_wait_s: float = 10.0,
    ) -> None:
        # Blocking: a burst of polls and progress writes waits for a connection instead of
        # failing with "Too many connections". The wait is not the socket timeout: a burst
        # of 100 writes on 32 connections queues for several round trips, and a loaded host
        # stretched that past 1 s (CI); a dead Redis still fails after ``timeout_s``.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=32,
            timeout=pool_wait_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        self.client = redis.Redis.from_pool(pool)
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.keep = keep

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    async def create(self, job: Job) -> None:
        key, index = self._key(job.id), self.prefix + "jobs"
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(
                    key,
                    mapping={
                        "total": job.total,
                        "done": job.done,
                        "failed": job.failed,
                        "state": job.state,
                        "created_at": repr(job.created_at),
                        "updated_at": repr(job.updated_at),
                        "heartbeat_at": repr(job.heartbeat_at),
                        "owner": job.owner,
                    },
                )
                pipe.expire(key, self.ttl_s)
                if job.errors:
                    pipe.rpush(key + ":errors", *map(json.dumps, job.errors[:MAX_ERRORS]))
                    pipe.expire(key + ":errors", self.ttl_s)
                pipe.zadd(index, {job.id: job.created_at})
                pipe.expire(index, self.ttl_s)
                await pipe.execute()
            old = await self.client.zrange(index, 0, -(self.keep + 1))
            if old:  # two replicas may trim the same ids: deleting twice is harmless
                ids = [i.decode() for i in old]
                keys = [k for i in ids for k in (self._key(i), self._key(i) + ":errors")]
                await self.client.delete(*keys)
                await self.client.zrem(index, *ids)
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable("redis", str(exc) or type(exc).__name__) from exc

    async def get(self, job_id: str) -> Job | None:
        key = self._key(job_id)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hgetall(key)
                pipe.lrange(key + ":errors", 0, MAX_ERRORS - 1)
                fields, errors = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable("redis", str(exc) or type(exc).__name__) from exc
        f = {k.decode(): v.decode() for k, v in fields.items()}
        if "total" not in f:  # absent, expired, or a stray write after expiry
            return None
        return Job(
            id=job_id,
            total=int(f["total"]),
            done=int(f.get("done", 0)),
            failed=int(f.get("failed", 0)),
            state=f.get("state", "running"),
            errors=[json.loads(e) for e in errors],
            created_at=float(f.get("created_at", 0)),
            updated_at=float(f.get("updated_at", 0)),
            heartbeat_at=float(f.get("heartbeat_at", 0)),
            owner=f.get("owner", ""),
        )

    async def update(self, job_id: str, now: float, update: JobUpdate = HEARTBEAT) -> None:
        key = self._key(job_id)
        try:
            if not await self.client.exists(key):
                return  # expired or trimmed: do not resurrect a partial record
            async with self.client.pipeline(transaction=True) as pipe:
                if update.done:
                    pipe.hincrby(key, "done", update.done)
                if update.failed:
                    pipe.hincrby(key, "failed", update.failed)
                stamp = {"heartbeat_at": repr(now)}
                if update.changes:
                    stamp["updated_at"] = repr(now)
                if update.state is not None:
                    stamp["state"] = update.state
                pipe.hset(key, mapping=stamp)
                pipe.expire(key, self.ttl_s)
                if update.errors:
                    pipe.rpush(key + ":errors", *map(json.dumps, update.errors[:MAX_ERRORS]))
                    pipe.ltrim(key + ":errors", 0, MAX_ERRORS - 1)  # keep the first ones
                    pipe.expire(key + ":errors", self.ttl_s)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable("redis", str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        await self.client.aclose()
