# Host plugins for install.sh (sourced): DaVinci Resolve menu scripts, REAPER ReaScripts and
# the VMB Controls JSFX. What goes where is listed once per host in plugins/<host>/files.txt
# (install.ps1 reads the same lists). Every file, folder and reaper-kb.ini line it adds is
# written to a manifest, so --uninstall removes exactly that and nothing else.
# Needs: ROOT, VENV, HOST_DIR (may be empty) and say() from install.sh.

# shellcheck source=installer/hosts_blender.sh
. "$ROOT/installer/hosts_blender.sh"

vmb_home_dir() {
  if [ -n "${VMB_HOME:-}" ]; then
    printf '%s' "$VMB_HOME"
  elif [ "$(uname -s)" = Darwin ]; then
    printf '%s' "$HOME/Library/Application Support/VMB Score"
  else
    printf '%s' "${XDG_DATA_HOME:-$HOME/.local/share}/vmb-score"
  fi
}

host_paths() {
  if [ -n "$HOST_DIR" ]; then
    mkdir -p "$HOST_DIR"
    HOST_DIR="$(cd "$HOST_DIR" && pwd)"
    RESOLVE_FUSION="$HOST_DIR/resolve/Fusion"
    REAPER_RES="$HOST_DIR/reaper"
    MANIFEST="$HOST_DIR/vmb-score-plugins.manifest"
  else
    case "$(uname -s)" in
      Darwin)
        RESOLVE_FUSION="$HOME/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion"
        REAPER_RES="$HOME/Library/Application Support/REAPER" ;;
      *)
        RESOLVE_FUSION="$HOME/.local/share/DaVinciResolve/Fusion"
        REAPER_RES="$HOME/.config/REAPER" ;;
    esac
    MANIFEST="$(vmb_home_dir)/installed-plugins.manifest"
  fi
  RESOLVE_SCRIPTS="$RESOLVE_FUSION/Scripts/Utility"
  RESOLVE_LIB="$RESOLVE_FUSION/vmb_score_lib"  # outside Scripts/: not a menu entry
  REAPER_SCRIPTS="$REAPER_RES/Scripts/VMB Score"
  REAPER_EFFECTS="$REAPER_RES/Effects/VMB Score"
  REAPER_KB="$REAPER_RES/reaper-kb.ini"
}

record() { printf '%s\t%s\n' "$1" "$2" >>"$MANIFEST.new"; }

ensure_dir() {  # mkdir -p that records each folder it creates
  local d="$1" missing=() i
  while [ ! -d "$d" ]; do missing+=("$d"); d="$(dirname "$d")"; done
  for ((i = ${#missing[@]} - 1; i >= 0; i--)); do
    mkdir "${missing[i]}"
    record dir "${missing[i]}"
  done
}

put() {  # put SRC DEST
  ensure_dir "$(dirname "$2")"
  cp "$1" "$2"
  record file "$2"
}

json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

write_config() {  # the plugins' vmb_plugin.json: where `vmb` is, which home
  local dest="$1" vmb="null" home="null"
  [ -x "$VENV/bin/vmb" ] && vmb="$(json_str "$VENV/bin/vmb")"
  [ -n "${VMB_HOME:-}" ] && home="$(json_str "$VMB_HOME")"
  ensure_dir "$(dirname "$dest")"
  printf '{\n  "vmb": %s,\n  "home": %s,\n  "installed_from": %s\n}\n' \
    "$vmb" "$home" "$(json_str "$ROOT")" >"$dest"
  record file "$dest"
}

sha1_of() {
  if command -v sha1sum >/dev/null 2>&1; then
    printf '%s' "$1" | sha1sum | cut -c1-40
  else
    printf '%s' "$1" | shasum -a 1 | cut -c1-40
  fi
}

register_action() {  # register_action "VMB: Title" /abs/script.py  (REAPER closed: kb file)
  local title="$1" script="$2" line
  if [ -f "$REAPER_KB" ] && grep -qF "$script" "$REAPER_KB"; then
    return 0  # already registered (de-duplicated by path)
  fi
  if [ ! -f "$REAPER_KB" ]; then
    ensure_dir "$(dirname "$REAPER_KB")"
    : >"$REAPER_KB"
    record created_kb "$REAPER_KB"
  fi
  line="SCR 4 0 RS$(sha1_of "$script") \"Custom: $title\" \"$script\""
  printf '%s\n' "$line" >>"$REAPER_KB"
  record kb "$line"
}

host_root() {  # host_root HOST ROOT-KEY: the folder a files.txt ROOT stands for
  case "$1:$2" in
    davinci:MENU) printf '%s' "$RESOLVE_SCRIPTS" ;;
    davinci:LIB) printf '%s' "$RESOLVE_LIB" ;;
    reaper:SCRIPTS) printf '%s' "$REAPER_SCRIPTS" ;;
    reaper:EFFECTS) printf '%s' "$REAPER_EFFECTS" ;;
    blender:EXT) printf '%s' "$BLENDER_EXT" ;;  # set per Blender version by install_blender
    *) echo "install.sh: plugins/$1/files.txt: unknown folder '$2'" >&2; return 1 ;;
  esac
}

