# Blender extension for install.sh (sourced by hosts.sh): the vmb_score extension folder in
# Blender's user extensions repository, and a zip for Blender's "Install from Disk".
# Files come from plugins/blender/files.txt (plugins/common stays their one source), read by
# install_files in hosts.sh. Needs: ROOT, VENV, HOST_DIR, say(), install_files(), ensure_dir(),
# record(), json_str() from hosts.sh / install.sh. Also: ensure_blender_venv for --dev.

BLENDER_EXT_ID="vmb_score"
BLENDER_VENV="${VMB_BLENDER_VENV:-$ROOT/.venv-blender}"

blender_config_roots() {  # Blender's per-version user folders (4.2 and newer), one a line
  local base d v
  case "$(uname -s)" in
    Darwin) base="$HOME/Library/Application Support/Blender" ;;
    *) base="${XDG_CONFIG_HOME:-$HOME/.config}/blender" ;;
  esac
  [ -d "$base" ] || return 0
  for d in "$base"/*/; do
    v="$(basename "$d")"
    case "$v" in
      [0-9]*.[0-9]*) ;;
      *) continue ;;
    esac
    if [ "${v%%.*}" -gt 4 ] || { [ "${v%%.*}" -eq 4 ] && [ "${v#*.}" -ge 2 ]; }; then
      printf '%s\n' "${d%/}"
    fi
  done
}

blender_ext_dirs() {  # where the extension folder goes, one a line (none: zip only)
  if [ -n "${BLENDER_USER_EXTENSIONS:-}" ]; then
    printf '%s\n' "$BLENDER_USER_EXTENSIONS/user_default/$BLENDER_EXT_ID"
  elif [ -n "$HOST_DIR" ]; then
    printf '%s\n' "$HOST_DIR/blender/extensions/user_default/$BLENDER_EXT_ID"
  else
    blender_config_roots | while IFS= read -r root; do
      printf '%s\n' "$root/extensions/user_default/$BLENDER_EXT_ID"
    done
  fi
}

blender_zip_path() {
  if [ -n "$HOST_DIR" ]; then
    printf '%s' "$HOST_DIR/blender/$BLENDER_EXT_ID.zip"
  else
    printf '%s' "$(vmb_home_dir)/blender/$BLENDER_EXT_ID.zip"
  fi
}

blender_zip() {  # blender_zip ZIP: the files plugins/blender/files.txt lists, at the zip's root
  local zip="$1" stage src dest vmb="null"
  stage="$(mktemp -d)"
  while IFS=$'\t' read -r src dest _ || [ -n "$src" ]; do
    case "$src" in '' | '#'* | '@config') continue ;; esac
    cp "$ROOT/plugins/$src" "$stage/${dest#EXT/}"
  done <"$ROOT/plugins/blender/files.txt"
  [ -x "$VENV/bin/vmb" ] && vmb="$(json_str "$VENV/bin/vmb")"
  printf '{\n  "vmb": %s,\n  "home": null,\n  "installed_from": %s\n}\n' \
    "$vmb" "$(json_str "$ROOT")" >"$stage/vmb_plugin.json"
  ensure_dir "$(dirname "$zip")"
  if ! (cd "$stage" && "${PYTHON:-python3}" -m zipfile -c "$zip" ./*); then
    rm -rf "$stage"
    say "Blender: could not write $zip"
    return 1
  fi
  rm -rf "$stage"
  record file "$zip"
}

install_blender() {
  local n=0 zip
  while IFS= read -r BLENDER_EXT; do
    [ -n "$BLENDER_EXT" ] || continue
    install_files blender  # EXT in files.txt is $BLENDER_EXT (host_root in hosts.sh)
    say "Blender: extension in $BLENDER_EXT"
    n=$((n + 1))
  done < <(blender_ext_dirs)
  zip="$(blender_zip_path)"
  blender_zip "$zip"  # for "Install from Disk" (any Blender 4.2+, any machine)
  if ((n)); then
    say "  enable it in Blender: Edit > Preferences > Add-ons > 'VMB Score' (restart Blender first)"
  else
    say "Blender: no Blender 4.2+ user folder found. In Blender: Edit > Preferences >"
    say "  Get Extensions > (menu at the top right) > Install from Disk... > $zip"
  fi
  say "  then: Video Sequencer > sidebar (N) > 'VMB Score' tab"
}

ensure_blender_venv() {  # --dev: bpy in its own venv (its numpy pin differs from the engine's)
  local py="${PYTHON:-python3}" stamp
  if ! "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    if command -v python3.11 >/dev/null 2>&1; then
      py=python3.11
    else
      say "Blender tests: bpy 5.0 needs CPython 3.11 (not found); the Blender test will not run"
      return 0
    fi
  fi
  stamp="$BLENDER_VENV/.vmb-$(cksum <"$ROOT/requirements/blender.txt" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && "$BLENDER_VENV/bin/python" -c "import bpy" 2>/dev/null; then
    say "Blender test environment up to date ($BLENDER_VENV)"
    return 0
  fi
  [ -x "$BLENDER_VENV/bin/python" ] || "$py" -m venv "$BLENDER_VENV"
  say "installing bpy into $BLENDER_VENV (Blender as a module, ~370 MB; pip caches it)"
  "$BLENDER_VENV/bin/python" -m pip --disable-pip-version-check -q install \
    -r "$ROOT/requirements/blender.txt"
  rm -f "$BLENDER_VENV"/.vmb-*
  touch "$stamp"
}
