"""http.wait_healthy: poll a URL until it answers N times in a row, or fail saying why.

Its outputs are what `dns.flip` looks for before it moves any traffic: `healthy: true`,
`verified_by: http.wait_healthy`, the `url` (its host must be the flip's target), and `session`
and `passed_at`: a health pass counts only in the session that made it (on `--resume` this step
runs again: `fresh_per_session`) and only for a bounded time (dns.flip's `health_max_age`).
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dr.dns.base import host_of
from dr.errors import ConfigError, Interrupted, OperationFailed
from dr.runbook.steps.base import Param, StepContext, StepType
from dr.wait import Backoff, poll

VERIFIED_BY = "http.wait_healthy"
_PLACEHOLDER = re.compile(r"\{stack\.([A-Za-z0-9_.:-]+)\}")
_MAX_BODY = 64 * 1024


def seconds_of(value: Any, what: str) -> float:
    """A duration parameter as seconds: a timedelta, a number of seconds, or text like `30s`."""
    from dr.config.durations import parse_duration

    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return parse_duration(str(value)).total_seconds()
    except Exception:  # noqa: BLE001 - reworded below
        raise ConfigError(f"{what}: expected a duration like 30s, 10m or 1h, got {value!r}") from None


def show_seconds(seconds: float) -> str:
    """`0.3s`, `45s`, `10m`, `1h30m`: sub-second values stay visible."""
    from dr.config.durations import format_duration

    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    return format_duration(timedelta(seconds=seconds))


def unresolved(value: Any) -> bool:
    """A parameter still holding a `${...}` reference (validation happens before it is resolved)."""
    return isinstance(value, str) and "${" in value


def fill_url(template: str, stack: Mapping[str, Any] | None) -> str:
    """Put stack outputs into `{stack.X}` placeholders. When an output is itself a URL
    (WordPress's WebsiteURL is `http://host/wordpress`), the template's own scheme gives way:
    `https://{stack.WebsiteURL}/health` -> `http://host/wordpress/health`."""
    names = _PLACEHOLDER.findall(template)
    if names and not stack:
        raise ConfigError(f"health url {template} names stack outputs ({', '.join(names)}) but no `stack` "
                          "parameter gives them", hint="add `stack: ${steps.<stack step id>.outputs}` to the step")
    missing = [n for n in names if n not in (stack or {})]
    if missing:
        known = ", ".join(sorted(stack)) or "none"
        raise ConfigError(f"health url {template}: the stack has no output {', '.join(missing)} (it has: {known})",
                          hint="use one of the stack's outputs, or give `url` in full")
    url = _PLACEHOLDER.sub(lambda m: str(stack[m.group(1)]).strip(), template)
    url = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://(?=[A-Za-z][A-Za-z0-9+.-]*://)", "", url)
    scheme, sep, rest = url.partition("://")
    path, q, query = rest.partition("?")
    return scheme + sep + re.sub(r"/{2,}", "/", path) + q + query


def probe(url: str, timeout: float, expect_status: int) -> tuple[bool, str]:
    """One GET: (passed?, what happened in a few words)."""
    request = urllib.request.Request(url, headers={"User-Agent": "dr-health-check/1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 - http(s) only
            reply.read(_MAX_BODY)
            status = reply.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return False, f"no answer within {show_seconds(timeout)}"
        return False, f"cannot connect: {getattr(reason, 'strerror', None) or reason}"
    except TimeoutError:
        return False, f"no answer within {show_seconds(timeout)}"
    except (OSError, ValueError) as exc:
        return False, f"request failed: {exc}"
    return status == expect_status, f"HTTP {status}"


def probe_cancellable(url: str, timeout: float, expect_status: int, cancel: threading.Event,
                      step_id: str) -> tuple[bool, str]:
    """`probe` in a helper thread, so a cancel (Ctrl-C) is honoured at once even while a
    request hangs; the abandoned request ends on its own timeout."""
    result: list[tuple[bool, str]] = []
    worker = threading.Thread(target=lambda: result.append(probe(url, timeout, expect_status)),
                              name=f"dr-health-{step_id}", daemon=True)
    worker.start()
    while worker.is_alive():
        if cancel.wait(0.05):
            raise Interrupted(f"step {step_id} interrupted while checking {url}")
        worker.join(0.05)
    return result[0]


class WaitHealthy(StepType):
    name = "http.wait_healthy"
    description = ("Poll an HTTP(S) URL until it answers the expected status N times in a row; fail with "
                   "the last answer on timeout. dns.flip only points at a host that passed this.")
    params = (
        Param("url", "str", help="URL to poll; default health.url in dr.yaml. {stack.OUTPUT} inserts an "
                                 "output of the `stack` parameter"),
        Param("stack", "dict", help="stack outputs for {stack.X} placeholders, e.g. ${steps.stack.outputs}"),
        Param("consecutive", "int", help="successes in a row needed (default health.consecutive, else 3)"),
        Param("timeout", "duration", help="give up after this long (default health.timeout, else 10m)"),
        Param("interval", "duration", help="pause between checks (default health.interval, else 10s)"),
        Param("expect_status", "int", help="the HTTP status that counts as healthy (default 200)"),
        Param("request_timeout", "duration", default="10s", help="how long one request may take"),
    )
    outputs = ("healthy", "url", "host", "checks", "seconds", "verified_by", "session", "passed_at")
    iam_actions = ()
    fresh_per_session = True
    example = """\
- id: health
  type: http.wait_healthy
  needs: [stack]
  with:
    url: "http://{stack.WebsiteURL}/health"   # default: health.url in dr.yaml
    stack: ${steps.stack.outputs}             # the outputs that fill {stack.X}
    consecutive: 3
    timeout: 10m
    interval: 10s
"""

    def validate(self, params: Mapping[str, Any], config) -> list[str]:
        problems = []
        url = params.get("url")
        if url is None and config.health is None:
            problems.append("url: missing, and dr.yaml has no health.url to default to")
        if isinstance(url, str) and not unresolved(url) and not re.match(r"https?://|\{stack\.", url):
            problems.append(f"url: expected an http(s) URL, got {url!r}")
        template = url if url is not None else (config.health.url if config.health else "")
        if isinstance(template, str) and _PLACEHOLDER.search(template) and params.get("stack") is None:
            problems.append(f"stack: required because the url {template} names stack outputs "
                            "(give it as `stack: ${steps.<stack step id>.outputs}`)")
        consecutive = params.get("consecutive")
        if consecutive is not None and not unresolved(consecutive) and not (
                isinstance(consecutive, int) and 1 <= consecutive <= 100):
            problems.append(f"consecutive: expected a whole number from 1 to 100, got {consecutive!r}")
        status = params.get("expect_status")
        if status is not None and not unresolved(status) and not (isinstance(status, int) and 100 <= status <= 599):
            problems.append(f"expect_status: expected an HTTP status code, got {status!r}")
        for key in ("timeout", "interval", "request_timeout"):
            if params.get(key) is not None and not unresolved(params[key]):
                try:
                    if seconds_of(params[key], key) <= 0:
                        problems.append(f"{key}: must be longer than zero")
                except ConfigError as exc:
                    problems.append(exc.message)
        return problems

    def settings(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        health = ctx.config.health
        template = params.get("url") or (health.url if health else None)
        if not template:
            raise ConfigError("http.wait_healthy: no url given and dr.yaml has no health.url")
        stack = params.get("stack")
        if stack is not None and not isinstance(stack, Mapping):
            raise ConfigError(f"http.wait_healthy: `stack` must be a mapping of outputs, got {stack!r}")
        url = fill_url(template, stack)
        if not re.match(r"https?://[^/]", url):
            raise ConfigError(f"http.wait_healthy: {url!r} is not an http(s) URL")

        def pick(key, fallback):
            value = params.get(key)
            return value if value is not None else fallback

        return {
            "url": url,
            "consecutive": int(pick("consecutive", health.consecutive if health else 3)),
            "timeout": seconds_of(pick("timeout", health.timeout if health else "10m"), "timeout"),
            "interval": seconds_of(pick("interval", health.interval if health else "10s"), "interval"),
            "expect_status": int(pick("expect_status", health.expect_status if health else 200)),
            "request_timeout": seconds_of(pick("request_timeout", "10s"), "request_timeout"),
        }

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        s = self.settings(params, ctx)
        url, need, clock = s["url"], s["consecutive"], ctx.wait_clock
        started = clock.monotonic()
        seen = {"checks": 0, "streak": 0, "best": 0, "last": "", "shown": ""}
        ctx.log(f"health: waiting for {need} answers of HTTP {s['expect_status']} in a row from {url}")

        def check() -> int:
            """One request; the number of passes in a row so far."""
            if ctx.cancel.is_set():
                raise Interrupted(f"step {ctx.step_id} interrupted while checking {url}")
            remaining = s["timeout"] - (clock.monotonic() - started)
            ok, last = probe_cancellable(url, max(0.1, min(s["request_timeout"], remaining)),
                                         s["expect_status"], ctx.cancel, ctx.step_id)
            seen["checks"] += 1
            seen["streak"] = seen["streak"] + 1 if ok else 0
            seen["best"], seen["last"] = max(seen["best"], seen["streak"]), last
            if last != seen["shown"]:
                ctx.log(f"health: {url}: {last} ({seen['streak']}/{need})")
                seen["shown"] = last
            return seen["streak"]

        def give_up(_streak: int) -> None:
            if clock.monotonic() - started >= s["timeout"]:
                raise OperationFailed(
                    f"{url} did not become healthy within {show_seconds(s['timeout'])}: {seen['checks']} checks, "
                    f"at best {seen['best']} of the {need} passes in a row needed (HTTP {s['expect_status']}); "
                    f"last answer: {seen['last']}",
                    hint="DNS was not changed. Check the new stack (its outputs, instances and security "
                         "groups), or raise `timeout` if it is only slow to start")

        poll(check, ready=lambda streak: streak >= need, failed=give_up, what=f"{url} to become healthy",
             clock=clock, timeout=s["timeout"], backoff=Backoff(s["interval"], 1.0, s["interval"]))
        return {"healthy": True, "url": url, "host": host_of(url), "checks": seen["checks"],
                "seconds": round(clock.monotonic() - started, 3), "verified_by": VERIFIED_BY,
                "session": ctx.run_session, "passed_at": clock.now()}


STEP_TYPES = (WaitHealthy,)