install_files() {  # install_files HOST: copy what plugins/HOST/files.txt lists
  local host="$1" src dest action target root
  while IFS=$'\t' read -r src dest action || [ -n "$src" ]; do
    case "$src" in '' | '#'*) continue ;; esac
    root="$(host_root "$host" "${dest%%/*}")" || return 1
    target="$root/${dest#*/}"
    if [ "$src" = "@config" ]; then
      write_config "$target"
    else
      put "$ROOT/plugins/$src" "$target"
    fi
    if [ -n "${action:-}" ]; then register_action "$action" "$target"; fi
  done <"$ROOT/plugins/$host/files.txt"
}

reaper_pids() {  # pids of running REAPER processes (Linux: reaper; macOS: .../MacOS/REAPER)
  ps -A -o pid= -o comm= 2>/dev/null |
    awk '{ pid = $1; sub(/^ *[0-9]+ +/, ""); if (tolower($0) ~ /(^|\/)reaper$/) print pid }'
}

refuse_if_reaper_runs() {
  # REAPER rewrites reaper-kb.ini when it quits: entries written meanwhile would be lost
  local pids
  pids="$(reaper_pids | tr '\n' ' ')"
  if [ -n "$pids" ]; then
    echo "install.sh: REAPER is running (pid ${pids% }). It rewrites reaper-kb.ini when it" \
      "quits, which would drop the VMB Score actions. Quit REAPER, then run this again." >&2
    exit 1
  fi
}

note_sandboxed_resolve() {  # the Mac App Store edition cannot reach the engine (sandbox)
  local d
  for d in "$HOME/Library/Containers/"*[Rr]esolve*; do
    [ -d "$d" ] || continue
    say "note: $d is the Mac App Store edition of DaVinci Resolve; it runs sandboxed and"
    say "  cannot reach the VMB Score engine: use the edition from blackmagicdesign.com"
    return 0
  done
}

install_hosts() {
  host_paths
  refuse_if_reaper_runs
  [ -f "$MANIFEST" ] && uninstall_hosts quiet  # a reinstall replaces the previous one exactly
  ensure_manifest_dir
  : >"$MANIFEST.new"
  install_files davinci
  install_files reaper
  install_blender
  mv "$MANIFEST.new" "$MANIFEST"
  say "DaVinci Resolve: Workspace > Scripts > Utility > 'VMB Score' ($RESOLVE_SCRIPTS)"
  say "  Python menu scripts: Resolve <= 21.0 (any edition) or Studio 21.1+; knob panel in Studio"
  if [ "$(uname -s)" = Darwin ] && [ -z "$HOST_DIR" ]; then note_sandboxed_resolve; fi
  say "REAPER 6.0+: Actions > Show action list > 'Custom: VMB: ...' ($REAPER_SCRIPTS)"
  say "  needs Preferences > Plug-ins > ReaScript > Enable Python; knobs: 'VMB: Insert controls'"
  [ -x "$VENV/bin/vmb" ] || say "  no engine found at $VENV/bin/vmb: run ./installer/install.sh (engine) too"
  say "uninstall: $0 --uninstall${HOST_DIR:+ --host-dir \"$HOST_DIR\"}"
}

ensure_manifest_dir() {
  local d
  d="$(dirname "$MANIFEST")"
  [ -d "$d" ] || mkdir -p "$d"
}

uninstall_hosts() {
  local quiet="${1:-}"
  [ -n "${MANIFEST:-}" ] || host_paths
  if [ ! -f "$MANIFEST" ]; then
    [ -n "$quiet" ] || say "no host plugins installed here (no $MANIFEST)"
    return 0
  fi
  if grep -q '^kb	' "$MANIFEST"; then refuse_if_reaper_runs; fi
  local kind value tmp
  local -a dirs=() kbs=()
  while IFS=$'\t' read -r kind value; do
    case "$kind" in
      file) rm -f -- "$value" ;;
      dir) dirs+=("$value") ;;
      kb)
        if [ -f "$REAPER_KB" ]; then
          tmp="$REAPER_KB.vmb-tmp"
          grep -vxF -- "$value" "$REAPER_KB" >"$tmp" || true
          cat "$tmp" >"$REAPER_KB"
          rm -f "$tmp"
        fi ;;
      created_kb) kbs+=("$value") ;;
    esac
  done <"$MANIFEST"
  for value in "${kbs[@]+"${kbs[@]}"}"; do
    [ -f "$value" ] && [ ! -s "$value" ] && rm -f -- "$value"
  done
  local i
  for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
    rmdir -- "${dirs[i]}" 2>/dev/null || true  # only when empty: never a user's file
  done
  rm -f -- "$MANIFEST"
  [ -n "$quiet" ] || say "removed the host plugins listed in $MANIFEST"
}
