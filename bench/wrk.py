"""wrk, the C load generator, driven from Python: one Lua script per run carries the request bodies (or paths) to
rotate over, and puts a fresh idempotency key into each body that asks for one; its `done` hook prints the
summary as one JSON line, which is parsed with the figures of wrk's own report (requests/sec, non-2xx).

wrk runs with few threads and connections (`-t1 -c16` by default) so it takes little of the CPUs the servers are
measured on: locust, which this replaced, took about as much CPU as the server it drove.

    make bench-setup          (installs wrk with apt-get when `which wrk` finds none)
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

KEY = "@KEY@"  # put into a body where each request needs its own idempotency key

LUA = r"""
local bodies = {%(bodies)s}
local paths = {%(paths)s}
local method = "%(method)s"
local headers = {%(headers)s}
local nonce = "%(nonce)s"
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  failed = 0
  sample = nil
end

function request()
  n = n + 1
  local path = paths[(n %% #paths) + 1]
  if #bodies == 0 then
    return wrk.format(method, path, headers, nil)
  end
  local body = bodies[(n %% #bodies) + 1]
  if body:find("@KEY@", 1, true) then
    body = body:gsub("@KEY@", nonce .. "-" .. id .. "-" .. n)
  end
  return wrk.format(method, path, headers, body)
end

function response(status, hdrs, body)
  if status ~= 200 or body:find('"errors":[{', 1, true) then
    failed = failed + 1
    if sample == nil then sample = (status .. " " .. body:sub(1, 300)):gsub('[%%c"\\]', " ") end
  end
end

function done(summary, latency, requests)
  local f = 0
  local s = ""
  for _, t in ipairs(threads) do
    f = f + t:get("failed")
    local ts = t:get("sample")
    if ts ~= nil and s == "" then s = ts end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "duration_us": %%d, "failed": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "mean_us": %%f, "sample": "%%s"}\n',
    summary.requests, summary.duration, f, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, s))
end
"""


@dataclass(frozen=True)
class Load:
    """What one run sends: POST bodies rotated over (with KEY replaced per request), or GET paths."""

    paths: list[str]
    bodies: list[str]
    headers: dict[str, str]

    @property
    def method(self) -> str:
        return "POST" if self.bodies else "GET"


@dataclass(frozen=True)
class Result:
    rps: float
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    failed: int  # non-200 answers and 200s carrying GraphQL or payload errors
    socket_errors: int
    sample: str  # the first failure's status and body, for the log

    def as_dict(self) -> dict[str, float | int | str]:
        return {k: v for k, v in self.__dict__.items()}


def _lua_str(value: str) -> str:
    return "[==[" + value + "]==]"


def script(load: Load) -> str:
    headers = {**load.headers, **({"content-type": "application/json"} if load.bodies else {})}
    return LUA % {
        "bodies": ", ".join(_lua_str(b) for b in load.bodies),
        "paths": ", ".join(_lua_str(p) for p in load.paths),
        "method": load.method,
        "headers": ", ".join(f"[ {_lua_str(k)} ] = {_lua_str(v)}" for k, v in headers.items()),
        "nonce": uuid.uuid4().hex[:12],
    }


def parse(stdout: str) -> Result:
    """The run's figures from wrk's report: the JSON line of our `done` hook, checked against `Requests/sec`."""
    line = next((x for x in stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{stdout}")
    s = json.loads(line[len("BENCH ") :])
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", stdout)
    rps = float(rps_match.group(1)) if rps_match else s["requests"] / (s["duration_us"] / 1e6)
    socket_errors = s["connect"] + s["read"] + s["write"] + s["timeout"]
    failed = max(int(s["failed"]), int(non2xx.group(1)) if non2xx else 0)
    return Result(
        rps=rps,
        requests=int(s["requests"]),
        p50_ms=s["p50_us"] / 1000,
        p90_ms=s["p90_us"] / 1000,
        p99_ms=s["p99_us"] / 1000,
        failed=failed,
        socket_errors=socket_errors,
        sample=str(s["sample"]),
    )


def which() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: run `make bench-setup` (apt-get install -y wrk)")
    return path


async def run(base: str, load: Load, seconds: float, connections: int = 16, threads: int = 1) -> Result:
    """One wrk run of `seconds` against `base` (http://host:port); waits for it and returns its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "load.lua"
        lua.write_text(script(load))
        proc = await asyncio.create_subprocess_exec(
            which(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(lua),
            base + load.paths[0],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()}{out.decode()}")
    return parse(out.decode())
