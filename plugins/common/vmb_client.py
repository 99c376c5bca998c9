"""VMB Score from inside a host (Resolve, REAPER): find the engine, call its gateway.

Standard library only and Python 3.6 syntax: hosts run their own interpreters (Resolve
<= 21.0 a system Python >= 3.6, 21.1+ its bundled Python without pip; REAPER the user's
libpython). This module reads the engine's discovery file (same home rules as
bridge/discovery.py), calls the loopback HTTP gateway with the token, starts the engine
when the installer recorded where `vmb` is, remembers the last knobs, and writes OTIO JSON
with plain json (no opentimelineio in a host). The flow every host runs on top of it
(connect, offer to start, submit, poll, fetch, place) is vmb_flow.py.
"""

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional

APP = "VMB Score"
CONFIG_NAME = "vmb_plugin.json"  # written next to the plugin by the installer
CONFIG_PROBLEM = "config_problem"  # load_config's key for a config file it could not read
API = "/v1"


class PluginError(Exception):
    """A problem to tell the user in plain words (entry points never show a traceback)."""

    code = "plugin"

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class EngineNotRunning(PluginError):
    """No engine answers; the message says the exact command that starts one."""

    code = "engine_unavailable"


class GatewayError(PluginError):
    """The gateway answered with an error (status + bridge.errors code)."""

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message, code)
        self.status = status


# -- where things are ---------------------------------------------------------------------
def default_home() -> str:
    """The VMB home; the same rules as bridge.discovery.default_home (VMB_HOME first)."""
    env = os.environ.get("VMB_HOME")
    if env:
        return os.path.realpath(os.path.expanduser(env))
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "VMB Score")
    if os.name == "nt":
        return os.path.join(os.environ.get("APPDATA", home), "VMB Score")
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return os.path.join(data, "vmb-score")


def sandbox_container() -> Optional[str]:
    """The app container when this interpreter runs inside a macOS app sandbox (the Mac
    App Store edition of Resolve): `~` is then .../Library/Containers/<app>/Data."""
    home = os.path.expanduser("~")
    if os.environ.get("APP_SANDBOX_CONTAINER_ID") or "/Library/Containers/" in home:
        return home
    return None


def discovery_path(home: Optional[str] = None) -> str:
    return os.path.join(home or default_home(), "run", "engine.json")


def here() -> str:
    """The folder of this module: the installer writes the plugin config next to it."""
    return os.path.dirname(os.path.abspath(__file__))


def load_config(plugin_dir: Optional[str] = None) -> Dict[str, Any]:
    """The installer's small config ({"vmb": path, "home": path?}) next to this module.

    Read as utf-8-sig: Windows PowerShell 5.1 writes a BOM. A file that exists but cannot be
    read is said so (console now, and in every "engine not running" message) instead of being
    silently treated as no config."""
    path = os.path.join(plugin_dir or here(), CONFIG_NAME)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        problem = f"the plugin's config {path} could not be read ({exc}); reinstall the plugin"
    else:
        if isinstance(data, dict):
            return data
        problem = f"the plugin's config {path} is not a JSON object; reinstall the plugin"
    print("[VMB Score] " + problem, file=sys.stderr)
    return {CONFIG_PROBLEM: problem}


def resolve_home(config: Optional[Dict[str, Any]] = None) -> str:
    """VMB_HOME wins; then a home the installer recorded; then the default."""
    if os.environ.get("VMB_HOME"):
        return default_home()
    recorded = (config or {}).get("home")
    return recorded if isinstance(recorded, str) and recorded else default_home()


def vmb_executable(config: Optional[Dict[str, Any]]) -> Optional[str]:
    path = (config or {}).get("vmb")
    if isinstance(path, str) and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    return None


def vmb_command(config: Optional[Dict[str, Any]] = None, args: str = "engine start") -> str:
    """The exact command a user types, e.g. `/opt/vmb/.venv/bin/vmb engine start`."""
    exe = (config or {}).get("vmb") or "vmb"
    if " " in exe:
        exe = '"' + exe + '"'
    return exe + " " + args


def start_command(config: Optional[Dict[str, Any]] = None) -> str:
    return vmb_command(config, "engine start")


