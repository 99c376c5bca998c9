# Host plugins for install.sh (sourced): DaVinci Resolve menu scripts, REAPER ReaScripts and
# the VMB Controls JSFX. Every file, folder and reaper-kb.ini line it adds is written to a
# manifest, so --uninstall removes exactly that and nothing else.
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
    RESOLVE_SCRIPTS="$HOST_DIR/resolve/Fusion/Scripts/Utility"
    REAPER_RES="$HOST_DIR/reaper"
    MANIFEST="$HOST_DIR/vmb-score-plugins.manifest"
  else
    case "$(uname -s)" in
      Darwin)
        RESOLVE_SCRIPTS="$HOME/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility"
        REAPER_RES="$HOME/Library/Application Support/REAPER" ;;
      *)
        RESOLVE_SCRIPTS="$HOME/.local/share/DaVinciResolve/Fusion/Scripts/Utility"
        REAPER_RES="$HOME/.config/REAPER" ;;
    esac
    MANIFEST="$(vmb_home_dir)/installed-plugins.manifest"
  fi
  RESOLVE_LIB="$RESOLVE_SCRIPTS/vmb_score_lib"
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

install_hosts() {
  host_paths
  [ -f "$MANIFEST" ] && uninstall_hosts quiet  # a reinstall replaces the previous one exactly
  ensure_manifest_dir
  : >"$MANIFEST.new"
  local p="$ROOT/plugins"

  put "$p/davinci/VMB Score.py" "$RESOLVE_SCRIPTS/VMB Score.py"
  put "$p/davinci/VMB Score whole timeline.py" "$RESOLVE_SCRIPTS/VMB Score whole timeline.py"
  put "$p/davinci/vmb_resolve.py" "$RESOLVE_LIB/vmb_resolve.py"
  put "$p/common/vmb_client.py" "$RESOLVE_LIB/vmb_client.py"
  write_config "$RESOLVE_LIB/vmb_plugin.json"

  put "$p/reaper/VMB Generate score for selection.py" "$REAPER_SCRIPTS/VMB Generate score for selection.py"
  put "$p/reaper/VMB Score whole project.py" "$REAPER_SCRIPTS/VMB Score whole project.py"
  put "$p/reaper/VMB Insert controls.py" "$REAPER_SCRIPTS/VMB Insert controls.py"
  put "$p/reaper/vmb_reaper.py" "$REAPER_SCRIPTS/vmb_reaper.py"
  put "$p/common/vmb_client.py" "$REAPER_SCRIPTS/vmb_client.py"
  write_config "$REAPER_SCRIPTS/vmb_plugin.json"
  put "$p/reaper/VMB Controls.jsfx" "$REAPER_EFFECTS/VMB Controls.jsfx"
  register_action "VMB: Generate score for selection" "$REAPER_SCRIPTS/VMB Generate score for selection.py"
  register_action "VMB: Score whole project" "$REAPER_SCRIPTS/VMB Score whole project.py"
  register_action "VMB: Insert controls" "$REAPER_SCRIPTS/VMB Insert controls.py"
  install_blender

  mv "$MANIFEST.new" "$MANIFEST"
  say "DaVinci Resolve: Workspace > Scripts > 'VMB Score' ($RESOLVE_SCRIPTS)"
  say "  Python menu scripts: Resolve <= 21.0 (any edition) or Studio 21.1+; knob panel in Studio"
  say "REAPER: actions 'VMB: ...' ($REAPER_SCRIPTS); restart REAPER to load them"
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