def not_running_message(config: Optional[Dict[str, Any]], why: str) -> str:
    text = (
        f"The VMB Score engine is not running ({why}).\nStart it with:\n    {start_command(config)}"
    )
    problem = (config or {}).get(CONFIG_PROBLEM)
    return text + f"\n(Note: {problem}.)" if problem else text


def engine_log_path(home: str) -> str:
    """Where a plugin-started `vmb engine start` writes its output (read on failure)."""
    return os.path.join(home, "plugins", "engine-start.log")


def spawn_engine(config: Dict[str, Any], home: str) -> Any:
    """Start `vmb engine start` without waiting (the flow polls `try_connect` and the
    process afterwards); its output goes to engine_log_path(home). Returns the process."""
    exe = vmb_executable(config)
    if not exe:
        raise EngineNotRunning(not_running_message(config, "no vmb executable was recorded"))
    env = dict(os.environ)
    env["VMB_HOME"] = home
    log = engine_log_path(home)
    try:
        os.makedirs(os.path.dirname(log), exist_ok=True)
        with open(log, "wb") as out:
            return subprocess.Popen(
                [exe, "engine", "start"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
    except OSError as exc:
        raise EngineNotRunning(not_running_message(config, f"cannot run {exe}: {exc}")) from None


def engine_start_failure(config: Dict[str, Any], home: str, code: int) -> str:
    """The message for a `vmb engine start` that exited with `code`: its last lines."""
    try:
        with open(engine_log_path(home), "rb") as fh:
            tail = fh.read().decode("utf-8", "replace").strip().splitlines()[-3:]
    except OSError:
        tail = []
    return "The engine failed to start ({}). Try in a terminal:\n    {}".format(
        " | ".join(tail) or f"exit code {code}", start_command(config)
    )


def read_discovery(home: str, config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    path = discovery_path(home)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise EngineNotRunning(not_running_message(config, "no " + path)) from None
    except (OSError, ValueError) as exc:
        raise EngineNotRunning(not_running_message(config, f"cannot read {path}: {exc}")) from None
    if not isinstance(data, dict) or not data.get("token"):
        raise EngineNotRunning(not_running_message(config, path + " is incomplete"))
    if not data.get("gateway"):
        raise PluginError(
            "The engine runs without its host gateway, so plugins cannot reach it.\n"
            "Set gateway = true under [server] in {} and restart the engine.".format(
                os.path.join(home, "config.toml")
            ),
            "no_gateway",
        )
    return data


# -- the gateway ----------------------------------------------------------------------------
class Gateway:
    """HTTP + JSON to the engine's loopback gateway, with its token on every request."""

    def __init__(self, url: str, token: str, timeout_s: float = 10.0, config: Any = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.config = config or {}
        # never through a proxy: the gateway is on loopback (HTTP_PROXY would break it)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _open(self, method: str, path: str, body: Any, timeout_s: Optional[float]) -> Any:
        data = None
        headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            return self._opener.open(req, timeout=timeout_s or self.timeout_s)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except urllib.error.URLError as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, OSError) and "timed out" not in str(reason):
                raise EngineNotRunning(
                    not_running_message(
                        self.config, f"its gateway at {self.url} does not answer: {reason}"
                    )
                ) from None
            raise PluginError(f"The engine did not answer in time ({reason}).", "timeout") from None
        except OSError as exc:  # socket.timeout and friends
            raise PluginError(f"The engine did not answer in time ({exc}).", "timeout") from None

    def _http_error(self, exc: Any) -> PluginError:
        try:
            err = json.loads(exc.read().decode("utf-8"))["error"]
            code, message = str(err["code"]), str(err["message"])
        except Exception:  # noqa: BLE001 - not our gateway, or a proxy page
            code, message = f"http_{exc.code}", f"HTTP {exc.code} {exc.reason}"
        if code == "unauthorized":
            message = (
                f"The engine refused this plugin's token ({message}). The discovery file may be "
                "from an older engine run; restart the engine:\n"
                f"    {vmb_command(self.config, 'engine stop')} && {start_command(self.config)}"
            )
        return GatewayError(message, code, exc.code)

    def call(
        self, method: str, path: str, body: Any = None, timeout_s: Optional[float] = None
    ) -> Dict[str, Any]:
        resp = self._open(method, API + path, body, timeout_s)
        try:
            return json.loads(resp.read().decode("utf-8"))
        except ValueError:
            raise PluginError("The gateway sent something that is not JSON.", "malformed") from None
        except OSError as exc:
            raise PluginError(f"The engine did not answer in time ({exc}).", "timeout") from None
        finally:
            resp.close()

    def health(self, timeout_s: Optional[float] = None) -> Dict[str, Any]:
        return self.call("GET", "/health", timeout_s=timeout_s)

    def capabilities(self) -> Dict[str, Any]:
        return self.call("GET", "/capabilities")

    def submit_cue(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return self.call("POST", "/cue", params)

    def submit_soundtrack(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return self.call("POST", "/soundtrack", params)

    def submit(self, kind: str, params: Dict[str, Any]) -> Dict[str, Any]:
        """Any job kind through the generic route (`adapt`)."""
        return self.call("POST", "/jobs", {"kind": kind, "params": params})

    def submit_conform(self, params: Dict[str, Any]) -> Dict[str, Any]:
        """The conform route: like /soundtrack, it spools a large inline OTIO to a file."""
        return self.call("POST", "/conform", params)

    def require_kind(self, kind: str, what: str) -> Dict[str, Any]:
        """The capabilities, when the engine has the job kind `kind`; else a clear message
        (an engine older than this plugin)."""
        caps = self.capabilities()
        if kind not in (caps.get("kinds") or {}):
            raise PluginError(
                f"This VMB Score engine cannot {what} yet (it has no '{kind}' job). Update the "
                "engine (installer/install.sh, or install.ps1 on Windows), restart it with "
                "`vmb engine stop` and `vmb engine start`, then try again.",
                "engine_outdated",
            )
        return caps

    def job(self, job_id: str, timeout_s: Optional[float] = None) -> Dict[str, Any]:
        return self.call("GET", "/jobs/" + job_id, timeout_s=timeout_s)["job"]

    def cancel(self, job_id: str) -> Dict[str, Any]:
        return self.call("POST", "/jobs/" + job_id + "/cancel", {})["job"]

    def result(self, job_id: str) -> Dict[str, Any]:
        return self.call("GET", "/jobs/" + job_id + "/result")

    def download(self, url_path: str, dest: str) -> str:
        """Fetch an output file's bytes (engine on another machine, via a tunnel)."""
        if url_path.startswith(API):
            url_path = url_path[len(API) :]
        resp = self._open("GET", API + url_path, None, 120.0)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = dest + ".part"
        try:
            with open(tmp, "wb") as fh:
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    fh.write(chunk)
        finally:
            resp.close()
        os.replace(tmp, dest)
        return dest


def connect(config: Optional[Dict[str, Any]] = None, timeout_s: float = 10.0) -> Gateway:
    """A gateway that answered a health check (EngineNotRunning when none does; the
    flow in vmb_flow.py offers to start one)."""
    config = config or {}
    return _connect_once(resolve_home(config), config, timeout_s)


def try_connect(config: Dict[str, Any], timeout_s: float = 0.5) -> Optional[Gateway]:
    """A gateway if the engine answers right now, else None (for polling from a UI loop)."""
    try:
        return _connect_once(resolve_home(config), config, timeout_s)
    except PluginError:
        return None


def _connect_once(home: str, config: Dict[str, Any], timeout_s: float) -> Gateway:
    disc = read_discovery(home, config)
    gw = Gateway(disc["gateway"], disc["token"], timeout_s=timeout_s, config=config)
    gw.health(timeout_s=min(timeout_s, 15.0))
    return gw


# -- results --------------------------------------------------------------------------------
def fetch_outputs(gw: Gateway, job_id: str, cache_dir: Optional[str] = None) -> Dict[str, Any]:
    """A finished job's outputs made local: {"result", "files": name -> local path,
    "paths": engine path -> local path}. Files the host cannot read (an engine on another
    machine) are downloaded from the gateway into the cache folder."""
    res = gw.result(job_id)
    files, paths = {}, {}
    for name, info in (res.get("files") or {}).items():
        remote = info.get("path") or ""
        if remote and os.path.isfile(remote):
            local = remote
        else:
            folder = os.path.join(cache_dir or os.path.join(default_home(), "downloads"), job_id)
            local = gw.download(info["url"], os.path.join(folder, os.path.basename(remote) or name))
        files[name] = local
        if remote:
            paths[remote] = local
    return {"result": res.get("result") or {}, "files": files, "paths": paths}


def progress_text(job: Dict[str, Any]) -> str:
    """'generate 3/10 (30%)' from a job snapshot."""
    state = job.get("state", "?")
    prog = job.get("progress") or {}
    if state in ("queued", "running") and prog.get("stage"):
        step, of = prog.get("step", 0), prog.get("of", 0)
        if of:
            return "{} {}/{} ({:d}%)".format(prog["stage"], step, of, int(100 * step / of))
        return str(prog["stage"])
    return state


def failure_message(job: Dict[str, Any]) -> str:
    err = job.get("error") or {}
    if job.get("state") == "cancelled":
        return "The job was cancelled."
    return "The engine could not make the music: {} [{}]".format(
        err.get("message", "unknown error"), err.get("code", "job_failed")
    )


# -- knobs ----------------------------------------------------------------------------------
def knobs_path(host: str, home: Optional[str] = None) -> str:
    return os.path.join(home or default_home(), "plugins", host + "-knobs.json")


def load_knobs(host: str, home: Optional[str] = None) -> Dict[str, Any]:
    """The knobs used last time in this host ({} the first time)."""
    try:
        with open(knobs_path(host, home), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_knobs(host: str, knobs: Dict[str, Any], home: Optional[str] = None) -> None:
    path = knobs_path(host, home)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(knobs, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def is_on(value: Any) -> bool:
    """A boolean row's panel value: True, or its "on" word (a JSFX slider, a combo box)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "on")


def split_options(values: Dict[str, Any], defs: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Panel values -> request fields, from the knob table the engine serves (the "knobs" of
    /v1/capabilities): a row of defs["knobs"] goes into knobs{...}, a row of defs["options"]
    is a field of its own, typed by the row (empty ones left out). An engine that serves no
    table is older than this plugin: the user is told to update it (guessing which values
    are knobs would send the engine fields it does not know)."""
    if not defs or not isinstance(defs.get("knobs"), list):
        raise PluginError(
            "The VMB Score engine did not send its knob table (/v1/capabilities has no "
            '"knobs"): it is older than this plugin. Update the engine (installer/install.sh, '
            "or install.ps1 on Windows), restart it with `vmb engine stop` and `vmb engine "
            "start`, then try again.",
            "engine_outdated",
        )
    knobs = {}  # type: Dict[str, Any]
    for row in defs.get("knobs", []):
        if row["name"] in values:
            value = values[row["name"]]
            knobs[row["name"]] = is_on(value) if row.get("type") == "boolean" else value
    req = {"knobs": knobs}  # type: Dict[str, Any]
    for row in defs.get("options", []):
        name, kind, value = row["name"], row.get("type"), values.get(row["name"])
        if kind == "boolean":  # sent when on (off is the engine's default)
            if is_on(value):
                req[name] = True
        elif kind == "choice" and value == row.get("empty"):
            continue  # "auto": the engine decides (an ending by the cue's place in the run)
        elif kind == "integer":
            if isinstance(value, str):
                value = int(value) if value.strip().isdigit() else None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                req[name] = value  # empty or 0: not sent (a new random seed)
        elif isinstance(value, str) and value.strip():
            req[name] = value.strip()
        elif value not in (None, "", [], {}) and not isinstance(value, str):
            req[name] = value
    return req


def cue_name(text: str, default: str = "cue") -> str:
    """A job name the engine accepts: letters, digits, '-' and '_'."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", text or "").strip("-_")[:48]
    return name or default


def fallback_text(knobs: Dict[str, Any], defs: Optional[Dict[str, Any]]) -> str:
    """Text for a cue with no picture (only a time range): the set one-word knobs of the
    served table (its "choice" rows, in its order) in words; a BPM says so."""
    words = []
    for row in (defs or {}).get("knobs", []):
        value = str(knobs.get(row["name"]) or "").strip()
        if row.get("type") != "choice" or not value or value == (defs or {}).get("auto", "auto"):
            continue
        words.append(value + " BPM" if row.get("bpm") and value.isdigit() else value)
    return " ".join(words + ["background music for a video"]).strip()


MAX_MARKERS = 1000  # the engine's limit on a request's markers (bridge/hits.py)


def hit_markers(found: List[Any], lo_s: float, hi_s: float, origin_s: float) -> List[Dict]:
    """A host's markers [(time_s, name, comment)] within [lo_s, hi_s) as a request's
    "markers" (hit points): seconds from origin_s, the clock of the request."""
    out = []  # type: List[Dict[str, Any]]
    for t, name, comment in sorted(found, key=lambda m: m[0]):
        if lo_s <= t < hi_s and len(out) < MAX_MARKERS:
            mark = {"time_s": round(t - origin_s, 6), "name": str(name or "")[:200]}
            if comment:
                mark["comment"] = str(comment)[:200]
            out.append(mark)
    return out


# -- OTIO JSON (no opentimelineio in a host) -------------------------------------------------
def _rt(value: float, rate: float) -> Dict[str, Any]:
    return {"OTIO_SCHEMA": "RationalTime.1", "rate": float(rate), "value": float(value)}


def _range(start_s: float, dur_s: float, rate: float) -> Dict[str, Any]:
    return {
        "OTIO_SCHEMA": "TimeRange.1",
        "duration": _rt(dur_s * rate, rate),
        "start_time": _rt(start_s * rate, rate),
    }


def _item(schema: str, name: str, source_range: Dict[str, Any], meta: Any) -> Dict[str, Any]:
    return {
        "OTIO_SCHEMA": schema,
        "metadata": meta or {},
        "name": name,
        "source_range": source_range,
        "effects": [],
        "markers": [],
        "enabled": True,
        "color": None,
    }


def path_to_url(path: str) -> str:
    """file:// URL of a local path (what OTIO's url_utils writes)."""
    if os.name == "nt" or re.match(r"^[A-Za-z]:[\\/]", path):
        return "file:///" + urllib.parse.quote(path.replace("\\", "/"))
    return "file://" + urllib.parse.quote(os.path.abspath(path))


def otio_timeline(
    name: str,
    rate: float,
    tracks: List[Dict[str, Any]],
    global_start_s: float = 0.0,
    metadata: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """An OTIO Timeline.1 document. tracks: [{"name", "kind": "Video"|"Audio", "clips": [
    {"name", "record_in_s", "duration_s", "source_in_s", "path", "rate"?, "available_s"?,
    "metadata"?}
    ]}]; clips sorted by record time, gaps filled with Gap.1."""
    out_tracks = []
    for tr in tracks:
        children = []
        cursor = 0.0
        for clip in sorted(tr.get("clips", []), key=lambda c: c["record_in_s"]):
            # OTIO tracks cannot overlap: a clip under the previous one loses its head
            start = max(float(clip["record_in_s"]), cursor)
            if start - cursor > 1e-9:
                children.append(_item("Gap.1", "", _range(0.0, start - cursor, rate), None))
            head = start - float(clip["record_in_s"])
            dur = float(clip["duration_s"]) - head
            if dur <= 1e-9:
                continue
            src_in = float(clip.get("source_in_s") or 0.0) + head * float(clip.get("rate", 1.0))
            node = _item(
                "Clip.2", clip.get("name", ""), _range(src_in, dur, rate), clip.get("metadata")
            )
            ref = {
                "OTIO_SCHEMA": "ExternalReference.1",
                "metadata": {},
                "name": os.path.basename(clip.get("path") or ""),
                "available_range": _range(0.0, float(clip["available_s"]), rate)
                if clip.get("available_s")
                else None,
                "available_image_bounds": None,
                "target_url": path_to_url(clip["path"]) if clip.get("path") else "",
            }
            node["media_references"] = {"DEFAULT_MEDIA": ref}
            node["active_media_reference_key"] = "DEFAULT_MEDIA"
            children.append(node)
            cursor = start + dur
        track = _item("Track.1", tr.get("name", ""), None, tr.get("metadata"))
        track["children"] = children
        track["kind"] = tr.get("kind", "Video")
        out_tracks.append(track)
    stack = _item("Stack.1", "tracks", None, None)
    stack["children"] = out_tracks
    return {
        "OTIO_SCHEMA": "Timeline.1",
        "metadata": metadata or {},
        "name": name,
        "global_start_time": _rt(global_start_s * rate, rate),
        "tracks": stack,
    }
